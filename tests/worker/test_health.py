"""Scheduled health checks, run in-process against real SMTP peers: the checks kept, the health
the API shows, the alerts queued and delivered, and the lease between workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from elegere_widgets.models import GraphSettings
from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.scope import Scope
from elegere_widgets.server.seed import ORG_ID, SALES_ID
from elegere_widgets.server.services.email_servers import (
    EmailServerQueries,
    EmailServerService,
)
from elegere_widgets.server.services.health_alerts import alert_on_change
from elegere_widgets.server.services.server_checks import summarize_checks
from elegere_widgets.server.store.tables import (
    AuditEvent,
    EmailServerRow,
    MessageRow,
    ServerCheckRow,
)
from elegere_widgets.server.worker.delivery import Deliverer
from elegere_widgets.server.worker.health import HealthChecker
from elegere_widgets.server.worker.smtp_sender import SmtpConnections
from tests.fixtures.graph_certs import make_cert, to_pem
from tests.fixtures.messages import add_peer_server, make_store
from tests.fixtures.smtp import SmtpPeer

from .conftest import Clock

SALES = Scope(ORG_ID, SALES_ID, "Sales")


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    ctx = make_store(database_url, tmp_path, health_interval_s=30, health_concurrency=2)
    yield ctx
    ctx.engine.dispose()


def _point_seeded_servers_at(ctx: ServiceContext, sink: SmtpPeer) -> None:
    """The demo's servers name hosts that do not exist: here they reach the sink (plain), so
    the organization's relay, the default, can carry the alerts."""
    with ctx.sessions.begin() as s:
        for row in s.scalars(select(EmailServerRow)):
            row.settings = {
                "server": sink.host,
                "port": sink.port,
                "use_ssl": False,
                "account": row.settings["account"],
                "sender_address": row.settings["sender_address"],
            }
            row.secrets_sealed = None
            row.secrets_set = {"password": False}


def _health(ctx: ServiceContext, server_id: str) -> dict[str, Any]:
    with ctx.sessions() as s:
        server = EmailServerQueries(s, SALES).get(server_id)
    assert server.health is not None
    return server.health.model_dump()


def _alerts(ctx: ServiceContext) -> list[MessageRow]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(MessageRow)
                .where(MessageRow.sender_kind == "notification")
                .order_by(MessageRow.created_at)
            )
        )


def test_a_stopped_peer_turns_degraded_then_failing_alerts_once_and_recovers(
    store: ServiceContext, sink: SmtpPeer, clock: Clock
) -> None:
    _point_seeded_servers_at(store, sink)
    peer = SmtpPeer("plain").start()
    try:
        add_peer_server(store, peer, "srv_peer")
        checker = HealthChecker(store, clock=clock)
        assert checker.run_once() == 0  # placed within the interval, not all due at once
        clock.advance(seconds=30)
        assert checker.run_once() == 3  # the relay, the mailer and the peer
        assert _health(store, "srv_peer")["status"] == "healthy"

        port = peer.port
        peer.stop()
        statuses = []
        for _ in range(4):
            clock.advance(seconds=30)
            checker.run_once()
            statuses.append(_health(store, "srv_peer")["status"])
        assert statuses == ["degraded", "degraded", "failing", "failing"]
        health = _health(store, "srv_peer")
        assert "The last 3 checks failed" in health["reason"]
        assert "connect" in health["reason"]

        alerts = _alerts(store)
        assert len(alerts) == 1  # one per change, not one per check
        assert alerts[0].to == ["admin@acme.example"]
        assert alerts[0].email_server_id == "srv_acme_relay"  # never the failing server
        assert alerts[0].subject == "Email server 'Peer srv_peer' is failing"
        deliverer = Deliverer(store, clock=clock, connections=SmtpConnections(idle_s=30))
        try:
            assert deliverer.deliver(alerts[0].id) == "sent"
        finally:
            deliverer.connections.close_all()
        assert [m.subject for m in sink.messages] == ["Email server 'Peer srv_peer' is failing"]

        peer.start(port)  # the peer comes back where it was
        clock.advance(seconds=30)
        checker.run_once()
        assert _health(store, "srv_peer")["status"] == "healthy"
        clock.advance(seconds=30)
        checker.run_once()
        alerts = _alerts(store)
        assert [a.subject for a in alerts] == [
            "Email server 'Peer srv_peer' is failing",
            "Email server 'Peer srv_peer' is healthy again",
        ]
        with store.sessions() as s:
            audited = s.scalars(
                select(AuditEvent.detail).where(AuditEvent.action == "health_alert")
            ).all()
            checks = s.scalars(
                select(ServerCheckRow.ok)
                .where(ServerCheckRow.email_server_id == "srv_peer")
                .order_by(ServerCheckRow.checked_at)
            ).all()
            last_test = s.get(EmailServerRow, "srv_peer").last_test  # type: ignore[union-attr]
        assert len(audited) == 2
        assert checks == [True, False, False, False, False, True, True]
        assert last_test["ok"] is True and last_test["source"] == "scheduled"
    finally:
        peer.stop()
        checker.stop()


