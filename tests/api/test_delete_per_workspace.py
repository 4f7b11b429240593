"""Deleting an organization server that several workspaces use: each workspace chooses its
replacement (one of its own servers or another organization server), the organization's own
usages take another organization server; refused choices move nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.errors import BadReplacement, ReadOnlyServer, ServerInUse
from elegere_widgets.models import MessageSender
from elegere_widgets.server.store.tables import AuditEvent, EmailServerRow, MessageRow
from tests.conftest import ADMIN
from tests.fixtures.service import RunningService, add_server_row

ORG, SALES, SUPPORT = "org_acme", "ws_sales", "ws_support"
RELAY = "srv_acme_relay"
BACKUP, DESK, SALES_B = "srv_org_backup", "srv_support_desk", "srv_sales_b"


@pytest.fixture
def used_everywhere(
    service: RunningService, admin: Client, delegate: Client
) -> Iterator[dict[str, str]]:
    """The relay used by both workspaces (custom actions, notifications, a fallback, queued
    messages) and as the organization's default; a backup organization server, a Sales and
    a Support server of their own. Returns the queued messages' ids by workspace."""
    add_server_row(service, BACKUP, "Acme Backup", None)  # type: ignore[arg-type]
    add_server_row(service, DESK, "Support Desk", SUPPORT)
    add_server_row(service, SALES_B, "Sales B", SALES)
    delegate.workspaces.grant_admin(SUPPORT, ADMIN)
    admin.custom_actions.update(SALES, "ca_send_quote", email_server_id=RELAY)
    for ws in (SALES, SUPPORT):
        admin.mail_settings.set_notifications_server(ws, RELAY)
    from elegere_widgets.models import EmailServerPatch

    sales_b = admin.email_servers.get(SALES, SALES_B)
    admin.email_servers.update(
        SALES, SALES_B, EmailServerPatch(fallback_server_id=RELAY), version=sales_b.version
    )
    queued = {
        ws: admin.messages.send(
            ws,
            sender=MessageSender(kind="custom_action", id=action),
            to=["x@example.org"],
            subject="queued",
            text="t",
        ).id
        for ws, action in ((SALES, "ca_send_quote"), (SUPPORT, "ca_ticket_reply"))
    }
    yield queued


def _servers_of(service: RunningService, queued: dict[str, str]) -> dict[str, str]:
    with service.ctx.sessions() as s:
        return {ws: s.get(MessageRow, mid).email_server_id for ws, mid in queued.items()}  # type: ignore[union-attr]


def _relay_exists(service: RunningService) -> bool:
    with service.ctx.sessions() as s:
        return s.get(EmailServerRow, RELAY) is not None


def test_the_choices_name_each_place_and_what_may_take_over_there(
    delegate: Client, used_everywhere: dict[str, str]
) -> None:
    # A Delegate is no Workspace Admin of Sales or Support, yet sees their own servers here:
    # the choice is theirs to make.
    choices = delegate.organization_email_servers.replacements(ORG, RELAY)
    assert [(c.workspace_id, c.name) for c in choices] == [
        (None, "Acme"),
        (SALES, "Sales"),
        (SUPPORT, "Support"),
    ]
    assert [[(u.kind, u.name) for u in c.usages] for c in choices] == [
        [("default_server", "Acme")],
        [("custom_action", "Send quote"), ("notifications", "Sales"), ("fallback", "Sales B")],
        [("custom_action", "Reply to ticket"), ("notifications", "Support")],
    ]
    assert [[(s.name, s.scope) for s in c.candidates] for c in choices] == [
        [("Acme Backup", "organization")],
        [("Sales B", "workspace"), ("Sales Mailer", "workspace"), ("Acme Backup", "organization")],
        [("Support Desk", "workspace"), ("Acme Backup", "organization")],
    ]
    assert choices[1].candidates[1].key_setting == "mail.acme.example:465"
    assert choices[1].candidates[1].type_label == "SMTP"


def test_each_workspace_takes_its_own_replacement_and_the_rest_the_organizations(
    service: RunningService, admin: Client, delegate: Client, used_everywhere: dict[str, str]
) -> None:
    delegate.organization_email_servers.delete(
        ORG,
        RELAY,
        replacement_id=BACKUP,
        replacements={SALES: SALES_B, SUPPORT: DESK},
    )

    assert not _relay_exists(service)
    actions = {
        a.id: a.email_server_id for ws in (SALES, SUPPORT) for a in admin.custom_actions.list(ws)
    }
    assert actions == {"ca_send_quote": SALES_B, "ca_ticket_reply": DESK}
    # The Sales mailer's jobs were never on the relay: untouched.
    assert {j.email_server_id for j in admin.scheduler_jobs.list(SALES)} == {"srv_sales_mailer"}
    assert admin.mail_settings.get(SALES).notifications_server_id == SALES_B
    assert admin.mail_settings.get(SUPPORT).notifications_server_id == DESK
    assert delegate.mail_settings.get_organization(ORG).default_server_id == BACKUP
    # Sales B took over its own fallback: a server never falls back to itself.
    assert admin.email_servers.get(SALES, SALES_B).fallback_server_id is None
    assert _servers_of(service, used_everywhere) == {SALES: SALES_B, SUPPORT: DESK}
    with service.ctx.sessions() as s:
        detail = s.scalar(
            select(AuditEvent.detail).where(
                AuditEvent.action == "delete", AuditEvent.email_server_id == RELAY
            )
        )
    assert detail == (
        "6 usage(s) and 2 queued message(s) moved: Sales → 'Sales B', "
        "Support → 'Support Desk', the rest → 'Acme Backup'"
    )


