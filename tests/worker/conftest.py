from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elegere_widgets.server.context import ServiceContext
from tests.fixtures.messages import make_store
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
