"""Update, delete, usages, name rules and bad input, through the client over real HTTP."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.errors import (
    BadReplacement,
    InvalidSettings,
    NameTaken,
    PayloadTooLarge,
    ReadOnlyServer,
    ServerInUse,
    StaleVersion,
    VersionRequired,
    from_problem,
)
from elegere_widgets.models import EmailServerPatch, Problem, SmtpSettings
from elegere_widgets.server.store.tables import AuditEvent, EmailServerRow
from tests.fixtures.service import RunningService, add_server_row

SALES, SUPPORT = "ws_sales", "ws_support"
MAILER, RELAY = "srv_sales_mailer", "srv_acme_relay"


def _rows(service: RunningService) -> list[tuple[str, int, dict]]:
    with service.ctx.sessions() as s:
        return [
            (r.name, r.version, r.settings)
            for r in s.scalars(select(EmailServerRow).order_by(EmailServerRow.id))
        ]


def test_update_changes_settings_keeps_secrets_and_bumps_version(
    admin: Client, service: RunningService
) -> None:
    before = admin.email_servers.get(SALES, MAILER)
    sealed_before = _sealed(service, MAILER)
    updated = admin.email_servers.update(
        SALES,
        MAILER,
        EmailServerPatch(
            name="Sales Outbox", settings={"sender_address": "outbox@acme.example", "use_ssl": True}
        ),
        version=before.version,
    )
    assert updated.name == "Sales Outbox"
    assert (updated.settings.sender_address, updated.settings.use_ssl) == (  # type: ignore[union-attr]
        "outbox@acme.example",
        True,
    )
    assert updated.version == before.version + 1
    assert updated.secrets_set == {"password": True}
    # Omitted secrets stay: the stored password opens to the same value.
    assert service.ctx.box.open(_sealed(service, MAILER)) == service.ctx.box.open(sealed_before)
    assert admin.email_servers.get(SALES, MAILER).name == "Sales Outbox"
    with service.ctx.sessions() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "update")).one()
        # use_ssl was True already: only what really changed is named.
        assert event.changed_fields == ["name", "sender_address"]
        assert event.actor_email == "admin@acme.example"


def _sealed(service: RunningService, server_id: str) -> str:
    with service.ctx.sessions() as s:
        return s.get(EmailServerRow, server_id).secrets_sealed  # type: ignore[union-attr]


def test_stale_version_is_412_and_changes_nothing(admin: Client, service: RunningService) -> None:
    server = admin.email_servers.get(SALES, MAILER)
    admin.email_servers.update(
        SALES, MAILER, EmailServerPatch(settings={"use_ssl": False}), version=server.version
    )
    before = _rows(service)
    with pytest.raises(StaleVersion) as info:
        admin.email_servers.update(
            SALES, MAILER, EmailServerPatch(settings={"use_ssl": True}), version=server.version
        )
    assert "reload" in str(info.value)
    assert _rows(service) == before


@pytest.mark.read_only
def test_update_without_if_match_is_428(admin: Client, service: RunningService) -> None:
    r = httpx.patch(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{MAILER}",
        json={"settings": {"use_ssl": False}},
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 428
    assert r.json()["type"].endswith("/version-required")
    assert isinstance(from_problem(428, Problem(**r.json())), VersionRequired)


def test_get_sends_etag_and_update_answers_new_one(admin: Client, service: RunningService) -> None:
    headers = {"Authorization": f"Bearer {service.tokens['admin@acme.example']}"}
    url = f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{MAILER}"
    r = httpx.get(url, headers=headers)
    assert r.headers["etag"] == '"1"'
    r = httpx.patch(
        url, json={"settings": {"use_ssl": False}}, headers={**headers, "If-Match": "1"}
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    assert "password" not in r.json()["settings"]


@pytest.mark.read_only
def test_inherited_server_is_read_only_from_a_workspace(
    admin: Client, service: RunningService
) -> None:
    before = _rows(service)
    relay = admin.email_servers.get(SALES, RELAY)
    assert relay.inherited
    with pytest.raises(ReadOnlyServer) as info:
        admin.email_servers.update(
            SALES, RELAY, EmailServerPatch(name="Mine now"), version=relay.version
        )
    assert "inherited" in str(info.value) and "Delegates" in str(info.value)
    with pytest.raises(ReadOnlyServer):
        admin.email_servers.delete(SALES, RELAY, replacement_id=MAILER)
    assert _rows(service) == before


@pytest.mark.read_only
def test_names_are_unique_case_insensitively_across_own_and_inherited(
    admin: Client, service: RunningService
) -> None:
    server = admin.email_servers.get(SALES, MAILER)
    with pytest.raises(NameTaken) as info:
        admin.email_servers.update(
            SALES, MAILER, EmailServerPatch(name="ACME relay"), version=server.version
        )
    assert "inherited from the Organization" in str(info.value)
    assert _rows(service)[1][0] == "Sales Mailer"


@pytest.mark.read_only
@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"port": 0}, "port", "1 to 65535"),
        ({"port": 70000}, "port", "1 to 65535"),
        ({"port": "abc"}, "port", "whole number"),
        ({"sender_address": "no-at-sign"}, "sender_address", "valid email address"),
        ({"server": "smtp://mail.example.com"}, "server", "without a scheme"),
        ({"server": "mail example.com"}, "server", "spaces"),
        ({"use_ssl": "perhaps"}, "use_ssl", "true or false"),
        ({"colour": "blue"}, "colour", "Unknown field"),
    ],
)
def test_bad_update_is_422_naming_the_field_and_store_unchanged(
    admin: Client, service: RunningService, settings: dict, field: str, words: str
) -> None:
    before = _rows(service)
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.update(SALES, MAILER, EmailServerPatch(settings=settings), version=1)
    assert words in (info.value.for_field(field) or "")
    assert _rows(service) == before


@pytest.mark.read_only
def test_empty_name_is_422(service: RunningService) -> None:
    r = httpx.patch(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{MAILER}",
        json={"name": "  "},
        headers={
            "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
            "If-Match": '"1"',
        },
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "name", "message": "Enter a name, for example 'Sales relay'."}
    ]


@pytest.mark.read_only
def test_huge_body_is_refused_before_it_is_read(service: RunningService) -> None:
    before = _rows(service)
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers",
        content=b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}',
        headers={
            "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
    assert _rows(service) == before
    _ = PayloadTooLarge  # the client maps 413 to this class


@pytest.mark.read_only
def test_malformed_json_is_400_problem(service: RunningService) -> None:
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test",
        content=b"{not json",
        headers={
            "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
            "Content-Type": "application/json",
        },
    )
    assert r.status_code == 400
    assert "JSON" in r.json()["detail"]


@pytest.mark.read_only
def test_delete_in_use_without_replacement_is_409_listing_usages(
    admin: Client, service: RunningService
) -> None:
    before = _rows(service)
    with pytest.raises(ServerInUse) as info:
        admin.email_servers.delete(SALES, MAILER)
    assert sorted((u.kind, u.name) for u in info.value.usages) == [
        ("custom_action", "Send quote"),
        ("scheduler_job", "Weekly digest"),
    ]
    assert "replacement" in str(info.value)
    assert _rows(service) == before


@pytest.mark.parametrize(
    ("replacement", "words"),
    [(MAILER, "other than"), ("srv_nope", "not a server"), ("srv_other_ws", "not a server")],
    ids=["itself", "unknown", "another-workspace"],
)
def test_bad_replacement_is_422(
    admin: Client, service: RunningService, replacement: str, words: str
) -> None:
    _add_support_server(service)
    before = _rows(service)
    with pytest.raises(BadReplacement) as info:
        admin.email_servers.delete(SALES, MAILER, replacement_id=replacement)
    assert words in (info.value.for_field("replacement_id") or "")
    assert _rows(service) == before


def _add_support_server(service: RunningService) -> None:
    add_server_row(service, "srv_other_ws", "Support Mailer", SUPPORT)


def test_delete_with_replacement_moves_usages_and_touches_nothing_else(
    admin: Client, service: RunningService
) -> None:
    support_before = admin_support_usages(service)
    admin.email_servers.delete(SALES, MAILER, replacement_id=RELAY)
    assert [s.name for s in admin.email_servers.list(SALES)] == ["Acme Relay"]
    assert {a.name: a.email_server_id for a in admin.custom_actions.list(SALES)} == {
        "Send quote": RELAY
    }
    assert {j.name: j.email_server_id for j in admin.scheduler_jobs.list(SALES)} == {
        "Weekly digest": RELAY
    }
    relay = admin.email_servers.get(SALES, RELAY)
    assert (relay.usage.custom_actions, relay.usage.scheduler_jobs) == (1, 1)
    assert sorted(u.name for u in admin.email_servers.usages(SALES, RELAY)) == [
        "Send quote",
        "Weekly digest",
    ]
    assert admin_support_usages(service) == support_before
    # History outlives the server.
    assert any(d.email_server_name == "Sales Mailer" for d in admin.deliveries.list(SALES))


def admin_support_usages(service: RunningService) -> list[tuple[str, str]]:
    from elegere_widgets.server.store.tables import CustomActionRow

    with service.ctx.sessions() as s:
        return [
            (r.name, r.email_server_id)
            for r in s.scalars(
                select(CustomActionRow).where(CustomActionRow.workspace_id == SUPPORT)
            )
        ]


def test_unused_server_deletes_without_replacement(
    delegate: Client, service: RunningService
) -> None:
    _add_support_server(service)
    delegate.workspaces.grant_admin(SUPPORT, "delegate@acme.example")
    delegate.email_servers.delete(SUPPORT, "srv_other_ws")
    assert [s.name for s in delegate.email_servers.list(SUPPORT)] == ["Acme Relay"]


def test_organization_server_in_use_needs_another_organization_server(
    delegate: Client, service: RunningService
) -> None:
    with pytest.raises(ServerInUse) as info:
        delegate.organization_email_servers.delete("org_acme", RELAY)
    # The demo organization's default server is the relay: its notifications use it too.
    assert {(u.kind, u.name) for u in info.value.usages} == {
        ("custom_action", "Reply to ticket"),
        ("default_server", "Acme"),
    }
    with pytest.raises(BadReplacement):
        delegate.organization_email_servers.delete("org_acme", RELAY, replacement_id=MAILER)
    assert len(_rows(service)) == 2


GOOD_SMTP = {
    "server": "smtp.example.com",
    "port": 587,
    "use_ssl": True,
    "account": "sales",
    "sender_address": "sales@example.com",
}


@pytest.mark.read_only
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"settings": {**GOOD_SMTP, "port": 0}}, "port", "1 to 65535"),
        ({"settings": {**GOOD_SMTP, "port": 70000}}, "port", "1 to 65535"),
        ({"name": ""}, "name", "Enter a name"),
        ({"settings": {**GOOD_SMTP, "sender_address": "sales.example.com"}}, "sender_address", "@"),
        ({"settings": {**GOOD_SMTP, "server": "https://smtp.example.com"}}, "server", "scheme"),
        ({"settings": {**GOOD_SMTP, "tls": True}}, "tls", "Unknown field"),
        ({"settings": {**GOOD_SMTP, "port": [587]}}, "port", "whole number"),
        ({"type": "pop3"}, "type", "'smtp' or 'microsoft_graph'"),
        (
            {"settings": {k: v for k, v in GOOD_SMTP.items() if k != "account"}},
            "account",
            "required",
        ),
    ],
)
@pytest.mark.parametrize("endpoint", ["test", "create"])
def test_bad_input_to_test_or_create_is_422_and_adds_nothing(
    service: RunningService, body: dict, field: str, words: str, endpoint: str
) -> None:
    before = _rows(service)
    payload = {"type": "smtp", "name": "Relay", "settings": GOOD_SMTP, **body}
    path = "/test" if endpoint == "test" else ""
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers{path}",
        json=payload,
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    messages = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert words in messages.get(field, ""), messages
    assert _rows(service) == before


def test_audit_events_record_who_changed_what_without_values(
    admin: Client, service: RunningService
) -> None:
    server = admin.email_servers.get(SALES, MAILER)
    admin.email_servers.update(
        SALES,
        MAILER,
        EmailServerPatch(settings={"password": "n3w-Secret!", "port": 587}),
        version=server.version,
    )
    admin.email_servers.delete(SALES, MAILER, replacement_id=RELAY)
    r = httpx.get(
        f"{service.url}/api/v1/workspaces/{SALES}/audit-events",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 200
    assert "n3w-Secret!" not in r.text
    events = r.json()["items"]
    assert [(e["action"], e["changed_fields"]) for e in events] == [
        ("delete", []),
        ("update", ["password", "port"]),
    ]
    assert events[0]["actor_email"] == "admin@acme.example"
    assert "moved to 'Acme Relay'" in events[0]["detail"]


@pytest.mark.parametrize(
    "moved",
    [{"server": "collector.attacker.example"}, {"port": 2525}, {"account": "someone-else"}],
)
def test_a_stored_password_is_never_reused_for_another_endpoint(
    admin: Client, service: RunningService, moved: dict
) -> None:
    before = _rows(service)
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.update(SALES, MAILER, EmailServerPatch(settings=moved), version=1)
    message = info.value.for_field("password") or ""
    assert "Enter the Password again" in message and "changed" in message
    assert _rows(service) == before
    # With the password entered again, the change is saved.
    updated = admin.email_servers.update(
        SALES, MAILER, EmailServerPatch(settings={**moved, "password": "entered-again"}), version=1
    )
    assert updated.version == 2
    assert service.ctx.box.open(_sealed(service, MAILER)) == {"password": "entered-again"}


@pytest.mark.read_only
def test_a_test_of_a_stored_server_at_another_host_needs_the_password_again(
    admin: Client, service: RunningService
) -> None:
    from elegere_widgets.models import SmtpServerSpec

    spec = SmtpServerSpec(
        name="Sales Mailer",
        server_id=MAILER,
        settings=SmtpSettings(
            server="collector.attacker.example",
            port=465,
            use_ssl=True,
            account="sales",
            sender_address="sales@acme.example",
        ),
    )
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.test(SALES, spec)
    assert "Enter the Password again: Server changed" in (info.value.for_field("password") or "")


@pytest.mark.read_only
def test_openapi_describes_the_settings_a_patch_may_change(service: RunningService) -> None:
    document = httpx.get(f"{service.url}/api/v1/openapi.json").json()
    patch = document["components"]["schemas"]["EmailServerPatch"]["properties"]["settings"]
    by_title = {variant["title"]: variant for variant in patch["anyOf"]}
    smtp, graph = by_title["SmtpSettingsPatch"], by_title["GraphSettingsPatch"]
    # Every setting of each type, none required (omitted: unchanged), nothing else accepted.
    assert set(smtp["properties"]) == set(SmtpSettings.model_fields)
    assert set(graph["properties"]) == {
        "account",
        "tenant_id",
        "client_id",
        "certificate",
        "certificate_alias",
        "certificate_password",
        # The certificate rollover's: uploaded with a PATCH, then tested and promoted.
        "next_certificate",
        "next_certificate_alias",
        "next_certificate_password",
    }
    assert "required" not in smtp and smtp["additionalProperties"] is False
    password = smtp["properties"]["password"]["anyOf"]
    assert {"format": "password", "type": "string", "writeOnly": True} in password
    assert smtp["properties"]["port"]["title"] == "Port"


def test_patch_of_an_oauth_setting_on_a_password_server_says_what_to_fix(admin: Client) -> None:
    server = admin.email_servers.get(SALES, MAILER)  # an SMTP server
    with pytest.raises(InvalidSettings) as refused:
        admin.email_servers.update(
            SALES,
            MAILER,
            patch=EmailServerPatch(settings={"tenant_id": "contoso.onmicrosoft.com"}),
            version=server.version,
        )
    assert "Tenant ID is only used with OAuth 2.0: set Authentication to OAuth 2.0" in str(
        refused.value
    )
