"""What every benchmark shares: timing, medians, the printed figures, databases and seeding.

Each benchmark prints its figures as lines a person reads and, for ``run_all.py``, one
``BENCH-FIGURE {json}`` line per figure. Benchmarks never fail a build: they exit 0 whatever
they measure; a missed target is a "no" in the "met" column, not an exit code.

Run from the repository root: ``.venv/bin/python benchmarks/bench_list_servers.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `tests.fixtures…` and the package, without PYTHONPATH
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from elegere_widgets.models import SmtpSettings
    from elegere_widgets.server.context import ServiceContext

# aiosmtpd (the SMTP peers) warns about its own deprecations at every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

FIGURE_MARK = "BENCH-FIGURE "
ADMIN = "admin@acme.example"
SALES, SUPPORT, ORG = "ws_sales", "ws_support", "org_acme"
#: The server PostgreSQL benchmarks make their own databases on (trust auth, user postgres).
PG_SERVER = os.environ.get("ELEGERE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
#: A PostgreSQL database of your own that every benchmark uses in turn (its ``public`` schema
#: is emptied before and after each), instead of making ``elegere_bench_<name>`` databases:
#: for a machine where you may use one database only.
OWN_PG_DATABASE = os.environ.get("ELEGERE_BENCH_DATABASE_URL")
#: The Redis the PostgreSQL + Redis figures queue on (its ``elegere`` queue is flushed).
REDIS_URL = os.environ.get("ELEGERE_BENCH_REDIS", "redis://127.0.0.1:6379/14")


# ---------------------------------------------------------------- command line and machine


def parse_args(
    description: str, *, add: Callable[[argparse.ArgumentParser], object] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer runs: a smoke test")
    if add is not None:
        add(parser)
    return parser.parse_args()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def note(text: str) -> str:
    """A progress line, with the load average at that moment (2 cores, shared machine); the
    load average, for the figures measured next."""
    load = load_average()
    print(f"[load {load}] {text}", flush=True)
    return load


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"


# ---------------------------------------------------------------- timing


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(
    cases: dict[str, Callable[[], object]], *, runs: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Each case ``runs`` times, alternating, so that a noisy moment hits every case alike."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for i in range(runs):
        # Alternate who goes first: a case always run right after another may inherit its
        # warm caches (or its garbage).
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(timed(cases[name]))
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0-100 (p99 of 1,000 values is the 990th)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# ---------------------------------------------------------------- figures


@dataclass
class Figure:
    """One row of the table: what was measured, against what, and whether it met its target.

    ``measured`` and ``baseline`` are in ``unit``; ``ratio`` is measured / baseline unless the
    benchmark gives another one (e.g. for a difference). ``target`` is the words of the issue.
    """

    name: str
    measured: float
    baseline: float | None
    unit: str
    target: str
    met: bool
    ratio: float | None = None
    note: str = ""
    #: The load average when the measurement started.
    load: str = field(default_factory=load_average)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.measured / self.baseline


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}".rstrip()


def report(fig: Figure) -> None:
    """Print a figure for people, and as one JSON line for run_all.py."""
    ratio = f"{fig.ratio:.2f}×" if fig.ratio is not None else "—"
    print(
        f"  {fig.name}: {_num(fig.measured, fig.unit)} vs baseline "
        f"{_num(fig.baseline, fig.unit)} → {ratio}; target {fig.target}; "
        f"target met: {'yes' if fig.met else 'no'}" + (f"  ({fig.note})" if fig.note else ""),
        flush=True,
    )
    print(FIGURE_MARK + json.dumps(asdict(fig)), flush=True)


def figure_in(line: str) -> Figure | None:
    """The figure a benchmark's output line carries (see ``report``), if it is one."""
    if not line.startswith(FIGURE_MARK):
        return None
    return Figure(**json.loads(line[len(FIGURE_MARK) :]))


