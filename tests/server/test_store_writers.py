"""SQLite writers of one process: one at a time waits for the store's write lock, and a
writer that goes away without ending its transaction does not keep the others out."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from elegere_widgets.server.store.db import make_engine

WRITERS = 8


def _store(path: Path, *, on_connect: Any = None) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    if on_connect is not None:
        event.listen(engine, "connect", on_connect)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (writer INTEGER)"))
    return engine


def _write(engine: Engine, n: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notes VALUES (:n)"), {"n": n})


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM notes")).scalar_one())


def test_while_another_process_writes_one_thread_at_a_time_tries_for_the_lock(
    tmp_path: Path,
) -> None:
    """Every waiting thread used to try BEGIN IMMEDIATE a thousand times a second: 30 of them
    took the service's CPU. Now the others wait on the process's own lock."""
    trying: set[int] = set()

    def trace(raw: Any, _record: Any) -> None:
        def seen(statement: str) -> None:
            if statement == "BEGIN IMMEDIATE":
                trying.add(threading.get_ident())

        raw.set_trace_callback(seen)

    engine = _store(tmp_path / "store.db", on_connect=trace)
    trying.clear()  # the table's creation
    # Another process's writer: a connection of its own, outside this engine and its lock.
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(WRITERS) as pool:
        done = [pool.submit(_write, engine, n) for n in range(WRITERS)]
        time.sleep(0.5)  # every thread has asked to write by now
        polling_while_held = len(trying)
        other.execute("COMMIT")
        for future in done:
            future.result(timeout=30)
    other.close()
    assert polling_while_held == 1
    assert _count(engine) == WRITERS
    engine.dispose()


def test_a_writer_whose_transaction_never_ended_does_not_keep_the_others_out(
    tmp_path: Path,
) -> None:
    engine = _store(tmp_path / "store.db")
    conn = engine.connect()
    transaction = conn.begin()
    conn.execute(text("INSERT INTO notes VALUES (0)"))
    # Its connection breaks mid-transaction: closed and thrown away, never rolled back.
    conn.invalidate()
    transaction.rollback()
    conn.close()
    with ThreadPoolExecutor(2) as pool:
        writes = [pool.submit(_write, engine, n) for n in (1, 2)]
        for future in writes:
            future.result(timeout=5)
    assert _count(engine) == 2
    engine.dispose()


def test_a_connection_writes_again_after_its_commit_and_its_rollback(tmp_path: Path) -> None:
    """A session keeps its connection across transactions (expire_on_commit=False)."""
    engine = _store(tmp_path / "store.db")
    with engine.connect() as conn:
        with conn.begin():
            conn.execute(text("INSERT INTO notes VALUES (1)"))
        with conn.begin() as transaction:
            conn.execute(text("INSERT INTO notes VALUES (2)"))
            transaction.rollback()
        with conn.begin():
            conn.execute(text("INSERT INTO notes VALUES (3)"))
    assert _count(engine) == 2
    engine.dispose()


def test_a_failed_write_gives_the_lock_back(tmp_path: Path) -> None:
    engine = _store(tmp_path / "store.db")
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO notes VALUES (1)"))
            conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
    except Exception as exc:
        assert "no_such_table" in str(exc)
    else:
        raise AssertionError("the bad statement was accepted")
    _write(engine, 2)  # would wait 30 s and fail if the failed writer kept the lock
    assert _count(engine) == 1
    engine.dispose()
