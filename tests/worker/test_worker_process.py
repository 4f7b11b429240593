"""`elegere worker` as a user runs it: real processes, a real queue, SIGKILL."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import CustomActionRow, MessageRow
from elegere_widgets.server.worker.queue import HueyQueue, build_huey
from tests.conftest import ADMIN
from tests.fixtures.messages import add_message, add_peer_server, make_store, message_ids_at
from tests.fixtures.processes import clean_env, elegere
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .conftest import Workers, wait_until


def _statuses(ctx: ServiceContext) -> dict[str, int]:
    with ctx.sessions() as s:
        rows = s.execute(select(MessageRow.status, func.count()).group_by(MessageRow.status))
        return {status: n for status, n in rows}


def test_queued_and_unqueued_messages_are_all_delivered(
    store: ServiceContext, sink: SmtpPeer, workers: Workers
) -> None:
    server = add_peer_server(store, sink, "srv_peer")
    signalled = [add_message(store, server, to=[f"q{n}@example.org"]) for n in range(20)]
    store.queue.signal(signalled)
    # No queue entry at all (a lost signal): the sweep must find these.
    lost = [add_message(store, server, to=[f"l{n}@example.org"]) for n in range(10)]
    workers.start(store)
    wait_until("30 messages at the sink", lambda: len(sink.messages) >= 30)
    wait_until("all recorded", lambda: _statuses(store) == {"sent": 30})
    with store.sessions() as s:
        wanted = {s.get(MessageRow, i).message_id for i in [*signalled, *lost]}  # type: ignore[union-attr]
    assert sorted(message_ids_at(sink)) == sorted(wanted)


def test_sigkill_mid_batch_loses_nothing(
    store: ServiceContext, workers: Workers, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpPeer("plain", data_delay_s=0.02) as sink:
        server = add_peer_server(store, sink, "srv_peer")
        ids = [add_message(store, server, to=[f"r{n}@example.org"]) for n in range(150)]
        store.queue.signal(ids)
        first = workers.start(store)
        wait_until("40 messages at the sink", lambda: len(sink.messages) >= 40)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        in_flight = _statuses(store).get("sending", 0)
        at_kill = len(sink.messages)
        workers.start(store)
        wait_until("all 150 recorded", lambda: _statuses(store) == {"sent": 150})
        received = message_ids_at(sink)
    duplicates = len(received) - len(set(received))
    with capsys.disabled():
        print(
            f"\n[worker SIGKILL] at the kill: {at_kill} at the sink, {in_flight} in flight; "
            f"after: {len(set(received))}/150 delivered, {duplicates} duplicate(s)"
        )
    assert len(set(received)) == 150
    assert duplicates <= in_flight


def test_the_worker_refuses_an_unmigrated_store(tmp_path: Path) -> None:
    env = clean_env(
        ELEGERE_DATA_DIR=str(tmp_path),
        ELEGERE_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}",
    )
    done = elegere("worker", env=env)
    assert done.returncode == 2
    assert "run `elegere migrate`" in done.stderr


def test_sigterm_stops_the_worker(store: ServiceContext, workers: Workers) -> None:
    proc = workers.start(store)
    log = workers.tmp_path / "worker0.log"
    wait_until("the worker started", lambda: log.exists() and b"thread(s)" in log.read_bytes())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def test_two_workers_on_postgresql_and_redis_send_each_message_once(
    pg_database: str,
    redis_url: str,
    tmp_path: Path,
    workers: Workers,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = make_store(pg_database, tmp_path, queue_url=redis_url)
    build_huey(ctx.settings).flush()
    try:
        with SmtpPeer("plain") as sink:
            server = add_peer_server(ctx, sink, "srv_peer")
            workers.start(ctx)
            workers.start(ctx)
            queue = ctx.queue
            assert isinstance(queue, HueyQueue)
            for batch in range(10):
                ids = [
                    add_message(ctx, server, to=[f"b{batch}r{n}@example.org"]) for n in range(100)
                ]
                queue.signal(ids)
            wait_until("1,000 recorded", lambda: _statuses(ctx) == {"sent": 1000}, timeout=300)
            received = message_ids_at(sink)
        with capsys.disabled():
            print(f"\n[2 workers, PG+Redis] {len(received)} received, {len(set(received))} unique")
        assert len(received) == 1000 and len(set(received)) == 1000
    finally:
        build_huey(ctx.settings).flush()
        ctx.engine.dispose()


def test_messages_posted_to_the_api_are_delivered_by_the_worker(
    service: RunningService, sink: SmtpPeer, workers: Workers
) -> None:
    """End to end as a user sends: POST …/messages (a batch and a single one) over HTTP to the
    real service, an `elegere worker` process, the sink; GET shows each attempt."""
    ctx = service.ctx
    add_peer_server(ctx, sink, "srv_peer")
    with ctx.sessions.begin() as s:  # "Send quote" goes through the peer
        action = s.get(CustomActionRow, "ca_send_quote")
        assert action is not None
        action.email_server_id = "srv_peer"
    workers.start(ctx)
    sales = f"{service.url}/api/v1/workspaces/ws_sales"
    headers = {"Authorization": f"Bearer {service.tokens[ADMIN]}"}

    def message(n: int) -> dict[str, object]:
        return {
            "sender": {"kind": "custom_action", "id": "ca_send_quote"},
            "to": [f"Kunde {n} <k{n}@bücher.example>"],
            "subject": f"Ihr Angebot – Nr. {n}",
            "text": "Guten Tag,\nanbei das Angebot.",
        }

    with httpx.Client(headers=headers, timeout=30) as http:
        batch = http.post(f"{sales}/messages", json={"messages": [message(n) for n in range(20)]})
        assert batch.status_code == 202, batch.text
        single = http.post(f"{sales}/messages", json=message(20))
        assert single.status_code == 202, single.text
        answers = [*batch.json()["items"], single.json()]
        wait_until("21 messages at the sink", lambda: len(sink.messages) >= 21)
        wait_until("all recorded", lambda: _statuses(ctx) == {"sent": 21})
        assert sorted(message_ids_at(sink)) == sorted(a["message_id"] for a in answers)
        assert sorted(m.subject for m in sink.messages) == sorted(
            f"Ihr Angebot – Nr. {n}" for n in range(21)
        )
        got = http.get(f"{sales}/messages/{answers[-1]['id']}").json()
    assert got["status"] == "sent"
    assert [a["outcome"] for a in got["attempts"]] == ["sent"]
