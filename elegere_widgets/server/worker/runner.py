"""``elegere worker``: the Huey consumer (thread workers) plus the sweep, until a signal."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from huey.consumer import Consumer

from ..context import ServiceContext
from ..heap import freeze_startup_heap
from ..store.db import is_migrated
from .delivery import Deliverer
from .health import HealthChecker
from .queue import HueyQueue, build_huey, queue_description
from .smtp_sender import SmtpConnections
from .sweep import Sweeper

__all__ = ["NotMigrated", "Worker"]

log = logging.getLogger(__name__)

#: How long an idle thread worker waits before looking at the SQLite queue again (Redis
#: blocks until an entry comes). Short: a message should not wait for a sleeping poll.
POLL_MAX_S = 0.25


class NotMigrated(RuntimeError):
    pass


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


class Worker:
    """One worker process: ``threads`` deliveries at a time, one sweep."""

    def __init__(self, ctx: ServiceContext, *, threads: int = 4) -> None:
        if threads < 1:
            raise ValueError("--threads must be at least 1.")
        if not is_migrated(ctx.engine):
            raise NotMigrated(
                "The store has no tables yet: run `elegere migrate` (with the same "
                "--database / ELEGERE_DATABASE_URL) before starting the worker."
            )
        self.ctx = ctx
        self.threads = threads
        self.connections = SmtpConnections(ctx.settings.smtp_idle_s)
        self.deliverer = Deliverer(ctx, connections=self.connections)
        self.huey = build_huey(ctx.settings, deliver=self._deliver)
        self.queue = HueyQueue(self.huey)
        self.sweeper = Sweeper(ctx, self.queue, self.connections)
        self.health = HealthChecker(ctx)

    def _deliver(self, message_ids: list[str]) -> None:
        for message_id, status in self.deliverer.deliver_many(message_ids).items():
            log.info("message %s: %s", message_id, status)

    def run(self) -> None:
        """Until SIGINT (finish the messages in hand) or SIGTERM (stop now: leases expire)."""
        consumer = Consumer(
            self.huey,
            workers=self.threads,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            max_delay=POLL_MAX_S,
            check_worker_health=True,
        )
        # Until the consumer installs its own handlers: a stop asked for during start-up
        # is a clean exit too (nothing is leased yet).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _exit_cleanly)
        log.info(
            "Worker %s: %d thread(s), queue %s, sweep every %g s.",
            self.deliverer.owner,
            self.threads,
            queue_description(self.ctx.settings),
            self.ctx.settings.sweep_interval_s,
        )
        freeze_startup_heap()
        self.sweeper.start()
        self.health.start()
        try:
            consumer.run()
        finally:
            self.health.stop()
            self.sweeper.stop()
            self.connections.close_all()
