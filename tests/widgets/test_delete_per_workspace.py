"""The delete dialog of an organization server that several workspaces use: one replacement
choice per workspace (and one for the organization's own usages), built from what the real
service says, and the delete it confirms carried out by the real service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import unescape

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import ServerReplacements
from elegere_widgets.server.store.tables import EmailServerRow
from elegere_widgets.widgets import DeleteDialog
from tests.conftest import ADMIN
from tests.fixtures.service import RunningService, add_server_row
from tests.widgets.support import shown

ORG, SALES, SUPPORT = "org_acme", "ws_sales", "ws_support"
RELAY, BACKUP, DESK, SALES_B = "srv_acme_relay", "srv_org_backup", "srv_support_desk", "srv_sales_b"


@pytest.fixture
def relay_in_use(service: RunningService, admin: Client, delegate: Client) -> None:
    """The relay: Sales' "Send quote", Support's "Reply to ticket", the organization's
    default. Beside it an organization backup, and a server of Sales' and of Support's own."""
    add_server_row(service, BACKUP, "Acme Backup", None)  # type: ignore[arg-type]
    add_server_row(service, DESK, "Support Desk", SUPPORT)
    add_server_row(service, SALES_B, "Sales B", SALES)
    admin.custom_actions.update(SALES, "ca_send_quote", email_server_id=RELAY)


@dataclass
class Opened:
    """The dialog as the panel opens it for a Delegate, deleting through the real client."""

    dialog: DeleteDialog
    confirmed: list[ServerReplacements] = field(default_factory=list)


@pytest.fixture
def open_dialog(delegate: Client) -> Iterator[Callable[[], Opened]]:
    opened: list[Opened] = []
    api = delegate.organization_email_servers

    def open_() -> Opened:
        server = api.get(ORG, RELAY)
        holder: list[Opened] = []

        def delete(chosen: ServerReplacements) -> None:
            holder[0].confirmed.append(chosen)
            api.delete(
                ORG, RELAY, replacement_id=chosen.replacement_id, replacements=chosen.replacements
            )
            holder[0].dialog.close()  # as the panel does once the delete succeeded

        dialog = DeleteDialog(
            server,
            api.usages(ORG, RELAY),
            api.list(ORG),
            on_confirm=lambda _: pytest.fail("the single replacement is not offered"),
            on_cancel=lambda: None,
            places=api.replacements(ORG, RELAY),
            on_confirm_each=delete,
        )
        holder.append(Opened(dialog))
        opened.append(holder[0])
        return holder[0]

    yield open_
    for o in opened:
        o.dialog.close()


def _relay_exists(service: RunningService) -> bool:
    with service.ctx.sessions() as s:
        return s.get(EmailServerRow, RELAY) is not None


def test_one_choice_per_workspace_then_delete(
    relay_in_use: None,
    open_dialog: Callable[[], Opened],
    admin: Client,
    delegate: Client,
    service: RunningService,
) -> None:
    opened = open_dialog()
    dialog = opened.dialog
    assert dialog.per_place
    assert "in use in 3 places" in dialog.question.value
    assert not shown(dialog, dialog.replacement) and shown(dialog, dialog.place_box)
    assert [p.title.value for p in dialog.places] == [
        "Organization <b>Acme</b> (needs an organization server)",
        "Workspace <b>Sales</b>",
        "Workspace <b>Support</b>",
    ]
    assert "Default server of organization: <b>Acme</b>" in dialog.place(None).usages_list.value
    assert "Custom action: <b>Send quote</b>" in dialog.place(SALES).usages_list.value
    assert "Custom action: <b>Reply to ticket</b>" in dialog.place(SUPPORT).usages_list.value
    # Each workspace's own servers, then the organization's; never the relay itself.
    assert [label for label, _ in dialog.place(SUPPORT).replacement.options] == [
        "Choose a replacement…",
        "Support Desk (SMTP, mx.acme.example:587)",
        "Acme Backup (SMTP, mx.acme.example:587) — organization server",
    ]
    assert [v for _, v in dialog.place(SALES).replacement.options] == [
        "",
        SALES_B,
        "srv_sales_mailer",
        BACKUP,
    ]
    assert [v for _, v in dialog.place(None).replacement.options] == ["", BACKUP]

    assert dialog.delete_button.disabled
    dialog.place(None).replacement.value = BACKUP
    dialog.place(SALES).replacement.value = SALES_B
    assert dialog.delete_button.disabled  # Support still has no choice
    dialog.delete_button.click()  # a click anyway: said where, nothing deleted
    assert "Choose the server that takes over in Support first." in (
        dialog.place(SUPPORT).error.value
    )
    assert opened.confirmed == [] and _relay_exists(service)

    dialog.place(SUPPORT).replacement.value = DESK
    assert dialog.place(SUPPORT).error.value == ""
    assert not dialog.delete_button.disabled
    dialog.delete_button.click()

    assert opened.confirmed == [
        ServerReplacements(replacement_id=BACKUP, replacements={SALES: SALES_B, SUPPORT: DESK})
    ]
    assert not _relay_exists(service)
    delegate.workspaces.grant_admin(SUPPORT, ADMIN)  # to read Support's actions
    actions = {
        a.id: a.email_server_id for ws in (SALES, SUPPORT) for a in admin.custom_actions.list(ws)
    }
    assert actions == {"ca_send_quote": SALES_B, "ca_ticket_reply": DESK}
    assert delegate.mail_settings.get_organization(ORG).default_server_id == BACKUP


def test_a_choice_the_service_refuses_shows_next_to_its_workspace(
    relay_in_use: None,
    open_dialog: Callable[[], Opened],
    admin: Client,
    delegate: Client,
    service: RunningService,
) -> None:
    opened = open_dialog()
    dialog = opened.dialog
    dialog.place(None).replacement.value = BACKUP
    dialog.place(SALES).replacement.value = SALES_B
    dialog.place(SUPPORT).replacement.value = DESK
    # Support's own server goes away while the dialog is open.
    delegate.workspaces.grant_admin(SUPPORT, ADMIN)
    admin.email_servers.delete(SUPPORT, DESK)

    dialog.delete_button.click()

    assert "'srv_support_desk' is not a server Support can use" in unescape(
        dialog.place(SUPPORT).error.value
    )
    assert dialog.place(SALES).error.value == ""
    assert dialog.status.kind == "error" and "Choose another replacement." in dialog.status.text
    assert _relay_exists(service)
    assert {a.email_server_id for a in admin.custom_actions.list(SALES)} == {RELAY}
    assert not dialog.delete_button.disabled  # another choice, and Delete again


def test_without_places_the_dialog_offers_one_replacement_as_before(delegate: Client) -> None:
    api = delegate.organization_email_servers
    server = api.get(ORG, RELAY)
    confirmed: list[str | None] = []
    dialog = DeleteDialog(
        server,
        api.usages(ORG, RELAY),
        api.list(ORG),
        on_confirm=confirmed.append,
        on_cancel=lambda: None,
    )
    assert not dialog.per_place and dialog.places == []
    assert shown(dialog, dialog.replacement) and not shown(dialog, dialog.place_box)
    dialog.close()
