"""What the panel's details view and its row actions read and run, over HTTP: Test now (a
kept check), a test message through an inherited server, a server's week of deliveries and
its audit trail — for a workspace and for the organization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings, NotFound
from elegere_widgets.models import Stage
from elegere_widgets.server.security import new_id
from elegere_widgets.server.store.tables import DeliveryRow
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

SALES, SUPPORT, ORG = "ws_sales", "ws_support", "org_acme"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


def _add(client: Client, peer: SmtpPeer, name: str, *, organization: bool = False) -> str:
    api = client.organization_email_servers if organization else client.email_servers
    owner = ORG if organization else SALES
    spec = peer.spec(name)
    token = api.test(owner, spec).test_token or ""
    return api.create(owner, spec, test_token=token).id


def test_test_now_tests_the_stored_server_and_keeps_the_check(
    admin: Client, peer: SmtpPeer
) -> None:
    server_id = _add(admin, peer, "Sales relay")
    seen: list[Stage] = []
    result = admin.email_servers.test_stored(SALES, server_id, on_stage=seen.append)
    assert result.ok and result.test_token is None  # nothing can be added with it
    assert [s.name for s in seen] == [s.name for s in result.stages]
    assert "authenticate" in [s.name for s in seen]  # the stored password was used

    port = peer.port
    peer.stop()
    failed = admin.email_servers.test_stored(SALES, server_id)
    assert not failed.ok and failed.failed_stage is not None
    checks = list(admin.email_servers.checks(SALES, server_id))
    assert [(c.ok, c.source) for c in checks[:2]] == [(False, "manual"), (True, "manual")]
    after = admin.email_servers.get(SALES, server_id)
    assert after.health is not None and after.health.status == "degraded"
    assert after.last_test is not None and not after.last_test.ok
    peer.start(port)
    with pytest.raises(NotFound):
        admin.email_servers.test_stored(SALES, "srv_nope")


def test_an_inherited_server_is_tested_and_sent_through_but_its_record_is_the_organizations(
    admin: Client, delegate: Client, peer: SmtpPeer
) -> None:
    org_server = _add(delegate, peer, "Org relay", organization=True)
    kept = len(list(delegate.organization_email_servers.checks(ORG, org_server)))

    assert admin.email_servers.test_stored(SALES, org_server).ok
    assert len(list(admin.email_servers.checks(SALES, org_server))) == kept
    assert delegate.organization_email_servers.test_stored(ORG, org_server).ok
    assert len(list(admin.email_servers.checks(SALES, org_server))) == kept + 1

    # A Workspace Admin sends through the Organization's server, stage by stage.
    seen: list[Stage] = []
    sent = admin.email_servers.send_test(
        SALES, org_server, to="someone@example.com", on_stage=seen.append
    )
    assert sent.ok, sent.detail
    assert seen == sent.stages and [s.name for s in seen][-3:] == ["sender", "recipient", "data"]
    assert [m.rcpt_tos for m in peer.messages] == [["someone@example.com"]]
    # A test email is a delivery, not one of the server's checks.
    assert len(list(admin.email_servers.checks(SALES, org_server))) == kept + 1
    [delivery] = admin.deliveries.list(SALES, server_id=org_server)
    assert (delivery.id, delivery.kind, delivery.status) == (sent.delivery_id, "test", "sent")
    # Its Delegate sends through it from the organization's side, streamed alike.
    seen.clear()
    org_sent = delegate.organization_email_servers.send_test(
        ORG, org_server, to="ops@example.com", on_stage=seen.append
    )
    assert org_sent.ok and seen == org_sent.stages and seen[-1].name == "data"
    assert [m.rcpt_tos for m in peer.messages][-1] == ["ops@example.com"]


def _deliveries(service: RunningService, rows: list[tuple[str, str, int, str | None]]) -> None:
    """(server, status, minutes ago, workspace) rows, with a reply on the ones not sent."""
    now = datetime.now(UTC)
    with service.ctx.sessions.begin() as s:
        for server_id, status, minutes, workspace in rows:
            s.add(
                DeliveryRow(
                    id=new_id("dlv"),
                    workspace_id=workspace,
                    email_server_id=server_id,
                    email_server_name="Acme Relay",
                    kind="custom_action",
                    recipients=["x@example.org"],
                    status=status,
                    error=None if status in ("sent", "accepted") else f"451 {status} {minutes}",
                    created_at=now - timedelta(minutes=minutes),
                )
            )


def test_a_servers_week_of_deliveries_by_outcome_with_the_latest_failures(
    admin: Client, delegate: Client, service: RunningService
) -> None:
    relay = "srv_acme_relay"
    start = datetime.now(UTC) - timedelta(minutes=20)
    # The seeded history, counted before the rows of this test are added.
    before = admin.email_servers.delivery_summary(SALES, relay)
    before_org = delegate.organization_email_servers.delivery_summary(ORG, relay, since=start)
    _deliveries(
        service,
        [
            (relay, "sent", 10, SALES),
            (relay, "accepted", 11, SALES),
            (relay, "deferred", 12, SALES),
            (relay, "failed", 13, SALES),
            (relay, "bounced", 14, SALES),
            (relay, "failed", 8 * 24 * 60, SALES),  # older than a week
            (relay, "failed", 5, SUPPORT),  # another workspace's mail
        ],
    )
    week = admin.email_servers.delivery_summary(SALES, relay, failures=2)
    assert (week.sent, week.deferred, week.failed) == (
        before.sent + 2,
        before.deferred + 1,
        before.failed + 2,
    )
    assert [d.error for d in week.last_failures] == ["451 deferred 12", "451 failed 13"]
    assert datetime.now(UTC) - week.since > timedelta(days=6, hours=23)

    # The organization sees every workspace's mail through its server.
    org = delegate.organization_email_servers.delivery_summary(ORG, relay, since=start)
    assert (org.sent, org.deferred, org.failed) == (
        before_org.sent + 2,
        before_org.deferred + 1,
        before_org.failed + 3,
    )
    assert org.last_failures[0].error == "451 failed 5"
    with pytest.raises(ValueError, match="time zone"):
        admin.email_servers.delivery_summary(SALES, relay, since=datetime(2026, 1, 1))
    with pytest.raises(NotFound):
        delegate.organization_email_servers.delivery_summary(ORG, "srv_sales_mailer")


def test_a_servers_audit_trail_newest_first_and_what_each_scope_sees(
    admin: Client, delegate: Client, peer: SmtpPeer
) -> None:
    from elegere_widgets.models import EmailServerPatch

    own = _add(admin, peer, "Sales relay")
    server = admin.email_servers.get(SALES, own)
    admin.email_servers.update(
        SALES, own, EmailServerPatch(name="Sales relay 2"), version=server.version
    )
    admin.email_servers.send_test(SALES, own, to="someone@example.com")
    trail = list(admin.email_servers.audit_events(SALES, own, page_size=1))
    assert [(e.action, e.result) for e in trail] == [
        ("send_test", "ok"),
        ("update", "ok"),
        ("create", "ok"),  # the test before it was of settings, not of this server
    ]
    assert trail[1].changed_fields == ["name"]
    assert {e.actor_email for e in trail} == {"admin@acme.example"}
    assert all(e.email_server_id == own for e in trail)

    org_server = _add(delegate, peer, "Org relay", organization=True)
    admin.email_servers.send_test(SALES, org_server, to="someone@example.com")
    delegate.workspaces.grant_admin(SUPPORT, "delegate@acme.example")
    delegate.email_servers.send_test(SUPPORT, org_server, to="other@example.com")
    # A workspace sees the Organization's changes of an inherited server and its own test
    # message, not another workspace's; the organization sees all of them.
    seen = [(e.action, e.workspace_id) for e in admin.email_servers.audit_events(SALES, org_server)]
    assert seen == [("send_test", SALES), ("create", None)]
    org_seen = [e.action for e in delegate.organization_email_servers.audit_events(ORG, org_server)]
    assert org_seen == ["send_test", "send_test", "create"]
    page = admin.email_servers.audit_events_page(SALES, org_server, page_size=1)
    assert [e.action for e in page.items] == ["send_test"] and page.next_cursor
    last = admin.email_servers.audit_events_page(SALES, org_server, cursor=page.next_cursor)
    assert [e.action for e in last.items] == ["create"] and last.next_cursor is None
    with pytest.raises(InvalidSettings):
        admin.email_servers.audit_events_page(SALES, org_server, cursor="x")