def test_two_workers_never_check_a_server_twice_at_once(
    store: ServiceContext, sink: SmtpPeer, clock: Clock
) -> None:
    _point_seeded_servers_at(store, sink)
    first = HealthChecker(store, owner="worker-1", clock=clock)
    second = HealthChecker(store, owner="worker-2", clock=clock)
    try:
        first.schedule_new_servers(clock())
        clock.advance(seconds=30)
        now = clock()
        assert first.claim("srv_acme_relay", now) is True
        assert second.claim("srv_acme_relay", now) is False  # held
        clock.advance(seconds=31)  # due again, but the first still holds it
        assert second.claim("srv_acme_relay", clock()) is False
        first.release("srv_acme_relay")
        assert second.claim("srv_acme_relay", clock()) is True
        second.release("srv_acme_relay")

        # Both sweep at the same moment: every server is checked exactly once.
        clock.advance(seconds=31)
        done: list[int] = []
        threads = [
            threading.Thread(target=lambda c=c: done.append(c.run_once())) for c in (first, second)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(done) == 2
        with store.sessions() as s:
            per_server = dict(
                s.execute(
                    select(ServerCheckRow.email_server_id, func.count()).group_by(
                        ServerCheckRow.email_server_id
                    )
                ).all()
            )
        assert per_server == {"srv_acme_relay": 1, "srv_sales_mailer": 1}
    finally:
        first.stop()
        second.stop()


def test_a_certificate_near_its_end_alerts_reminds_and_expires(
    store: ServiceContext, sink: SmtpPeer, clock: Clock
) -> None:
    _point_seeded_servers_at(store, sink)
    not_after = (datetime.now(UTC) + timedelta(days=40)).replace(microsecond=0)
    cert = make_cert("Sales Graph", not_after=not_after)
    with store.sessions() as s:
        EmailServerService(store, s, SALES).create(
            "microsoft_graph",
            "Sales Graph",
            GraphSettings(
                account="sales@acme.example",
                tenant_id="acme.onmicrosoft.com",
                client_id="00000000-0000-0000-0000-000000000001",
                certificate=to_pem(cert),
            ),
            last_test=None,
            server_id="srv_graph",
        )
    checker = HealthChecker(store, clock=clock)
    try:
        checker.schedule_new_servers(clock())
        assert _health(store, "srv_graph")["status"] == "healthy"
        assert alert_on_change(store, "srv_graph", clock()) is None

        subjects = []
        for days_left, expected in [
            (29.5, "expiring"),
            (20, None),
            (6.5, "expiring"),
            (6, None),
            (0.5, "expiring"),
            (-1, "expired"),
            (-2, None),
        ]:
            clock.now = not_after - timedelta(days=days_left)
            alert = alert_on_change(store, "srv_graph", clock())
            assert (alert.status if alert else None) == expected, days_left
            if alert:
                subjects.append(alert.reason)
        assert len(_alerts(store)) == 4
        assert "expires in 29 day(s)" in subjects[0]
        assert "expires in 6 day(s)" in subjects[1]
        assert "expires in 0 day(s)" in subjects[2]
        assert "expired on" in subjects[3]
        assert all(a.email_server_id == "srv_acme_relay" for a in _alerts(store))
    finally:
        checker.stop()


def _fail_three_times(ctx: ServiceContext, server_id: str, clock: Clock) -> None:
    with ctx.sessions.begin() as s:
        for i in range(3):
            s.add(
                ServerCheckRow(
                    id=f"chk_{server_id}_{i}",
                    email_server_id=server_id,
                    checked_at=clock() - timedelta(minutes=3 - i),
                    ok=False,
                    failed_stage="connect",
                    elapsed_ms=3,
                    detail="failed at connect: Connection refused",
                    source="scheduled",
                )
            )
        s.flush()
        summarize_checks(s.connection())  # as record_check would have


def test_when_the_default_server_fails_its_alert_goes_through_another_organization_server(
    store: ServiceContext, sink: SmtpPeer, clock: Clock
) -> None:
    add_peer_server(store, sink, "srv_backup", workspace_id=None)
    HealthChecker(store, clock=clock).schedule_new_servers(clock())
    _fail_three_times(store, "srv_acme_relay", clock)
    alert = alert_on_change(store, "srv_acme_relay", clock())
    assert alert is not None and alert.status == "failing" and alert.message_id
    (message,) = _alerts(store)
    assert message.email_server_id == "srv_backup"  # not the failing default
    assert message.to == ["delegate@acme.example"]  # an organization server: its Delegates
    assert alert_on_change(store, "srv_acme_relay", clock()) is None  # told once


def test_with_no_other_server_the_failed_alert_is_recorded_not_sent(
    store: ServiceContext, clock: Clock
) -> None:
    HealthChecker(store, clock=clock).schedule_new_servers(clock())
    _fail_three_times(store, "srv_acme_relay", clock)
    alert = alert_on_change(store, "srv_acme_relay", clock())
    assert alert is not None and alert.message_id is None
    assert _alerts(store) == []
    with store.sessions() as s:
        (event,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "health_alert"))
    assert event.result == "failed"
    assert "no other organization server to send it through" in event.detail
