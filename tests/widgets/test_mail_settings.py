"""Which server sends notifications, in the panel: a Workspace Admin chooses the workspace's
notifications server (or the organization's default), a Delegate the organization's default
server; against the real service, and a notification then goes through the chosen server."""

from __future__ import annotations

from collections.abc import Callable

from elegere_widgets.client import Client
from elegere_widgets.client.messages import sender
from elegere_widgets.widgets import EmailServersPanel
from elegere_widgets.widgets.mail_settings import UNSET, MailSettingsView
from tests.fixtures.service import RunningService
from tests.widgets.support import shown
from tests.widgets.test_organization import add_organization_server

SALES, ORG = "ws_sales", "org_acme"
RELAY, MAILER = "srv_acme_relay", "srv_sales_mailer"
MakePanel = Callable[..., EmailServersPanel]


def open_view(panel: EmailServersPanel) -> MailSettingsView:
    panel.mail_settings_button.click()
    view = panel.mail_settings_view
    assert view is not None, panel.status.text
    assert shown(panel, view)
    return view


def notification_server(client: Client) -> str:
    """The server a notification of Sales is queued on (the service's routing, not ours)."""
    note = sender(notification="reply")
    accepted = client.messages.send(SALES, sender=note, to=["kunde@example.org"], subject="Hi")
    return accepted.email_server_id


def test_a_workspace_admin_moves_notifications_to_its_own_server_and_back(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    view = open_view(panel)
    # Unset: the organization's default sends, and the view names it.
    assert "the organization's default: <b>Acme Relay</b>" in view.current.value
    assert view.server.value == UNSET
    assert view.server.options[0] == ("Organization default (Acme Relay)", UNSET)
    assert {value for _label, value in view.server.options} == {UNSET, RELAY, MAILER}
    mailer = next(s.name for s in panel.servers if s.id == MAILER)

    view.server.value = MAILER
    view.save_button.click()
    assert panel.status.kind == "ok", (panel.status.text, view.status.text)
    assert panel.status.text == f"The notifications of Sales now go through '{mailer}'."
    assert panel.view is None  # closed
    assert admin.mail_settings.get(SALES).notifications_server_id == MAILER
    assert notification_server(admin) == MAILER

    view = open_view(panel)
    assert f"its notifications server <b>{mailer}</b>" in view.current.value
    view.server.value = UNSET
    view.save_button.click()
    assert panel.status.text == (
        "The notifications of Sales now go through the organization's default: 'Acme Relay'."
    )
    assert admin.mail_settings.get(SALES).notifications_server_id is None
    assert notification_server(admin) == RELAY


def test_a_change_made_meanwhile_is_not_overwritten(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    view = open_view(panel)
    admin.mail_settings.set_notifications_server(SALES, RELAY)  # someone else, meanwhile
    view.server.value = MAILER
    view.save_button.click()
    assert view.status.kind == "error"
    assert "Someone else changed this setting" in view.status.text
    assert "now: Acme Relay" in view.status.text
    assert admin.mail_settings.get(SALES).notifications_server_id == RELAY
    assert shown(view, view.reload_button)
    view.reload_button.click()
    assert view.server.value == RELAY and not shown(view, view.reload_button)
    view.server.value = MAILER
    view.save_button.click()
    assert panel.status.kind == "ok", view.status.text
    assert admin.mail_settings.get(SALES).notifications_server_id == MAILER


def test_saving_the_stored_choice_says_there_is_nothing_to_save(
    admin: Client, make_panel: MakePanel
) -> None:
    view = open_view(make_panel(admin))
    view.save_button.click()
    assert view.status.text == "Nothing to save: choose another server first."
    view.cancel_button.click()
    assert admin.mail_settings.get(SALES).notifications_server_id is None


def test_a_delegate_changes_the_organization_default_server(
    delegate: Client, admin: Client, make_panel: MakePanel, service: RunningService
) -> None:
    backup = add_organization_server(service, "Org Backup")
    panel = make_panel(delegate, None, organization="Acme")
    assert panel.mail_settings_button.description == "Default server"
    view = open_view(panel)
    assert "send them through <b>Acme Relay</b>" in view.current.value
    # The organization's own servers only, or none.
    assert {value for _label, value in view.server.options} == {UNSET, RELAY, backup}
    view.server.value = backup
    view.save_button.click()
    assert panel.status.text == "'Org Backup' is now the default server of Acme.", view.status.text
    assert delegate.mail_settings.get_organization(ORG).default_server_id == backup
    # A workspace that names no notifications server now sends through it.
    assert notification_server(admin) == backup
    assert (
        "the organization's default: <b>Org Backup</b>"
        in open_view(make_panel(admin)).current.value
    )


def test_without_a_default_server_the_workspace_view_says_what_to_do(
    delegate: Client, admin: Client, make_panel: MakePanel
) -> None:
    view = open_view(make_panel(delegate, None, organization="Acme"))
    view.server.value = UNSET
    view.save_button.click()
    assert delegate.mail_settings.get_organization(ORG).default_server_id is None
    view = open_view(make_panel(admin))
    assert "ask a Delegate of your organization to set its default server" in (view.current.value)
    assert view.server.options[0] == ("Organization default", UNSET)


def test_an_analyst_sees_no_setting_to_change(analyst: Client, make_panel: MakePanel) -> None:
    panel = make_panel(analyst)
    assert panel.denied
    assert not shown(panel, panel.mail_settings_button)
    org_panel = make_panel(analyst, None, organization="Acme")
    assert org_panel.denied and not shown(org_panel, org_panel.mail_settings_button)
