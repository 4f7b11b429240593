"""``notebooks/audit_server_usage.ipynb`` runs top to bottom against the seeded service."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from elegere_widgets.client import Client
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .support import SALES, SQLITE_ONLY, SUPPORT, insert_delivery

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "audit_server_usage.ipynb"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca  # the peer's certificate, for the checks below


def _fail_and_recover(admin: Client, peer: SmtpPeer) -> None:
    """Real checks: a server added on the peer (a passing test), then two tests that fail
    while the peer is down, then one that passes when it is back."""
    spec = peer.spec("Notebook relay")
    token = admin.email_servers.test(SALES, spec).test_token
    assert token
    server = admin.email_servers.create(SALES, spec, test_token=token)
    retest = peer.spec(password=None).model_copy(update={"server_id": server.id})
    port = peer.port
    peer.stop()
    assert not admin.email_servers.test(SALES, retest).ok
    assert not admin.email_servers.test(SALES, retest).ok
    peer.start(port)
    assert admin.email_servers.test(SALES, retest).ok


def test_the_notebook_is_committed_clean_with_a_parameters_cell() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs stored"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "ELEGERE_URL = None" in tagged[0].source
    # Each code cell reads as a how-to: a Markdown cell comes before it, or it is a parameter.
    for before, cell in zip(nb.cells, nb.cells[1:], strict=False):
        if cell.cell_type == "code" and cell is not tagged[0]:
            assert before.cell_type == "markdown", cell.source[:60]


@pytest.mark.slow
@SQLITE_ONLY
def test_the_notebook_runs_without_errors(
    service: RunningService,
    admin: Client,
    delegate: Client,
    peer: SmtpPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both workspaces, so that every finding has something to show (Support has no server
    # of its own; the mailer's last test is 40 days old).
    delegate.workspaces.grant_admin(SUPPORT, "admin@acme.example")
    # One attempt of real traffic beside the seeded history (the worker writes such rows).
    insert_delivery(
        service,
        "dlv_real_one",
        kind="custom_action",
        status="deferred",
        error="451 4.3.0 Mailbox busy",
        message_id="msg_real_one",
        stage="mail",
        reply_code=451,
    )
    insert_delivery(
        service,
        "dlv_real_two",
        kind="custom_action",
        status="failed",
        error="550 5.1.1 No such user",
        message_id="msg_real_two",
        stage="rcpt",
        reply_code=550,
    )
    _fail_and_recover(admin, peer)
    # The kernel inherits this process's environment: the notebook's default path.
    monkeypatch.setenv("ELEGERE_URL", service.url)
    monkeypatch.setenv("ELEGERE_TOKEN", service.tokens["admin@acme.example"])
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)

    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)
    stderr = [o.text for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "Signed in to" in text and "Alex Admin" in text
    assert "Sales Mailer" in text and "Acme Relay" in text
    assert "last test older than 30 days" in text  # the demo's mailer
    assert "Support" in text  # relies only on the inherited relay
    assert "2 real deliveries (" in text and "seeded history rows left out" in text
    assert "msg_real_one" in text and "deferred" in text
    # Health over time: the relay's four checks, its one failure and its recovery, and the
    # server whose real delivery failed.
    assert "4 checks since" in text and "2 failed; servers checked: 1" in text
    assert "Notebook relay" in text and "failed at connect" in text
    assert "failures: 1, recovered: 1 (median time to recovery 0 days" in text
    assert "still failing: 0" in text
    [failed_most] = [
        o
        for c in nb.cells
        if c.cell_type == "code" and "failed_most" in c.source
        for o in c.outputs
    ]
    assert "Sales Mailer" in failed_most["data"]["text/plain"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # deliveries per day, failure rate, checks per day
