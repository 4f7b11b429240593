"""The organization's own servers in the panel (``organization="Acme"``), for a Delegate:
the same table, update and delete as a workspace's, against the real service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from elegere_widgets.client import Client
from elegere_widgets.server.store.tables import EmailServerRow
from elegere_widgets.widgets import EmailServersPanel
from tests.conftest import ADMIN
from tests.fixtures.service import RunningService, add_server_row
from tests.widgets.support import shown

ORG, SALES, SUPPORT = "org_acme", "ws_sales", "ws_support"
RELAY, BACKUP, DESK, SALES_B = "srv_acme_relay", "srv_org_backup", "srv_support_desk", "srv_sales_b"
MakePanel = Callable[..., EmailServersPanel]


@pytest.fixture
def make_org_panel(make_panel: MakePanel) -> Callable[..., EmailServersPanel]:
    def make(client: Client, organization: str = "Acme") -> EmailServersPanel:
        return make_panel(client, None, organization=organization)

    return make


def add_organization_server(service: RunningService, name: str) -> str:
    """A second server of the organization, straight into the store (as the seed does)."""
    from tests.widgets.test_table import insert_servers

    [server_id] = insert_servers(service, [name])
    with service.ctx.sessions() as session:
        row = session.get(EmailServerRow, server_id)
        assert row is not None
        row.workspace_id, row.scope_key = None, f"org:{ORG}"
        session.commit()
    return server_id


def test_a_delegate_sees_the_organization_servers_as_its_own(
    delegate: Client, make_org_panel: Callable[..., EmailServersPanel]
) -> None:
    panel = make_org_panel(delegate)
    assert "Organization <b>Acme</b>" in panel.subtitle.value, (
        panel.status.text,
        panel.access_text,
    )
    assert [row.cells[:4] for row in panel.table.rows] == [
        ["Acme Relay", "SMTP", "smtp.acme.example:587", "This organization"]
    ]
    relay = panel.table.rows[0]
    assert not relay.settings_button.disabled and not relay.delete_button.disabled
    assert not panel.add_button.disabled
    # By id as well as by name.
    assert make_org_panel(delegate, "org_acme").table.rows[0].cells[0] == "Acme Relay"


def test_a_workspace_admin_is_told_what_right_it_needs(
    admin: Client, make_org_panel: Callable[..., EmailServersPanel]
) -> None:
    panel = make_org_panel(admin)
    assert panel.denied
    assert "Admin Delegate or IT Delegate role of 'Acme'" in panel.access_text
    assert shown(panel, panel.access_message) and not shown(panel, panel.table)


def test_update_an_organization_server(
    delegate: Client, admin: Client, make_org_panel: Callable[..., EmailServersPanel]
) -> None:
    panel = make_org_panel(delegate)
    panel.table.rows[0].settings_button.click()
    view = panel.update_view
    assert view is not None, panel.status.text
    view.form.fields["name"].value = "Acme Relay EU"
    view.save_button.click()
    assert panel.status.kind == "ok", panel.status.text
    assert panel.status.text == "Saved 'Acme Relay EU'."
    assert panel.table.rows[0].cells[0] == "Acme Relay EU"
    assert [s.name for s in delegate.organization_email_servers.list(ORG)] == ["Acme Relay EU"]
    # A workspace inherits the new name.
    assert "Acme Relay EU" in [s.name for s in admin.email_servers.list("ws_sales")]


def test_delete_an_organization_server_in_use_with_another_one_taking_over(
    delegate: Client,
    make_org_panel: Callable[..., EmailServersPanel],
    service: RunningService,
) -> None:
    backup_id = add_organization_server(service, "Acme Backup Relay")
    panel = make_org_panel(delegate)
    row = next(r for r in panel.table.rows if r.cells[0] == "Acme Relay")
    row.delete_button.click()
    dialog = panel.delete_dialog
    assert dialog is not None, panel.status.text
    # Used in Support, and the organization's default server: one choice for each place.
    assert dialog.usage_names == ["Reply to ticket", "Acme"]
    assert dialog.per_place and [p.place.name for p in dialog.places] == ["Acme", "Support"]
    assert [value for _, value in dialog.place(None).replacement.options[1:]] == [backup_id]
    assert backup_id in [value for _, value in dialog.place(SUPPORT).replacement.options]
    dialog.place(None).replacement.value = backup_id
    assert dialog.delete_button.disabled  # Support has no choice yet
    dialog.place(SUPPORT).replacement.value = backup_id
    dialog.delete_button.click()
    assert panel.status.kind == "ok", panel.status.text
    assert panel.status.text == (
        "Deleted 'Acme Relay'. Its usages now send through: Acme → 'Acme Backup Relay', "
        "Support → 'Acme Backup Relay'."
    )
    assert panel.delete_dialog is None
    assert [r.cells[0] for r in panel.table.rows] == ["Acme Backup Relay"]
    delegate.workspaces.grant_admin(SUPPORT, "delegate@acme.example")  # to read its actions
    [reply] = delegate.custom_actions.list(SUPPORT)
    assert reply.email_server_id == backup_id


def test_each_workspace_chooses_its_own_replacement_in_the_panel(
    delegate: Client,
    admin: Client,
    make_org_panel: Callable[..., EmailServersPanel],
    service: RunningService,
) -> None:
    # The relay sends Sales' "Send quote" and Support's "Reply to ticket", and is the
    # organization's default; each workspace has a server of its own, and there is a backup.
    add_server_row(service, BACKUP, "Acme Backup", None)  # type: ignore[arg-type]
    add_server_row(service, SALES_B, "Sales B", SALES)
    add_server_row(service, DESK, "Support Desk", SUPPORT)
    admin.custom_actions.update(SALES, "ca_send_quote", email_server_id=RELAY)
    panel = make_org_panel(delegate)
    row = panel.table.row_for(RELAY)
    assert row is not None
    row.delete_button.click()
    dialog = panel.delete_dialog
    assert dialog is not None, panel.status.text
    assert [p.place.name for p in dialog.places] == ["Acme", "Sales", "Support"]

    dialog.place(None).replacement.value = BACKUP
    dialog.place(SALES).replacement.value = SALES_B
    dialog.place(SUPPORT).replacement.value = DESK
    dialog.delete_button.click()

    assert panel.status.kind == "ok", panel.status.text
    assert panel.status.text == (
        "Deleted 'Acme Relay'. Its usages now send through: Acme → 'Acme Backup', "
        "Sales → 'Sales B', Support → 'Support Desk'."
    )
    assert [r.cells[0] for r in panel.table.rows] == ["Acme Backup"]
    # Through the API: each workspace's usage went where that workspace's choice said.
    delegate.workspaces.grant_admin(SUPPORT, ADMIN)  # for the admin to read Support's actions
    actions = {
        a.id: a.email_server_id for ws in (SALES, SUPPORT) for a in admin.custom_actions.list(ws)
    }
    assert actions == {"ca_send_quote": SALES_B, "ca_ticket_reply": DESK}
    assert delegate.mail_settings.get_organization(ORG).default_server_id == BACKUP
    assert RELAY not in [s.id for s in delegate.organization_email_servers.list(ORG)]


def test_the_panel_takes_a_workspace_or_an_organization_not_both(delegate: Client) -> None:
    with pytest.raises(ValueError, match="not both"):
        EmailServersPanel(delegate, "Sales", organization="Acme")
    with pytest.raises(ValueError, match="organization's name or id"):
        EmailServersPanel(delegate, organization=" ")