def test_a_workspace_may_take_another_organization_server(
    service: RunningService, admin: Client, delegate: Client, used_everywhere: dict[str, str]
) -> None:
    # Without replacement_id every place needs its own choice; the organization's default
    # has none, so a second organization server covers it through replacement_id only.
    delegate.organization_email_servers.delete(
        ORG, RELAY, replacement_id=BACKUP, replacements={SUPPORT: BACKUP}
    )
    assert {a.email_server_id for a in admin.custom_actions.list(SALES)} == {BACKUP}
    assert {a.email_server_id for a in admin.custom_actions.list(SUPPORT)} == {BACKUP}
    assert _servers_of(service, used_everywhere) == {SALES: BACKUP, SUPPORT: BACKUP}


def test_a_place_without_a_replacement_is_409_and_nothing_moves(
    service: RunningService, admin: Client, delegate: Client, used_everywhere: dict[str, str]
) -> None:
    with pytest.raises(ServerInUse) as refused:
        delegate.organization_email_servers.delete(ORG, RELAY, replacements={SALES: SALES_B})
    message = str(refused.value)
    assert "'ws_support' (Support)" in message
    assert "an organization server as replacement_id" in message
    assert {(u.kind, u.name) for u in refused.value.usages} == {
        ("default_server", "Acme"),
        ("custom_action", "Reply to ticket"),
        ("notifications", "Support"),
    }
    assert _relay_exists(service)
    assert {a.email_server_id for a in admin.custom_actions.list(SALES)} == {RELAY}
    assert _servers_of(service, used_everywhere) == {SALES: RELAY, SUPPORT: RELAY}


@pytest.mark.parametrize(
    ("replacements", "field", "words"),
    [
        ({SUPPORT: SALES_B}, f"replacements.{SUPPORT}", "not a server Support can use"),
        ({"ws_nowhere": BACKUP}, "replacements.ws_nowhere", "no workspace 'ws_nowhere'"),
        ({SALES: RELAY}, f"replacements.{SALES}", "other than the server being deleted"),
    ],
)
def test_an_unusable_choice_is_422_on_its_workspace_and_nothing_moves(
    service: RunningService,
    admin: Client,
    delegate: Client,
    used_everywhere: dict[str, str],
    replacements: dict[str, str],
    field: str,
    words: str,
) -> None:
    with pytest.raises(BadReplacement) as refused:
        delegate.organization_email_servers.delete(
            ORG, RELAY, replacement_id=BACKUP, replacements=replacements
        )
    assert words in (refused.value.for_field(field) or ""), refused.value.field_errors
    assert _relay_exists(service)
    assert _servers_of(service, used_everywhere) == {SALES: RELAY, SUPPORT: RELAY}


def test_a_workspace_server_takes_replacements_for_its_own_workspace_only(
    admin: Client, service: RunningService
) -> None:
    add_server_row(service, SALES_B, "Sales B", SALES)
    choices = admin.email_servers.replacements(SALES, "srv_sales_mailer")
    assert [(c.workspace_id, [u.name for u in c.usages]) for c in choices] == [
        (SALES, ["Send quote", "Weekly digest"])
    ]
    assert [s.name for s in choices[0].candidates] == ["Sales B", "Acme Relay"]
    with pytest.raises(BadReplacement) as refused:
        admin.email_servers.delete(SALES, "srv_sales_mailer", replacements={SUPPORT: RELAY})
    assert "is a server of Sales" in (refused.value.for_field(f"replacements.{SUPPORT}") or "")
    admin.email_servers.delete(SALES, "srv_sales_mailer", replacements={SALES: SALES_B})
    assert {a.email_server_id for a in admin.custom_actions.list(SALES)} == {SALES_B}
    # Inherited: read-only in the workspace, its choices too.
    with pytest.raises(ReadOnlyServer):
        admin.email_servers.replacements(SALES, RELAY)


def test_the_wire_forms_query_body_and_their_conflict(
    service: RunningService, used_everywhere: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {service.tokens['delegate@acme.example']}"}
    path = f"/api/v1/organizations/{ORG}/email-servers/{RELAY}"
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as http:
        twice = http.request(
            "DELETE", path, params={"replacement_id": BACKUP}, json={"replacement_id": DESK}
        )
        assert twice.status_code == 400 and "give it once" in twice.json()["detail"]
        unknown = http.request("DELETE", path, json={"replacement": BACKUP})
        assert unknown.status_code == 422
        assert _relay_exists(service)
        # The body alone, as documented; the same value in query and body is one choice.
        done = http.request(
            "DELETE",
            path,
            params={"replacement_id": BACKUP},
            json={"replacement_id": BACKUP, "replacements": {SUPPORT: DESK}},
        )
        assert done.status_code == 204, done.text
    assert _servers_of(service, used_everywhere) == {SALES: BACKUP, SUPPORT: DESK}
