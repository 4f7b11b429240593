"""The dashboard against the real service: signed in by token, by the sign-in form, switching
workspaces, and what a person sees when something is wrong."""

from __future__ import annotations

import threading
from collections.abc import Callable

import ipywidgets
import pytest

from elegere_widgets.client import Client
from elegere_widgets.dashboard.app import NO_WORKSPACE, TOKEN_REFUSED, Dashboard
from elegere_widgets.dashboard.demo import DemoSmtp
from elegere_widgets.dashboard.sign_in import EMPTY, WRONG_CREDENTIALS
from elegere_widgets.widgets import EmailServersPanel
from tests.conftest import ADMIN, ANALYST
from tests.fixtures.service import RunningService

MakeDashboard = Callable[..., Dashboard]
DEMO = DemoSmtp("127.0.0.1", 2525, True, "demo", "demo-smtp-password", "demo@acme.example")


def shown(widget: ipywidgets.Widget) -> bool:
    return bool(widget.layout.display != "none")


def server_names(dashboard: Dashboard) -> list[str]:
    panel = dashboard.panel
    assert isinstance(panel, EmailServersPanel)
    return [row.cells[0] for row in panel.table.rows]


def test_with_a_token_the_page_shows_the_organization_and_the_servers(
    service: RunningService, make_dashboard: MakeDashboard
) -> None:
    client = Client(service.url, service.tokens[ADMIN])
    dashboard = make_dashboard(service.url, client, demo=DEMO).start()
    assert dashboard.status.kind != "error", dashboard.status.text
    assert "Acme" in dashboard.organization.value
    assert "admin@acme.example" in dashboard.user_label.value
    assert dashboard.workspace_picker.options == (("Sales", "ws_sales"),)
    assert shown(dashboard.workspace_picker) and shown(dashboard.panel_area)
    assert not shown(dashboard.sign_in_form) and not shown(dashboard.sign_out_button)
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]
    # The demo mail server's settings, as the form labels them.
    assert shown(dashboard.help)
    for text in ("127.0.0.1", "2525", "demo-smtp-password", "Use SSL"):
        assert text in dashboard.help.value
    client.close()


def test_workspace_picker_switches_the_panel(
    service: RunningService,
    make_dashboard: MakeDashboard,
    delegate: Client,
    admin: Client,
) -> None:
    delegate.workspaces.grant_admin("ws_support", ADMIN)
    dashboard = make_dashboard(service.url, admin).start()
    assert [label for label, _ in dashboard.workspace_picker.options] == ["Sales", "Support"]
    first = dashboard.panel
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]

    dashboard.choose_workspace("Support")  # what picking it in the drop-down does
    assert dashboard.workspace is not None and dashboard.workspace.name == "Support"
    assert server_names(dashboard) == ["Acme Relay"]  # Support has only the inherited one
    assert dashboard.panel_area.children == (dashboard.panel,)
    assert first is not None and first.comm is None  # the old panel's widgets are closed

    dashboard.workspace_picker.value = "ws_sales"
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]
    assert dashboard.status.text == ""


def test_sign_in_form_with_the_right_password_opens_the_dashboard(
    service: RunningService, make_dashboard: MakeDashboard
) -> None:
    dashboard = make_dashboard(service.url)
    assert shown(dashboard.sign_in_form) and not shown(dashboard.panel_area)
    form = dashboard.sign_in_form
    form.email.value = "Admin@Acme.example "  # as people type it
    form.password.value = "demo"
    form.sign_in_button.click()
    assert form.status.text == "" and dashboard.status.kind != "error", dashboard.status.text
    assert not shown(form) and shown(dashboard.panel_area)
    assert form.password.value == ""  # nothing secret stays in a widget
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]
    assert shown(dashboard.sign_out_button)

    dashboard.sign_out_button.click()
    assert shown(form) and not shown(dashboard.panel_area) and dashboard.client is None
    assert dashboard.panel is None and dashboard.status.text == "Signed out."


def test_sign_in_form_with_a_wrong_password_says_so(
    service: RunningService, make_dashboard: MakeDashboard
) -> None:
    dashboard = make_dashboard(service.url)
    form = dashboard.sign_in_form
    form.email.value = ADMIN
    form.password.value = "not-the-password"
    form.sign_in_button.click()
    assert form.status.kind == "error" and form.status.text == WRONG_CREDENTIALS
    assert shown(form) and dashboard.client is None and dashboard.panel is None
    assert not form.sign_in_button.disabled  # ready for another try

    form.password.value = ""
    form.submit()
    assert form.status.text == EMPTY


def test_sign_in_reads_the_fields_after_what_the_browser_still_sends(
    service: RunningService, make_dashboard: MakeDashboard
) -> None:
    threads: list[threading.Thread] = []

    def in_a_thread(work: Callable[[], None]) -> None:
        threads.append(threading.Thread(target=work))
        threads[-1].start()

    dashboard = make_dashboard(service.url, run_in_thread=in_a_thread)
    form = dashboard.sign_in_form
    form.email.value = ADMIN
    form.password.value = "de"
    form.sign_in_button.click()  # the click overtook the last characters typed...
    form.password.value = "demo"  # ...which reach the kernel just after it
    form.sign_in_button.click()  # and a second click while signing in does nothing
    assert form.sign_in_button.disabled
    threads[0].join(30)
    assert len(threads) == 1
    assert form.status.text == "" and dashboard.client is not None
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]


