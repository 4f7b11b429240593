"""Scheduled health checks: every stored server, once per ``health_interval_s``.

A server's place in the schedule is its ``server_check_leases`` row, made by the first worker
that sees the server with a random time within the interval (the checks of a thousand servers
spread over it rather than all at once). A worker takes a due server with a conditional UPDATE
(due, and not held by a live lease) that also moves it one interval on: with several workers
each server is checked once per interval and never twice at once. The check is the same staged
connection test as the API's (``run_connection_test`` with the stored settings), at most
``health_concurrency`` at a time, each within the test budget; its result is a
``server_checks`` row and the server's ``last_test``. Then the server's admins are told if its
health changed (``services.health_alerts``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from ...errors import InvalidSettings
from ...models import ConnectionTestResult, Stage
from ..connections import run_connection_test
from ..context import ServiceContext
from ..services.email_servers import stored_server_settings
from ..services.health_alerts import alert_on_change
from ..services.server_checks import record_check
from ..store.tables import EmailServerRow, ServerCheckLeaseRow, utcnow

__all__ = ["HealthChecker"]

log = logging.getLogger(__name__)

#: Due servers read at a time; the slots read the next ones when these are taken.
BATCH = 500


class HealthChecker:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.interval = timedelta(seconds=ctx.settings.health_interval_s)
        self.concurrency = ctx.settings.health_concurrency
        # A check ends within its budget; a lease outliving that by far means a dead worker.
        self.lease = timedelta(seconds=2 * ctx.settings.test_budget_s + 30)
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="elegere-health")

    # ---------------------------------------------------------------- the schedule

    def schedule_new_servers(self, now: datetime) -> int:
        """Give every server without a place one, at a random time within the interval; drop
        the places of deleted servers. Returns how many were added."""
        with self.ctx.sessions() as session:
            session.execute(
                delete(ServerCheckLeaseRow)
                .where(ServerCheckLeaseRow.email_server_id.not_in(select(EmailServerRow.id)))
                .execution_options(synchronize_session=False)
            )
            new = session.scalars(
                select(EmailServerRow.id).where(
                    EmailServerRow.id.not_in(select(ServerCheckLeaseRow.email_server_id))
                )
            ).all()
            span = self.interval.total_seconds()
            for server_id in new:
                session.add(
                    ServerCheckLeaseRow(
                        email_server_id=server_id,
                        next_check_at=now + timedelta(seconds=random.uniform(0, span)),
                    )
                )
            try:
                session.commit()
            except IntegrityError:  # another worker placed them first
                session.rollback()
                return 0
            return len(new)

    def _due(self, now: datetime) -> object:
        return and_(
            ServerCheckLeaseRow.next_check_at <= now,
            or_(
                ServerCheckLeaseRow.check_lease_owner.is_(None),
                ServerCheckLeaseRow.check_lease_expires_at < now,
            ),
        )

    def due_ids(self, now: datetime) -> list[str]:
        with self.ctx.read_sessions() as session:
            return list(
                session.scalars(
                    select(ServerCheckLeaseRow.email_server_id)
                    .where(self._due(now))  # type: ignore[arg-type]
                    .order_by(ServerCheckLeaseRow.next_check_at)
                    .limit(BATCH)
                )
            )

    def claim(self, server_id: str, now: datetime) -> bool:
        """Take the server for one check and move it one interval on; False if another
        worker has it or it is not due."""
        with self.ctx.sessions.begin() as session:
            taken = session.execute(
                update(ServerCheckLeaseRow)
                .where(ServerCheckLeaseRow.email_server_id == server_id, self._due(now))  # type: ignore[arg-type]
                .values(
                    check_lease_owner=self.owner,
                    check_lease_expires_at=now + self.lease,
                    next_check_at=now + self.interval,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(taken.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, server_id: str) -> None:
        with self.ctx.sessions.begin() as session:
            session.execute(
                update(ServerCheckLeaseRow)
                .where(
                    ServerCheckLeaseRow.email_server_id == server_id,
                    ServerCheckLeaseRow.check_lease_owner == self.owner,
                )
                .values(check_lease_owner=None, check_lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )

    # ---------------------------------------------------------------- one check

    def check(self, server_id: str) -> ConnectionTestResult | None:
        """The staged test of the stored server, recorded; None when it no longer exists."""
        with self.ctx.sessions() as session:
            row = session.get(EmailServerRow, server_id)
            if row is None:
                return None
            server_type = row.type
            try:
                settings = stored_server_settings(self.ctx, row)
            except InvalidSettings as exc:
                settings = None
                problem = "; ".join(e.message for e in exc.field_errors) or str(exc)
        # No transaction is held while the test runs.
        if settings is None:
            result = ConnectionTestResult(
                ok=False,
                server_type=server_type,  # type: ignore[arg-type]
                stages=[Stage(name="settings", ok=False, detail=problem)],
            )
        else:
            result = run_connection_test(self.ctx, settings)
        with self.ctx.sessions() as session:
            if session.get(EmailServerRow, server_id) is None:
                return None  # deleted while it was tested
            record_check(session, server_id, result, "scheduled", self.clock())
            session.commit()
        return result

    def _check_and_alert(self, server_id: str) -> None:
        try:
            result = self.check(server_id)
            if result is not None:
                log.info("Health check of %s: %s", server_id, "passed" if result.ok else "failed")
                alert_on_change(self.ctx, server_id, self.clock())
        except Exception:
            log.exception("The health check of %s failed; it runs again next interval.", server_id)
        finally:
            self.release(server_id)

    # ---------------------------------------------------------------- passes

    def run_once(self) -> int:
        """Check every due server this worker can take, ``health_concurrency`` at once, until
        none is due; returns how many it checked.

        Each of the ``health_concurrency`` slots takes the next due server as soon as it is
        free, reading what came due meanwhile; once nothing is due the pass ends (a slot
        left alone must not carry on with what comes due later: the next pass has them
        all). Taking a pass's servers all at once and waiting for the last of them left slots
        idle behind the slowest check, and a server that came due meanwhile waited for it and
        a tick: a sweep of 1,000 servers, half of them silent, took 1.3× its least, and spread
        over an interval it ended a quarter of an interval late.
        """
        self.schedule_new_servers(self.clock())
        due: deque[str] = deque()
        taking = threading.Lock()
        drained = False

        def take() -> str | None:
            nonlocal drained
            with taking:  # one claim at a time: the slots share what was read as due
                while not self.stop_event.is_set():
                    if not due:
                        if not drained:
                            due.extend(self.due_ids(self.clock()))
                        if not due:
                            drained = True
                            return None
                    server_id = due.popleft()
                    if self.claim(server_id, self.clock()):
                        return server_id
                return None

        def slot(_: int) -> int:
            checked = 0
            while (server_id := take()) is not None:
                self._check_and_alert(server_id)
                checked += 1
            return checked

        return sum(self._pool.map(slot, range(self.concurrency)))

    def tick_s(self) -> float:
        """How often to look for due servers: often enough to keep the spread."""
        return max(
            0.05, min(self.ctx.settings.sweep_interval_s, self.interval.total_seconds() / 20)
        )

    def run(self) -> None:
        tick = self.tick_s()
        while not self.stop_event.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception(
                    "The health sweep failed; it runs again in %g s. Check that the store is "
                    "reachable.",
                    tick,
                )
            self.stop_event.wait(tick)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="elegere-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=False, cancel_futures=True)
