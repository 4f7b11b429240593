"""The sweep: the store is the truth, the queue only a signal.

Every ``sweep_interval_s`` a worker looks for messages that are due and not leased (or
whose lease expired) and enqueues them: a lost queue entry, a retry that came due, a worker
killed mid-send. It enqueues only when the queue is empty — while entries wait, workers are
busy and a message without an entry is found as soon as they catch up — so a backlog is
not enqueued again every few seconds. It also closes idle SMTP connections and purges the
bodies of messages past their retention (the messages service's job, when it exists).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from ..context import ServiceContext
from ..store.tables import utcnow
from .delivery import due_ids
from .queue import HueyQueue
from .smtp_sender import SmtpConnections

__all__ = ["SWEEP_BATCH", "Sweeper"]

log = logging.getLogger(__name__)

#: At most this many messages enqueued per pass; the next pass takes the rest.
SWEEP_BATCH = 2000


def _body_purge() -> Callable[..., object] | None:
    import importlib

    try:  # the messages service (issue 12's API) owns the retention rule
        messages = importlib.import_module("elegere_widgets.server.services.messages")
    except ImportError:
        return None
    purge = getattr(messages, "purge_message_bodies", None)
    return purge if callable(purge) else None


class Sweeper:
    def __init__(self, ctx: ServiceContext, queue: HueyQueue, connections: SmtpConnections) -> None:
        self.ctx = ctx
        self.queue = queue
        self.connections = connections
        self.stop_event = threading.Event()
        self._purge = _body_purge()
        self._thread: threading.Thread | None = None

    def sweep_once(self) -> int:
        """One pass; returns how many messages it enqueued."""
        self.connections.close_idle()
        if self._purge is not None:
            try:
                retention = timedelta(days=self.ctx.settings.message_retention_days)
                with self.ctx.sessions() as session:
                    self._purge(session, utcnow(), retention)
                    session.commit()
            except Exception:
                log.exception("Purging message bodies failed; the next sweep tries again.")
        if self.queue.pending():
            return 0
        with self.ctx.read_sessions() as session:
            ids = due_ids(session, utcnow(), SWEEP_BATCH)
        if ids:
            log.info("Sweep: %d due message(s) had no queue entry; enqueued.", len(ids))
            self.queue.signal(ids)
        return len(ids)

    def run(self) -> None:
        interval = self.ctx.settings.sweep_interval_s
        while not self.stop_event.is_set():
            try:
                self.sweep_once()
            except Exception:
                log.exception(
                    "The sweep failed; it runs again in %g s. Check that the store and the "
                    "queue are reachable.",
                    interval,
                )
            self.stop_event.wait(interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="elegere-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(10)