def table(figures: Sequence[Figure]) -> str:
    """A Markdown table of figures (also what benchmarks/README.md shows)."""
    head = "| figure | measured | baseline | ratio | target | met | load avg (1/5/15 min) |"
    rows = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "—"
        rows.append(
            f"| {f.name} | {_num(f.measured, f.unit)} | {_num(f.baseline, f.unit)} | {ratio} "
            f"| {f.target} | {'yes' if f.met else '**no**'} | {f.load} |"
        )
    return "\n".join(rows)


# ---------------------------------------------------------------- databases


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_available() -> bool:
    from sqlalchemy import create_engine, text

    url = OWN_PG_DATABASE or f"{PG_SERVER}/postgres"
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _pg_admin(sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@contextlib.contextmanager
def database(kind: str, name: str) -> Iterator[str]:
    """A new, empty database for one benchmark, removed afterwards: a SQLite file in a
    temporary directory, or a PostgreSQL database of its own (never the tests' ``test``)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'elegere.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}")
    if OWN_PG_DATABASE:
        from tests.fixtures.service import reset_database

        reset_database(OWN_PG_DATABASE)
        try:
            yield OWN_PG_DATABASE
        finally:
            reset_database(OWN_PG_DATABASE)
        return
    db = f"elegere_bench_{name}"
    _pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    _pg_admin(f"CREATE DATABASE {db}")
    try:
        yield f"{PG_SERVER}/{db}"
    finally:
        _pg_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def database_kinds(choice: str) -> list[str]:
    """``sqlite``, ``postgresql`` or ``both`` (PostgreSQL skipped, and said so, when down)."""
    kinds = ["sqlite", "postgresql"] if choice == "both" else [choice]
    if "postgresql" in kinds and not postgres_available():
        where = OWN_PG_DATABASE or PG_SERVER
        print(f"PostgreSQL at {where} does not answer: its figures are skipped.", flush=True)
        kinds.remove("postgresql")
    return kinds


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


# ---------------------------------------------------------------- the service in this process


@dataclass
class InProcessService:
    url: str
    ctx: ServiceContext
    token: str


@contextlib.contextmanager
def service_in_thread(database_url: str, **overrides: object) -> Iterator[InProcessService]:
    """The real app with the demo data, served by uvicorn in a thread on 127.0.0.1."""
    from elegere_widgets.server.app import create_app
    from elegere_widgets.server.heap import freeze_startup_heap
    from elegere_widgets.server.seed import create_token, seed_demo
    from tests.fixtures.service import build_settings, serve_in_thread

    with tempfile.TemporaryDirectory(prefix="elegere-bench-data-") as data_dir:
        app = create_app(build_settings(database_url, data_dir, **overrides))
        seed_demo(app.state.ctx)
        # What `elegere serve` does once started (the app's start-up hook, which the test
        # server leaves off): the process's heap so far is kept out of full collections.
        freeze_startup_heap()
        with serve_in_thread(app) as url:
            yield InProcessService(url, app.state.ctx, create_token(app.state.ctx, ADMIN))


def seed_servers(
    ctx: ServiceContext,
    *,
    own: int,
    inherited: int,
    start: int = 0,
    workspace: str = SALES,
    settings: Sequence[SmtpSettings] = (),
) -> list[str]:
    """Add SMTP servers: ``own`` in ``workspace`` and ``inherited`` of the organization, each
    with usages (a custom action and a scheduler job in ``workspace``; an inherited one also a
    custom action in the other workspace, which the workspace must not count). Numbering
    starts at ``start`` so it can be called again. Returns their ids. ``settings``, taken in
    turn, say where the servers point (default: one SMTP server that does not exist).

    The servers are added as the demo seed adds its own (the service's create command, a
    passing test a day ago), so their rows are what the API would have written."""
    from pydantic import SecretStr

    from elegere_widgets.models import SmtpSettings
    from elegere_widgets.server.seed import add_smtp_server
    from elegere_widgets.server.store.tables import CustomActionRow, SchedulerJobRow

    other = SUPPORT if workspace == SALES else SALES
    settings = settings or [
        SmtpSettings(
            server="smtp.bench.example",
            port=587,
            use_ssl=True,
            account="bench",
            sender_address="bench@acme.example",
            password=SecretStr("bench-password"),
        )
    ]
    tested = datetime.now(UTC) - timedelta(days=1)
    ids: list[str] = []
    usages: list[Any] = []
    with ctx.sessions() as session:
        for kind, count in (("own", own), ("inh", inherited)):
            for i in range(start, start + count):
                ident = f"srv_bench_{kind}_{i:05d}"
                ws = workspace if kind == "own" else None
                where = settings[len(ids) % len(settings)]
                add_smtp_server(ctx, session, ident, f"Bench {kind} {i:05d}", ws, where, tested)
                ids.append(ident)
                # Its custom action and scheduler job; an inherited one also a custom action in
                # the other workspace.
                made = [
                    (CustomActionRow, "ca", workspace, "Action"),
                    (SchedulerJobRow, "job", workspace, "Job"),
                ]
                if kind == "inh":
                    made.append((CustomActionRow, "ca2", other, "Other"))
                usages += [
                    model(
                        id=f"{prefix}_{ident}",
                        workspace_id=where_used,
                        name=f"{label} {kind} {i}",
                        email_server_id=ident,
                    )
                    for model, prefix, where_used, label in made
                ]
        session.add_all(usages)
        session.commit()
    return ids


# ---------------------------------------------------------------- the service as processes


def cli(*args: str, env: dict[str, str]) -> str:
    """``elegere …`` (the service's CLI) in a subprocess; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "elegere_widgets.server.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"elegere {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def service_env(data_dir: str) -> dict[str, str]:
    """One data dir for every process of a run: they must share the secret key."""
    return {**os.environ, "ELEGERE_DATA_DIR": data_dir, "PYTHONPATH": str(ROOT)}


@dataclass
class ServiceProcess:
    url: str
    pid: int


@contextlib.contextmanager
def service_process(database_url: str, env: dict[str, str]) -> Iterator[ServiceProcess]:
    """``elegere serve`` as a real process on a free port. Stopped by its own pid."""
    port = free_port()
    log_path = Path(env["ELEGERE_DATA_DIR"]) / f"serve-{port}.log"
    with log_path.open("w") as log:  # a file, not a pipe nobody reads: it can never fill up
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "elegere_widgets.server.cli",
                "serve",
                "--database",
                database_url,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log_path)
        yield ServiceProcess(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited: {log_path.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the service at {url} did not answer in 30 s")


# ---------------------------------------------------------------- the worker as processes

WORKER = (sys.executable, "-m", "elegere_widgets.server.cli", "worker")


def worker_env(ctx: ServiceContext, **extra: str) -> dict[str, str]:
    """What ``elegere worker`` needs to serve ``ctx``'s store (and queue): the same database,
    data directory (the secret key, SqliteHuey's file) and queue, the test peers on loopback
    reachable; ``extra`` ELEGERE_* settings on top."""
    from tests.fixtures.processes import store_env

    return store_env(ctx, PYTHONPATH=str(ROOT), **extra)


@contextlib.contextmanager
def worker_processes(
    env: dict[str, str], logs: Path, *, count: int = 1, threads: int = 4, settle_s: float = 0.5
) -> Iterator[float]:
    """``count`` worker processes, up (their start line logged) before this yields the
    ``time.time()`` at which the last one said so; ``settle_s`` later (their first sweep of the
    store is then not part of what is timed). Stopped with SIGTERM, by their own pids."""
    procs: list[subprocess.Popen[bytes]] = []
    paths = [logs / f"worker{i}.log" for i in range(count)]
    try:
        for path in paths:
            with path.open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [*WORKER, "--threads", str(threads)],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 60
        while not all(b"thread(s)" in p.read_bytes() for p in paths):
            if any(proc.poll() is not None for proc in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"a worker did not start: {paths[0].read_text()[-2000:]}")
            time.sleep(0.02)
        started = time.time()
        time.sleep(settle_s)
        yield started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def data_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="elegere-bench-data-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
