"""A queue entry names a batch of messages: leased at once, each sent once, leases renewed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import DeliveryRow, MessageRow
from elegere_widgets.server.worker.delivery import Deliverer
from tests.fixtures.messages import add_messages, add_peer_server, make_store, message_ids_at
from tests.fixtures.smtp import SmtpPeer


def _statuses(ctx: ServiceContext) -> dict[str, int]:
    with ctx.sessions() as s:
        rows = s.execute(select(MessageRow.status, func.count()).group_by(MessageRow.status))
        return {status: n for status, n in rows}


def _leased_by(ctx: ServiceContext, owner: str) -> int:
    with ctx.sessions() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(MessageRow).where(MessageRow.lease_owner == owner)
            )
            or 0
        )


def test_two_workers_given_the_same_batch_send_each_message_once(
    store: ServiceContext, sink: SmtpPeer
) -> None:
    server = add_peer_server(store, sink, "srv_peer")
    ids = add_messages(store, server, [f"r{n}@example.org" for n in range(40)])
    one, two = Deliverer(store), Deliverer(store)
    results: list[dict[str, str]] = []
    threads = [
        threading.Thread(target=lambda d=d: results.append(d.deliver_many(ids)))  # type: ignore[misc]
        for d in (one, two, one, two)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handled = [message_id for result in results for message_id in result]
    assert sorted(handled) == sorted(ids)  # each message handled by exactly one of them
    received = message_ids_at(sink)
    assert len(received) == len(set(received)) == 40
    assert _statuses(store) == {"sent": 40}
    with store.sessions() as s:
        assert s.scalar(select(func.count()).select_from(DeliveryRow)) == 40
    one.connections.close_all()
    two.connections.close_all()


def test_a_batch_that_outlasts_the_lease_keeps_its_messages(
    database_url: str, tmp_path: Path
) -> None:
    # A lease of 2 s and a server that takes 0.3 s per message: the batch of 10 needs
    # about 3 s. Its worker renews the leases of the messages still to send, so another worker
    # trying all the while never gets one of them.
    ctx = make_store(database_url, tmp_path, lease_s=2.0)
    try:
        with SmtpPeer("plain", data_delay_s=0.3) as slow:
            server = add_peer_server(ctx, slow, "srv_slow")
            ids = add_messages(ctx, server, [f"r{n}@example.org" for n in range(10)])
            holder, other = Deliverer(ctx), Deliverer(ctx)
            done: dict[str, str] = {}
            worker = threading.Thread(target=lambda: done.update(holder.deliver_many(ids)))
            taken_by_other: list[str] = []
            worker.start()
            while not _leased_by(ctx, holder.owner):  # one statement leases all ten
                assert worker.is_alive()
                time.sleep(0.01)
            while worker.is_alive():
                taken_by_other += [job.message.id for job in other.claim_many(ids)]
                worker.join(0.2)
            assert taken_by_other == []
            assert done == dict.fromkeys(ids, "sent")
            received = message_ids_at(slow)
            assert len(received) == len(set(received)) == 10
            holder.connections.close_all()
    finally:
        ctx.engine.dispose()
