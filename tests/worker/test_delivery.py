"""The delivery step against real SMTP peers: what arrives, and what the store records."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import DeliveryRow, MessageRow
from elegere_widgets.server.worker.delivery import Deliverer
from elegere_widgets.server.worker.smtp_sender import SmtpConnections
from tests.fixtures.certs import Pki
from tests.fixtures.messages import add_message, add_peer_server, message_ids_at
from tests.fixtures.smtp import SmtpPeer

from .conftest import Clock


@pytest.fixture
def deliverer(store: ServiceContext, clock: Clock) -> Iterator[Deliverer]:
    d = Deliverer(store, clock=clock, connections=SmtpConnections(idle_s=30))
    yield d
    d.connections.close_all()


def _message(ctx: ServiceContext, ident: str) -> MessageRow:
    with ctx.sessions() as s:
        row = s.get(MessageRow, ident)
        assert row is not None
        return row


def _deliveries(ctx: ServiceContext, ident: str) -> list[DeliveryRow]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.message_id == ident)
                .order_by(DeliveryRow.created_at, DeliveryRow.status)
            )
        )


def test_a_message_arrives_with_its_headers_and_is_recorded_as_sent(
    store: ServiceContext, sink: SmtpPeer, deliverer: Deliverer
) -> None:
    server = add_peer_server(store, sink, "srv_peer")
    ident = add_message(
        store,
        server,
        to=["ann@example.org", "bob@example.org"],
        cc=["cat@example.org"],
        bcc=["dan@example.org"],
        reply_to="sales-team@acme.example",
        text="Plain words",
        html="<p>Rich words</p>",
    )
    assert deliverer.deliver(ident) == "sent"

    [got] = sink.messages
    row = _message(store, ident)
    assert got.message["Message-ID"] == row.message_id
    assert got.mail_from == "sales@acme.example"
    assert sorted(got.rcpt_tos) == [
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
        "dan@example.org",
    ]
    assert got.message["Bcc"] is None and b"dan@example.org" not in got.raw
    assert got.message["Reply-To"] == "sales-team@acme.example"
    assert got.message.get_content_type() == "multipart/alternative"
    assert got.message.get_body(("plain",)).get_content().strip() == "Plain words"  # type: ignore[union-attr]
    assert got.message.get_body(("html",)).get_content().strip() == "<p>Rich words</p>"  # type: ignore[union-attr]

    assert row.status == "sent" and row.attempts == 1 and row.finished_at is not None
    assert row.lease_owner is None
    assert {s["status"] for s in row.recipients.values()} == {"sent"}
    [delivery] = _deliveries(store, ident)
    assert delivery.status == "sent" and delivery.kind == "custom_action"
    assert delivery.email_server_id == server and delivery.email_server_name == "Peer srv_peer"
    assert delivery.stage == "data" and delivery.reply_code == 250
    assert delivery.error is not None and "250" in delivery.error
    assert len(delivery.recipients) == 4


def test_a_recipient_refused_with_550_fails_at_once_and_the_others_are_delivered(
    store: ServiceContext, deliverer: Deliverer
) -> None:
    with SmtpPeer("plain", refuse_recipients=("nobody@example.org",)) as peer:
        server = add_peer_server(store, peer, "srv_picky")
        ident = add_message(
            store, server, to=["ann@example.org", "nobody@example.org"], cc=["cat@example.org"]
        )
        assert deliverer.deliver(ident) == "failed"
        [got] = peer.messages
    assert sorted(got.rcpt_tos) == ["ann@example.org", "cat@example.org"]
    row = _message(store, ident)
    assert row.recipients["nobody@example.org"]["status"] == "failed"
    assert row.recipients["nobody@example.org"]["reply"].startswith("550 5.1.1")
    assert row.recipients["ann@example.org"]["status"] == "sent"
    assert row.last_reply is not None and row.last_reply.startswith("550 5.1.1")
    assert row.attempts == 1 and row.next_attempt_at is None  # final: no retry
    by_status = {d.status: d for d in _deliveries(store, ident)}
    assert by_status["failed"].recipients == ["nobody@example.org"]
    assert by_status["failed"].stage == "recipient" and by_status["failed"].reply_code == 550
    assert sorted(by_status["sent"].recipients) == ["ann@example.org", "cat@example.org"]


def test_non_ascii_subject_and_body_arrive_intact(
    store: ServiceContext, deliverer: Deliverer
) -> None:
    subject = "Angebot für Zoë — 東京 ✓"
    text = "Grüße aus Köln!\nЦена: 42 €\n.\nA line with only a dot above."
    with SmtpPeer("plain", smtputf8=False) as sink:
        server = add_peer_server(store, sink, "srv_peer")
        ident = add_message(store, server, to=["ann@exämple.org"], subject=subject, text=text)
        assert deliverer.deliver(ident) == "sent"
        [got] = sink.messages
    # On the wire: 7-bit (encoded words, quoted-printable), so any server takes it…
    assert got.raw.isascii()
    assert "=?utf-8?" in got.raw.decode("ascii")
    # …and decoded, exactly what was sent.
    assert got.message["Subject"] == subject
    assert got.message.get_content().replace("\r\n", "\n").rstrip("\n") == text
    # No SMTPUTF8 here: the IDN domain went in the envelope as A-labels.
    assert got.rcpt_tos == ["ann@xn--exmple-cua.org"]


def test_smtputf8_carries_an_address_that_is_not_ascii(
    store: ServiceContext, deliverer: Deliverer
) -> None:
    with SmtpPeer("plain", smtputf8=True) as peer:
        server = add_peer_server(store, peer, "srv_utf8")
        ident = add_message(store, server, to=["zoë@exämple.org"], subject="Grüße")
        assert deliverer.deliver(ident) == "sent"
        [got] = peer.messages
    assert got.rcpt_tos == ["zoë@exämple.org"]
    assert "zoë@exämple.org".encode() in got.raw
    assert got.message["Subject"] == "Grüße"


def test_consecutive_messages_share_one_connection_until_it_is_idle(
    store: ServiceContext, sink: SmtpPeer, deliverer: Deliverer
) -> None:
    server = add_peer_server(store, sink, "srv_peer")
    for n in range(3):
        assert deliverer.deliver(add_message(store, server, to=[f"r{n}@example.org"])) == "sent"
        if n == 0:
            one_session = sink.greetings  # EHLO, and EHLO again after looking for STARTTLS
    assert len(sink.messages) == 3
    assert sink.greetings == one_session
    deliverer.connections.idle_s = 0
    assert deliverer.connections.close_idle() == 1
    assert deliverer.deliver(add_message(store, server, to=["r9@example.org"])) == "sent"
    assert sink.greetings == 2 * one_session


def test_a_connection_the_server_dropped_is_reopened(
    store: ServiceContext, deliverer: Deliverer
) -> None:
    with SmtpPeer("plain", idle_timeout_s=0.3) as peer:
        server = add_peer_server(store, peer, "srv_peer")
        assert deliverer.deliver(add_message(store, server, to=["a@example.org"])) == "sent"
        time.sleep(1.0)  # the server closes the idle connection (421)
        assert deliverer.deliver(add_message(store, server, to=["b@example.org"])) == "sent"
        assert len(peer.messages) == 2 and peer.greetings == 4  # two sessions, two EHLO each


def test_starttls_and_auth_over_a_reused_connection(
    store: ServiceContext, pki: Pki, deliverer: Deliverer
) -> None:
    # Trust the peer's CA the way the service does (smtp_ca_file).
    store.settings.smtp_ca_file = pki.ca.cert_path
    store._tls = None
    with SmtpPeer("starttls", pki=pki) as peer:
        server = add_peer_server(store, peer, "srv_tls")
        for n in range(3):
            assert deliverer.deliver(add_message(store, server, to=[f"r{n}@example.org"])) == "sent"
        assert [m.login for m in peer.messages] == ["sales"] * 3
        assert peer.auth_attempts == ["PLAIN"] or len(peer.auth_attempts) == 1


def test_the_server_goes_away_the_message_defers_then_goes_to_the_fallback(
    store: ServiceContext, deliverer: Deliverer, clock: Clock
) -> None:
    with SmtpPeer("plain") as backup:
        primary = SmtpPeer("plain").start()
        add_peer_server(store, backup, "srv_backup")
        add_peer_server(store, primary, "srv_primary", fallback="srv_backup")
        first = add_message(store, "srv_primary", to=["a@example.org"])
        assert deliverer.deliver(first) == "sent"
        primary.stop()  # mid-run

        ident = add_message(store, "srv_primary", to=["b@example.org"], now=clock.now)
        assert deliverer.deliver(ident) == "retrying"
        row = _message(store, ident)
        assert row.email_server_id == "srv_primary" and row.server_failures == 1
        assert (row.next_attempt_at - clock.now).total_seconds() == pytest.approx(30, abs=1)
        assert deliverer.deliver(ident) is None  # not due yet: nobody takes it

        clock.advance(seconds=31)
        assert deliverer.deliver(ident) == "retrying"
        row = _message(store, ident)
        assert row.email_server_id == "srv_backup" and row.server_failures == 0

        assert deliverer.deliver(ident) == "sent"
        assert message_ids_at(backup) == [row.message_id]
    deliveries = _deliveries(store, ident)
    assert [(d.status, d.email_server_id) for d in deliveries] == [
        ("deferred", "srv_primary"),
        ("deferred", "srv_primary"),
        ("sent", "srv_backup"),
    ]
    assert deliveries[0].stage in ("connect", "sender")
    assert "srv_primary" not in (deliveries[0].error or "")  # a reply, not our ids


def test_without_a_fallback_it_retries_on_schedule_and_fails_with_the_last_reply(
    store: ServiceContext, deliverer: Deliverer, clock: Clock
) -> None:
    peer = SmtpPeer("plain").start()
    add_peer_server(store, peer, "srv_gone")
    peer.stop()
    ident = add_message(store, "srv_gone", to=["a@example.org"], now=clock.now)
    waits = []
    status = deliverer.deliver(ident)
    while status == "retrying":
        row = _message(store, ident)
        assert row.next_attempt_at is not None
        waits.append(round((row.next_attempt_at - clock.now).total_seconds()))
        clock.now = row.next_attempt_at
        status = deliverer.deliver(ident)
    assert status == "failed"
    assert waits[:6] == [30, 120, 600, 1800, 3600, 3600]
    row = _message(store, ident)
    assert row.last_reply is not None and "Could not connect" in row.last_reply
    assert row.recipients["a@example.org"] == {"status": "failed", "reply": row.last_reply}
    assert (clock.now - row.created_at).total_seconds() >= 24 * 3600
    deliveries = _deliveries(store, ident)
    assert deliveries[-1].status == "failed" and deliveries[-2].status == "deferred"
    assert len(deliveries) == row.attempts


def test_two_workers_never_take_the_same_message(
    store: ServiceContext, sink: SmtpPeer, clock: Clock
) -> None:
    server = add_peer_server(store, sink, "srv_peer")
    ident = add_message(store, server, to=["a@example.org"], now=clock.now)
    one, two = Deliverer(store, clock=clock), Deliverer(store, clock=clock)
    assert one.claim(ident) is not None
    assert two.claim(ident) is None
    # The first dies holding it: once the lease expires the message is due again.
    clock.advance(seconds=store.settings.lease_s + 1)
    job = two.claim(ident)
    assert job is not None
    assert two.record(job, two.send(job)) == "sent"
    assert one.claim(ident) is None  # final
    two.connections.close_all()


def test_over_the_pace_a_message_waits_without_counting_a_failure(
    store: ServiceContext, sink: SmtpPeer, deliverer: Deliverer, clock: Clock
) -> None:
    server = add_peer_server(store, sink, "srv_slow", max_per_minute=1)
    first = add_message(store, server, to=["a@example.org"], now=clock.now)
    second = add_message(store, server, to=["b@example.org"], now=clock.now)
    assert deliverer.deliver(first) == "sent"
    assert deliverer.deliver(second) == "paced"
    row = _message(store, second)
    assert row.status == "queued" and row.attempts == 0 and row.server_failures == 0
    assert row.next_attempt_at is not None and row.next_attempt_at > clock.now
    assert row.lease_owner is None
    assert _deliveries(store, second) == []
    assert len(sink.messages) == 1
