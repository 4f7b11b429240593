"""Widget tests: the real service on SQLite only, a real aiosmtpd peer, and no kernel.

ipywidgets work in plain pytest with a dummy comm: ``button.click()`` runs the handlers and
setting ``.value`` is what typing does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from elegere_widgets.widgets import EmailServersPanel


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the store's PostgreSQL paths are the API tests' business."""
    return f"sqlite:///{tmp_path / 'elegere.db'}"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


def run_now(work: Callable[[], None]) -> None:
    """A runner that runs the 'background' work at once, so a test reads its outcome next."""
    work()


@pytest.fixture
def make_panel() -> Iterator[Callable[..., EmailServersPanel]]:
    made: list[EmailServersPanel] = []

    def make(
        client: Client, workspace: str | None = "Sales", **kwargs: object
    ) -> EmailServersPanel:
        kwargs.setdefault("run_in_thread", run_now)
        panel = EmailServersPanel(client, workspace, **kwargs)  # type: ignore[arg-type]
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()
