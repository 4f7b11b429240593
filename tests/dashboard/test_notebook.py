"""``notebooks/email_servers.ipynb`` runs top to bottom in a real kernel against the real service,
with a token and without one (the sign-in form), and reads as a how-to in JupyterLab."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ADMIN
from tests.fixtures.service import RunningService

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "email_servers.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def execute(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    # The kernel inherits this process's environment, as Voilà's kernels inherit Voilà's.
    for name in ("ELEGERE_URL", "ELEGERE_TOKEN", "ELEGERE_DEMO_SMTP", "VOILA_PREHEAT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    return nb


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def assert_clean(nb: Any) -> None:
    for out in outputs(nb):
        assert out["output_type"] != "error", "".join(out.get("traceback", []))
        assert out.get("name") != "stderr", out.get("text")
    views = [out for out in outputs(nb) if WIDGET_VIEW in out.get("data", {})]
    assert len(views) == 1, "the dashboard is the notebook's one visible output"


@pytest.mark.slow
def test_notebook_runs_with_a_token(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = execute(monkeypatch, ELEGERE_URL=service.url, ELEGERE_TOKEN=service.tokens[ADMIN])
    assert_clean(nb)
    # nbclient keeps the widgets' state: what the page showed.
    state = json.dumps(nb.metadata["widgets"])
    for shown in ("Acme Relay", "Sales Mailer", "Alex Admin", "elegere-workspace-picker"):
        assert shown in state
    assert "elegere-status-error" not in state


@pytest.mark.slow
def test_notebook_runs_without_a_token_and_shows_the_sign_in_form(
    service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = execute(monkeypatch, ELEGERE_URL=service.url)
    assert_clean(nb)
    state = json.dumps(nb.metadata["widgets"])
    assert "elegere-sign-in-email" in state and "Sales Mailer" not in state


def test_every_code_cell_comes_after_a_how_to() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(nb)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    for before, cell in itertools.pairwise(cells):
        if cell.cell_type == "code":
            assert before.cell_type == "markdown", f"no how-to above: {cell.source!r}"
            assert not cell.outputs, "the notebook is stored without outputs"
    # Voilà hides the how-tos (the tag becomes a CSS class the first cell's style hides).
    for cell in cells:
        if cell.cell_type == "markdown":
            assert "howto" in cell.metadata.get("tags", [])
    assert ".celltag_howto" in cells[0].source


def test_the_dashboard_imports_only_what_the_page_needs() -> None:
    probe = (
        "import sys\n"
        "from elegere_widgets.dashboard.app import Dashboard, wait_for_visitor\n"
        "heavy = ('pandas', 'matplotlib', 'pyarrow', 'msal', 'fastapi', 'sqlalchemy', "
        "'uvicorn', 'aiosmtpd', 'voila', 'cryptography')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
