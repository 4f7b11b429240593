"""Sending through Microsoft Graph (the local identity provider and Graph endpoint), and a
server's pace kept in Redis, where every worker sees it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from elegere_widgets.models import GraphSettings
from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import DeliveryRow, MessageRow
from elegere_widgets.server.worker.delivery import Deliverer
from elegere_widgets.server.worker.smtp_sender import SmtpConnections
from tests.connectivity.test_graph import SCOPE_TO_MAILBOX, SEND_AS_DENIED
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, IdentityProvider, Tenant
from tests.fixtures.messages import (
    add_graph_server,
    add_message,
    add_peer_server,
    make_store,
    message_ids_at,
)
from tests.fixtures.oauth import service_settings
from tests.fixtures.smtp import SmtpPeer

from .conftest import Clock

REDIS_ENV = "ELEGERE_TEST_REDIS_URL"
PASSWORD = "pfx-Passw0rd"


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-graph-worker", key=rsa_key(22))


@pytest.fixture
def graph_store(
    database_url: str, tmp_path: Path, idp: IdentityProvider
) -> Iterator[ServiceContext]:
    """A store whose Graph calls go to the local identity provider and Graph endpoint."""
    ctx = make_store(database_url, tmp_path, **service_settings(idp))
    yield ctx
    ctx.engine.dispose()


def _graph_server(
    ctx: ServiceContext, idp: IdentityProvider, tenant: Tenant, cert: CertAndKey, roles: list[str]
) -> str:
    app = idp.add_app(tenant, certificates=[cert.cert], roles=roles)
    settings = GraphSettings.model_validate(
        {
            "account": SALES_MAILBOX,
            "tenant_id": tenant.id,
            "client_id": app.client_id,
            "certificate": to_pfx(cert, password=PASSWORD),
            "certificate_password": PASSWORD,
        }
    )
    return add_graph_server(ctx, f"srv_graph_{uuid.uuid4().hex[:8]}", settings)


def _row(ctx: ServiceContext, ident: str) -> MessageRow:
    with ctx.sessions() as s:
        row = s.get(MessageRow, ident)
        assert row is not None
        return row


def _deliveries(ctx: ServiceContext, ident: str) -> list[DeliveryRow]:
    with ctx.sessions() as s:
        return list(s.scalars(select(DeliveryRow).where(DeliveryRow.message_id == ident)))


def test_a_message_goes_out_through_graph_with_its_recipients_and_message_id(
    graph_store: ServiceContext, idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    server = _graph_server(graph_store, idp, tenant, cert, ["Mail.Send", "User.Read.All"])
    subject = f"Quote {uuid.uuid4().hex[:6]}"
    ident = add_message(
        graph_store,
        server,
        to=["ann@example.org"],
        cc=["cat@example.org"],
        bcc=["dan@example.org"],
        reply_to="sales-team@acme.example",
        subject=subject,
        text=None,
        html="<p>Rich words</p>",
    )
    deliverer = Deliverer(graph_store, connections=SmtpConnections(idle_s=30))
    assert deliverer.deliver(ident) == "sent"
    [mail] = [m for m in idp.sent if m.subject == subject]
    row = _row(graph_store, ident)
    assert (mail.tenant_id, mail.mailbox) == (tenant.id, SALES_MAILBOX)
    assert (mail.to, mail.cc, mail.bcc) == (
        ["ann@example.org"],
        ["cat@example.org"],
        ["dan@example.org"],
    )
    assert mail.reply_to == ["sales-team@acme.example"]
    assert (mail.body, mail.content_type) == ("<p>Rich words</p>", "HTML")
    assert mail.internet_message_id == row.message_id
    assert row.status == "sent" and row.attempts == 1
    assert all(state["status"] == "sent" for state in row.recipients.values())
    [delivery] = _deliveries(graph_store, ident)
    assert (delivery.status, delivery.reply_code, delivery.email_server_id) == ("sent", 202, server)
    assert sorted(delivery.recipients) == ["ann@example.org", "cat@example.org", "dan@example.org"]


def test_graph_refusing_the_app_defers_the_message_with_graphs_reply(
    graph_store: ServiceContext, idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    server = _graph_server(graph_store, idp, tenant, cert, ["User.Read.All"])  # no Mail.Send
    ident = add_message(graph_store, server, to=["ann@example.org"])
    sent_before = len(idp.sent)
    assert Deliverer(graph_store).deliver(ident) == "retrying"
    row = _row(graph_store, ident)
    assert row.attempts == 1 and row.server_failures == 1
    assert row.last_reply is not None and "Access is denied" in row.last_reply
    [delivery] = _deliveries(graph_store, ident)
    assert delivery.status == "deferred" and "Access is denied" in (delivery.error or "")
    assert len(idp.sent) == sent_before


def test_exchange_refusing_the_mailbox_defers_with_the_rbac_for_applications_hint(
    graph_store: ServiceContext, idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    server = _graph_server(graph_store, idp, tenant, cert, ["Mail.Send", "User.Read.All"])
    client_id = next(iter(tenant.apps))
    tenant.mailboxes[SALES_MAILBOX].send_as_denied.add(client_id)
    ident = add_message(graph_store, server, to=["ann@example.org"])
    assert Deliverer(graph_store).deliver(ident) == "retrying"
    hint = SCOPE_TO_MAILBOX.format(account=SALES_MAILBOX, client_id=client_id)
    reply = f"Failed at send: {SEND_AS_DENIED} {hint}"
    [delivery] = _deliveries(graph_store, ident)
    assert (delivery.status, delivery.stage, delivery.reply_code) == ("deferred", "send", None)
    assert delivery.error == reply
    assert _row(graph_store, ident).recipients["ann@example.org"]["reply"] == reply


@pytest.mark.skipif(
    not os.environ.get(REDIS_ENV),
    reason=f"set {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15) for the Redis-backed pace",
)
def test_over_the_pace_kept_in_redis_another_worker_waits_without_a_failure(
    database_url: str, tmp_path: Path, sink: SmtpPeer, clock: Clock
) -> None:
    # Two deliverers stand for two worker processes: only a pace kept in Redis (the queue's
    # server) makes the second one wait.
    ctx = make_store(database_url, tmp_path, queue_url=os.environ[REDIS_ENV])
    try:
        server = add_peer_server(ctx, sink, f"srv_paced_{uuid.uuid4().hex[:8]}", max_per_minute=1)
        first = add_message(ctx, server, to=["a@example.org"], now=clock.now)
        second = add_message(ctx, server, to=["b@example.org"], now=clock.now)
        one, two = Deliverer(ctx, clock=clock), Deliverer(ctx, clock=clock)
        assert one.deliver(first) == "sent"
        assert two.deliver(second) == "paced"
        row = _row(ctx, second)
        assert row.status == "queued" and row.attempts == 0 and row.server_failures == 0
        assert row.next_attempt_at is not None and row.next_attempt_at > clock.now
        assert row.lease_owner is None
        assert _deliveries(ctx, second) == []
        assert message_ids_at(sink) == [_row(ctx, first).message_id]
        one.connections.close_all()
        two.connections.close_all()
    finally:
        ctx.engine.dispose()
