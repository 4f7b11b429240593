"""Who sees what, and every error of the client as a readable message — never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable

import ipywidgets
import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import ConnectionTestResult
from elegere_widgets.widgets import EmailServersPanel
from elegere_widgets.widgets.common import BUG_MESSAGE
from tests.conftest import ADMIN, ANALYST, DELEGATE
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import closed_port
from tests.widgets.support import fill_smtp, shown, walk

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


def controls(panel: EmailServersPanel) -> list[ipywidgets.Widget]:
    return [w for w in walk(panel) if isinstance(w, ipywidgets.Button | ipywidgets.ValueWidget)]


@pytest.mark.parametrize(
    ("who", "workspace"),
    [(ANALYST, "Sales"), (ANALYST, SALES), (DELEGATE, "Sales")],
    ids=["analyst-by-name", "analyst-by-id", "delegate"],
)
def test_without_the_workspace_admin_right_a_plain_message_and_nothing_else(
    client_for: Callable[[str], Client], make_panel: MakePanel, who: str, workspace: str
) -> None:
    panel = make_panel(client_for(who), workspace)
    assert panel.denied
    assert list(panel.children) == [panel.stylesheet, panel.title, panel.access_message]
    text = panel.access_text
    assert "Workspace Admin right on 'Sales'" in text or (
        "Workspace Admin right on 'ws_sales'" in text
    )
    assert "Delegate" in text and "grant" in text
    assert not shown(panel, panel.add_button) and not shown(panel, panel.table)
    assert not shown(panel, panel.refresh_button)
    assert [w for w in controls(panel) if not isinstance(w, ipywidgets.HTML)] == []
    assert "Traceback" not in panel.access_message.value


def test_losing_the_right_while_the_panel_is_open_shows_the_message(
    admin: Client, delegate: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    assert not panel.denied
    delegate.workspaces.revoke_admin(SALES, ADMIN)
    panel.refresh_button.click()
    assert panel.denied and "Workspace Admin right on 'Sales'" in panel.access_text
    assert not shown(panel, panel.table)


def test_a_service_that_is_down_is_a_readable_message_and_refresh_retries(
    make_panel: MakePanel,
) -> None:
    dead = Client(f"http://127.0.0.1:{closed_port()}", "some-token", timeout=5)
    panel = make_panel(dead)
    assert panel.status.kind == "error"
    assert "Could not reach the eLegere service" in panel.status.text
    assert "connection refused" in panel.status.text.lower()
    assert shown(panel, panel.refresh_button) and panel.add_button.disabled
    assert not shown(panel, panel.table)  # no "no servers yet": we do not know
    panel.refresh_button.click()
    assert panel.status.kind == "error" and "Could not reach" in panel.status.text
    dead.close()


def test_the_service_going_down_after_loading_shows_in_each_view(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    from tests.fixtures.smtp import SmtpPeer

    panel = make_panel(admin)
    dead = Client(f"http://127.0.0.1:{closed_port()}", service.tokens[ADMIN], timeout=5)
    panel.client = dead
    panel.refresh_button.click()
    assert "Could not reach the eLegere service" in panel.status.text
    assert [r.cells[0] for r in panel.table.rows] == ["Acme Relay", "Sales Mailer"]  # kept

    panel.table.rows[1].settings_button.click()
    assert panel.update_view is None and "Could not reach" in panel.status.text
    panel.table.rows[1].delete_button.click()
    assert panel.delete_dialog is None and "Could not reach" in panel.status.text

    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    wizard.next_button.click()
    peer = SmtpPeer("plain")  # never started: the test does not get that far
    peer.port = 2525
    fill_smtp(wizard.form, peer)  # type: ignore[arg-type]
    wizard.next_button.click()
    wizard.test_button.click()
    assert wizard.tester.status.kind == "error"
    assert "Could not reach the eLegere service" in wizard.tester.status.text
    assert wizard.next_button.disabled and not wizard.test_button.disabled
    dead.close()


def test_a_server_deleted_by_someone_else_is_a_readable_404(
    admin: Client, client_for: Callable[[str], Client], make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    other = client_for(ADMIN)
    other.email_servers.delete(SALES, "srv_sales_mailer", replacement_id="srv_acme_relay")
    panel.table.rows[1].settings_button.click()
    assert panel.update_view is None
    assert panel.status.kind == "error" and "There is no email server" in panel.status.text


def test_a_bug_in_a_handler_is_logged_and_the_status_says_so(
    admin: Client, make_panel: MakePanel, caplog: pytest.LogCaptureFixture
) -> None:
    panel = make_panel(admin)

    def broken(spec: object, on_stage: object) -> ConnectionTestResult:
        raise RuntimeError("a bug, not an ElegereError")

    panel._test = broken  # type: ignore[method-assign]
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    wizard.next_button.click()
    form = wizard.form
    assert form is not None
    form.fields["name"].value = "x"
    form.fields["server"].value = "smtp.example.com"
    form.fields["account"].value = "a"
    form.fields["sender_address"].value = "a@example.com"
    form.fields["password"].value = "pw-in-a-bug"
    wizard.next_button.click()
    with caplog.at_level(logging.ERROR, logger="elegere_widgets.widgets"):
        wizard.test_button.click()
    assert wizard.tester.status.text == BUG_MESSAGE
    assert any(
        r.exc_info and "a bug, not an ElegereError" in str(r.exc_info[1]) for r in caplog.records
    )
    assert all("pw-in-a-bug" not in r.getMessage() for r in caplog.records)
    assert wizard.next_button.disabled


def test_the_panel_is_a_widget_that_displays_itself(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    assert isinstance(panel, ipywidgets.VBox)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert repr(panel) == "EmailServersPanel()"


def test_the_public_name_is_exported() -> None:
    import elegere_widgets

    assert elegere_widgets.EmailServersPanel is EmailServersPanel
    assert "EmailServersPanel" in elegere_widgets.__all__


def test_closing_the_panel_releases_every_widget(admin: Client, make_panel: MakePanel) -> None:
    from tests.widgets.support import live_widgets

    before = live_widgets()
    panel = make_panel(admin)
    panel.add_button.click()
    panel.wizard.type_choice.value = "smtp"  # type: ignore[union-attr]
    panel.wizard.type_choice.value = "microsoft_graph"  # type: ignore[union-attr]
    panel.table.rows[1].settings_button.click()  # replaces the wizard
    panel.table.rows[1].delete_button.click()  # replaces the update form
    assert live_widgets() > before
    panel.close()
    assert live_widgets() == before


def test_without_a_workspace_the_one_the_caller_administers(
    admin: Client, analyst: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin, None)
    assert panel.workspace is not None and panel.workspace.id == SALES
    assert [row.cells[0] for row in panel.table.rows] == ["Acme Relay", "Sales Mailer"]
    denied = make_panel(analyst, None)
    assert denied.denied and "Workspace Admin right on a workspace" in denied.access_text


def test_an_empty_workspace_name_is_a_programming_error(admin: Client) -> None:
    with pytest.raises(ValueError, match="workspace must be"):
        EmailServersPanel(admin, "  ")
