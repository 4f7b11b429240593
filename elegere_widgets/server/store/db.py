"""Engine, sessions and migrations (Alembic, run from code)."""

from __future__ import annotations

import sqlite3
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, inspect, literal, select
from sqlalchemy.orm import Session, sessionmaker

from ..files import private_file

MIGRATIONS = Path(__file__).parent / "migrations"
#: Execution option of the engine behind read-only sessions (see make_read_sessionmaker).
READ_ONLY = "elegere_read_only"
#: How long a SQLite statement waits for another writer before "database is locked".
BUSY_TIMEOUT_S = 30.0
#: Key, in a SQLite connection's info, of the process's writer lock while that connection
#: holds it (see _sqlite_begin).
_HOLDS_WRITER_LOCK = "elegere_holds_writer_lock"


def make_engine(url: str) -> Engine:
    # A server connection can drop between requests (restarts, idle timeouts): ping it when
    # taken from the pool. A SQLite "connection" is a file handle that cannot.
    kwargs: dict[str, Any] = {"pool_pre_ping": not url.startswith("sqlite")}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            # Made 0600 (in a 0700 directory) before SQLite opens it: SQLite gives the -wal
            # and -shm files it creates the database file's mode.
            private_file(Path(path))
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        writers = threading.Lock()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", partial(_sqlite_begin, writers))
        event.listen(engine, "commit", _release_writer_lock)
        event.listen(engine, "rollback", _release_writer_lock)
        # A connection given back to the pool without its transaction ended (thrown away
        # mid-transaction) must not keep the lock.
        event.listen(engine.pool, "checkin", lambda _raw, record: _release(record.info))
    return engine


def _sqlite_begin(writers: threading.Lock, conn: Connection) -> None:
    # A writer takes the write lock at the start (BEGIN IMMEDIATE, see _begin_immediate), so
    # two writers wait for each other there rather than fail with "database is locked" mid-way.
    # A reader must not: in WAL mode readers never block, but a reader queued behind writers
    # waited in sqlite's busy handler, whose sleeps of up to 100 ms made the p99 of plain GETs
    # ~0.5 s under load.
    if conn.get_execution_options().get(READ_ONLY, False):
        conn.exec_driver_sql("BEGIN")
        return
    # One writer of this process at a time waits for SQLite's lock; the others wait on ours,
    # which costs them nothing. When every waiting thread polled SQLite's lock, 30 of them
    # polling a thousand times a second each took the service's CPU, and the service fell
    # behind for good (GET /me: p90 1.6 s against a p50 of 14 ms, at 50 POSTs/s while a
    # worker drained).
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    if not writers.acquire(timeout=BUSY_TIMEOUT_S):
        raise sqlite3.OperationalError("database is locked (by another writer of this process)")
    conn.info[_HOLDS_WRITER_LOCK] = writers
    try:
        _begin_immediate(conn.connection.dbapi_connection, deadline)
    except BaseException:
        _release(conn.info)
        raise


def _release_writer_lock(conn: Connection) -> None:
    if not conn.invalidated:  # else its info is gone with it: released at its checkin
        _release(conn.info)


def _release(info: dict[Any, Any]) -> None:
    writers = info.pop(_HOLDS_WRITER_LOCK, None)
    if writers is not None:
        writers.release()


def _begin_immediate(raw: Any, deadline: float) -> None:
    """BEGIN IMMEDIATE, trying again every millisecond while another writer holds the lock.

    SQLite's busy handler sleeps 1, 2, 5, 10, … up to 100 ms between tries, so a writer that
    waits behind a busy worker (another process: no lock of ours can order them) often sleeps
    on long after the lock is free: the p99 of accepting a message at 50/s while a worker
    drained was 200–360 ms against 15–20 ms at p50."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(0.001)
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener issue BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def reading(engine: Engine) -> Engine:
    """The engine for work that only reads: on SQLite its transactions begin deferred, and so
    never wait for the write lock. A write through it would fail with "database is locked"
    under contention, so only reads use it."""
    return engine.execution_options(**{READ_ONLY: True})


def make_read_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions for requests that only read (see ``reading``)."""
    return sessionmaker(reading(engine), expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


def holds_sealed_secrets(engine: Engine) -> bool:
    """Whether any stored server has sealed secrets (False for a store not yet migrated)."""
    from .tables import EmailServerRow

    if not inspect(engine).has_table(EmailServerRow.__tablename__):
        return False
    with reading(engine).connect() as conn:
        found = conn.execute(
            select(literal(1)).where(EmailServerRow.secrets_sealed.is_not(None)).limit(1)
        ).first()
    return found is not None


def is_migrated(engine: Engine) -> bool:
    return inspect(engine).has_table("email_servers")
