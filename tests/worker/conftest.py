from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elegere_widgets.server.context import ServiceContext
from tests.fixtures.messages import make_store
from tests.fixtures.processes import ELEGERE, stop_all, store_env
from tests.fixtures.smtp import SmtpPeer


class Clock:
    """The worker's idea of now: real time, moved ahead by the test (retries without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    @property
    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    @now.setter
    def now(self, value: datetime) -> None:
        self.offset = value - datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    ctx = make_store(database_url, tmp_path)
    yield ctx
    ctx.engine.dispose()


@pytest.fixture
def sink() -> Iterator[SmtpPeer]:
    with SmtpPeer("plain") as peer:
        yield peer


def wait_until(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    """A generous deadline against hanging forever; not a speed check."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def worker_env(ctx: ServiceContext, **extra: str) -> dict[str, str]:
    return store_env(
        ctx,
        **{
            "ELEGERE_LEASE_S": "3",
            # Below the lease, as in production (120 s over 30 s): batches are recorded ten at
            # a time, not renewed and recorded before every send.
            "ELEGERE_SEND_BUDGET_S": "2",
            "ELEGERE_SWEEP_INTERVAL_S": "0.5",
            **extra,
        },
    )


class Workers:
    """`elegere worker` processes, each writing its output to ``log(n)``."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def log(self, n: int) -> Path:
        return self.tmp_path / f"worker{n}.log"

    def start(self, ctx: ServiceContext, threads: int = 4, **env: str) -> subprocess.Popen[bytes]:
        """A worker over ``ctx``'s store; ``env`` adds to (or overrides) its ELEGERE_* settings."""
        log = open(self.log(len(self.procs)), "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [*ELEGERE, "worker", "--threads", str(threads)],
            env=worker_env(ctx, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        stop_all(self.procs, timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.stop_all()
