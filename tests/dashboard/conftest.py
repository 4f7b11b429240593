"""Dashboard tests: the real service in a thread, on SQLite only (the store's PostgreSQL paths are
the API tests' business), and no kernel: ipywidgets work in plain pytest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from elegere_widgets.dashboard.app import Dashboard


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'elegere.db'}"


def run_now(work: Callable[[], None]) -> None:
    work()


@pytest.fixture
def make_dashboard() -> Iterator[Callable[..., Dashboard]]:
    made: list[Dashboard] = []

    def make(url: str, client: Client | None = None, **kwargs: object) -> Dashboard:
        kwargs.setdefault("run_in_thread", run_now)  # the sign-in's worker: at once, in tests
        dashboard = Dashboard(url, client, **kwargs)  # type: ignore[arg-type]
        made.append(dashboard)
        return dashboard

    yield make
    for dashboard in made:
        dashboard.close()