def test_a_user_without_workspaces_gets_a_plain_message(
    service: RunningService, make_dashboard: MakeDashboard, analyst: Client
) -> None:
    dashboard = make_dashboard(service.url, analyst).start()
    assert shown(dashboard.notice) and NO_WORKSPACE in dashboard.notice.value
    assert not shown(dashboard.workspace_picker) and dashboard.panel is None
    assert ANALYST in dashboard.user_label.value


def test_a_token_the_service_refuses_leads_to_the_sign_in_form(service: RunningService) -> None:
    dashboard = Dashboard.from_env({"ELEGERE_URL": service.url, "ELEGERE_TOKEN": "elg_revoked"})
    try:
        dashboard.start()
        assert dashboard.status.text == TOKEN_REFUSED
        assert shown(dashboard.sign_in_form) and dashboard.client is None
    finally:
        dashboard.close()


def test_service_down_shows_a_message_and_try_again(make_dashboard: MakeDashboard) -> None:
    from tests.fixtures.smtp import closed_port

    url = f"http://127.0.0.1:{closed_port()}"
    dashboard = make_dashboard(url, Client(url, "elg_any", timeout=5)).start()
    assert dashboard.status.kind == "error"
    assert url in dashboard.status.text and "Traceback" not in dashboard.status.text
    assert shown(dashboard.retry_button) and not shown(dashboard.sign_in_form)
    dashboard.retry_button.click()  # still down: the same message, no exception
    assert dashboard.status.kind == "error" and shown(dashboard.retry_button)


def test_a_bug_in_a_handler_shows_a_message_not_a_traceback(
    service: RunningService, make_dashboard: MakeDashboard, admin: Client
) -> None:
    def broken(client: Client, workspace_id: str) -> ipywidgets.Widget:
        raise RuntimeError("boom")

    dashboard = make_dashboard(service.url, admin, panel_factory=broken).start()
    assert dashboard.status.kind == "error" and "bug" in dashboard.status.text
    assert "boom" not in dashboard.status.text


@pytest.mark.parametrize(
    ("environ", "signed_in"),
    [
        ({"ELEGERE_URL": "http://127.0.0.1:1", "ELEGERE_TOKEN": "elg_x"}, True),
        ({"ELEGERE_URL": "http://127.0.0.1:1", "ELEGERE_TOKEN": "  "}, False),
        ({}, False),
    ],
)
def test_from_env(environ: dict[str, str], signed_in: bool) -> None:
    dashboard = Dashboard.from_env(environ)
    try:
        assert (dashboard.client is not None) is signed_in
        assert shown(dashboard.sign_in_form) is not signed_in
        assert dashboard.url == environ.get("ELEGERE_URL", "http://127.0.0.1:8765")
        assert dashboard.help.value == ""  # no demo server outside `make run`
    finally:
        dashboard.close()


def test_demo_settings_round_trip_and_bad_values_are_ignored() -> None:
    assert DemoSmtp.from_env({"ELEGERE_DEMO_SMTP": DEMO.to_env()}) == DEMO
    assert DemoSmtp.from_env({"ELEGERE_DEMO_SMTP": "{not json"}) is None
    assert DemoSmtp.from_env({"ELEGERE_DEMO_SMTP": '{"server": "x"}'}) is None
    assert DemoSmtp.from_env({}) is None
    assert "<script>" not in DemoSmtp("h", 1, False, "<script>", "p", "a@b.example").help_html()


def test_a_delegate_picks_the_organization_scope_first(
    service: RunningService, make_dashboard: MakeDashboard, delegate: Client
) -> None:
    delegate.workspaces.grant_admin("ws_sales", "delegate@acme.example")
    dashboard = make_dashboard(service.url, delegate).start()
    picker = dashboard.workspace_picker
    assert picker.description == "Scope"
    assert list(picker.options) == [("Acme (organization)", "org:org_acme"), ("Sales", "ws_sales")]
    assert server_names(dashboard) == ["Acme Relay", "Sales Mailer"]  # Sales, as before

    dashboard.choose_organization()  # what picking it in the drop-down does
    panel = dashboard.panel
    assert isinstance(panel, EmailServersPanel) and panel.organization is not None
    assert [row.cells[3] for row in panel.table.rows] == ["This organization"]
    assert server_names(dashboard) == ["Acme Relay"]
    assert "Organization Settings" in dashboard.organization.value
    assert dashboard.status.text == ""


def test_a_delegate_without_a_workspace_sees_the_organization_by_its_name(
    service: RunningService, make_dashboard: MakeDashboard, delegate: Client
) -> None:
    # No workspace of its own to take the organization's name from: /me gives it.
    dashboard = make_dashboard(service.url, delegate).start()
    assert list(dashboard.workspace_picker.options) == [("Acme (organization)", "org:org_acme")]
    assert "Acme" in dashboard.organization.value
    assert server_names(dashboard) == ["Acme Relay"]


def test_a_workspace_admin_has_no_organization_scope(
    service: RunningService, make_dashboard: MakeDashboard, admin: Client
) -> None:
    dashboard = make_dashboard(service.url, admin).start()
    assert dashboard.workspace_picker.description == "Workspace"
    assert [value for _, value in dashboard.workspace_picker.options] == ["ws_sales"]
    with pytest.raises(ValueError, match="Delegate"):
        dashboard.choose_organization()
