"""Delivery: lease messages in the store, send them, record what happened.

The lease is a conditional UPDATE … RETURNING: only messages that are due and free (or
whose lease expired: their worker died) are taken, and the ids it returns are this
worker's, so two workers never send the same message in normal operation. A queue entry
names a batch of messages (see queue.py): they are leased in one statement, sent one after
the other over the server's reused connection, and recorded a few at a time, each group in
one transaction: a delivery row per outcome of each attempt (sent, deferred, failed, with
the server and its reply), each recipient's state, the message's status and next attempt,
and the lease released. Nothing is sent inside a store transaction.

Statuses: ``sent`` when every recipient is sent; ``failed`` when none is pending any more
and at least one was refused (5xx, or still deferred when the retry window closed) — each
recipient's own state and reply stay in ``recipients``, so a message whose other
recipients were delivered says so; ``retrying`` while some recipient is deferred.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import Storage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ...connectivity.smtp import process_token_cache
from ...models import SETTINGS_BY_TYPE, GraphSettings, SmtpSettings
from ...models.servers import DERIVED_SETTINGS
from ..connections import smtp_oauth_endpoints
from ..context import ServiceContext
from ..rate_limit import make_storage
from ..security import new_id
from ..store.tables import DeliveryRow, EmailServerRow, MessageRow, utcnow
from .compose import Outgoing
from .outcome import Attempt, RecipientResult
from .schedule import next_delay, retry_deadline
from .smtp_sender import SmtpConnection, SmtpConnections

__all__ = ["GRAPH_DEFAULT_PACE", "RECORD_EVERY", "Deliverer", "Pace", "due_filter", "worker_id"]

log = logging.getLogger(__name__)

#: Exchange Online's per-mailbox limit: a Graph server with no pace of its own gets this one.
GRAPH_DEFAULT_PACE = 30
#: Outcomes written per transaction. A transaction (and its fsync) per message cost more
#: than the send itself; a killed worker resends at most this many per thread.
RECORD_EVERY = 10
#: Settings that are shown but not sent (derived when the server was saved, or by tests).
_DERIVED = DERIVED_SETTINGS

Clock = Callable[[], datetime]


def worker_id() -> str:
    """Names a worker process in the leases it holds (host, pid, and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def due_filter(now: datetime) -> Any:
    """Messages a worker may take now: due and free, or leased by a worker that died."""
    lease_free = or_(MessageRow.lease_owner.is_(None), MessageRow.lease_expires_at < now)
    return or_(
        and_(
            MessageRow.status.in_(("queued", "retrying")),
            MessageRow.next_attempt_at <= now,
            lease_free,
        ),
        and_(MessageRow.status == "sending", MessageRow.lease_expires_at < now),
    )


class Pace:
    """Per-server messages per minute, over a moving window (the ``limits`` library), in the
    service's limits store: Redis when ``ELEGERE_LIMITS_URL`` or a Redis queue names one, so
    all workers share it; else this process's memory."""

    def __init__(self, storage: Storage) -> None:
        self.limiter = MovingWindowRateLimiter(storage)

    def take(self, server_id: str, per_minute: int, now: datetime) -> datetime | None:
        """None when a message may go now; else when the window has room again."""
        item = RateLimitItemPerMinute(per_minute)
        if self.limiter.hit(item, "elegere-pace", server_id):
            return None
        reset = self.limiter.get_window_stats(item, "elegere-pace", server_id).reset_time
        return max(datetime.fromtimestamp(reset, now.tzinfo), now + timedelta(seconds=1))


@dataclass
class _Job:
    """A leased message and the server it goes through, read in the lease's transaction."""

    message: Outgoing
    attempts: int
    server_id: str
    server_name: str
    server_type: str
    server_version: int
    settings: SmtpSettings | GraphSettings | None
    fallback_server_id: str | None
    pace: int | None


class Deliverer:
    """Runs ``deliver(message_id)`` for the queue's task, in any number of threads."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        connections: SmtpConnections | None = None,
        pace: Pace | None = None,
        owner: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.ctx = ctx
        self.owner = owner or worker_id()
        self.connections = connections or SmtpConnections(ctx.settings.smtp_idle_s)
        self.pace = pace or Pace(make_storage(ctx.settings))
        self.clock = clock
        self._settings_cache: dict[tuple[str, int], SmtpSettings | GraphSettings] = {}
        self._cache_lock = threading.Lock()
        # SQLite has one writer at a time and its busy handler sleeps up to 100 ms between
        # tries: this process's threads take turns here instead, in order, without sleeping.
        self._writing: AbstractContextManager[object] = (
            threading.Lock() if ctx.engine.dialect.name == "sqlite" else nullcontext()
        )

    # ------------------------------------------------------------------ the step

    def deliver(self, message_id: str) -> str | None:
        """Lease, send, record one message. Returns its new status, ``paced``, or None when it
        was not ours to send (another worker has it, it is not due, or it is final)."""
        return self.deliver_many([message_id]).get(message_id)

    def deliver_many(self, message_ids: Sequence[str]) -> dict[str, str]:
        """Lease those of ``message_ids`` that are free and due in one statement, send them in
        turn (one reused connection per server), and record their outcomes a few at a time
        (``RECORD_EVERY``), each group in one transaction. Returns each handled message's new
        status (``paced`` for one given back untried).

        Messages are recorded in small groups rather than all at the end so that a killed
        worker resends at most one group per thread (duplicates ≤ messages in flight), and the
        leases of those still to send are renewed before a send that could outlast them (one
        may take the whole send budget), so a long batch never outlives its lease."""
        statuses: dict[str, str] = {}
        lease_s = self.ctx.settings.lease_s
        # A send may take the whole send budget: one starts only with that much lease left
        # (or half the lease, when it is longer), else the leases are renewed first.
        keep = max(lease_s / 2, self.ctx.settings.send_budget_s)
        leased_until = time.monotonic() + lease_s  # taken before the claim: never later
        try:
            jobs = self.claim_many(message_ids)
        except Exception:
            log.exception(
                "Leasing %d message(s) failed; the sweep finds them again.", len(message_ids)
            )
            return statuses
        done: list[tuple[_Job, Attempt | datetime]] = []
        paced: dict[str, datetime] = {}
        for index, job in enumerate(jobs):
            if leased_until - time.monotonic() < keep:
                statuses.update(self._record_safely(done))
                done = []
                leased_until = time.monotonic() + lease_s
                jobs[index:] = self.renew(jobs[index:])
                if index >= len(jobs):
                    break
                job = jobs[index]
            try:
                done.append((job, self._attempt(job, paced)))
            except Exception:
                log.exception(
                    "Delivering message %s failed unexpectedly; it is tried again when its "
                    "lease expires (%g s).",
                    job.message.id,
                    lease_s,
                )
            if len(done) >= RECORD_EVERY:
                statuses.update(self._record_safely(done))
                done = []
        statuses.update(self._record_safely(done))
        return statuses

    def _attempt(self, job: _Job, paced: dict[str, datetime]) -> Attempt | datetime:
        """Send one leased message: its attempt, or when it may go (over its server's pace)."""
        if job.settings is None:
            return Attempt.refused_all(
                job.message.pending,
                stage="connect",
                code=None,
                reply=f"The email server {job.server_id} no longer exists: send the message "
                "again through a sender that has a server.",
            )
        per_minute = job.pace or (
            GRAPH_DEFAULT_PACE if job.server_type == "microsoft_graph" else None
        )
        if per_minute:
            later = paced.get(job.server_id) or self.pace.take(
                job.server_id, per_minute, self.clock()
            )
            if later is not None:
                paced[job.server_id] = later  # the rest of this batch waits too
                return later
        return self.send(job)

    def _record_safely(self, done: list[tuple[_Job, Attempt | datetime]]) -> dict[str, str]:
        if not done:
            return {}
        try:
            return self.record_many(done)
        except Exception:
            log.exception(
                "Recording %d attempt(s) failed; those messages are tried again when their "
                "lease expires (%g s).",
                len(done),
                self.ctx.settings.lease_s,
            )
            return {}

    # ------------------------------------------------------------------ lease

    def claim(self, message_id: str) -> _Job | None:
        jobs = self.claim_many([message_id])
        return jobs[0] if jobs else None

    def claim_many(self, message_ids: Sequence[str]) -> list[_Job]:
        """Lease every one of ``message_ids`` that is due and free, in one UPDATE … RETURNING:
        the ids it returns are this worker's, whatever other threads or workers do at the
        same time (on PostgreSQL rows another worker is leasing are skipped, not waited for)."""
        if not message_ids:
            return []
        now = self.clock()
        lease_until = now + timedelta(seconds=self.ctx.settings.lease_s)
        free = (
            select(MessageRow.id)
            .where(MessageRow.id.in_(list(message_ids)), due_filter(now))
            .with_for_update(skip_locked=True)
        )
        with self._writing, self.ctx.sessions.begin() as session:
            taken = set(
                session.scalars(
                    update(MessageRow)
                    .where(MessageRow.id.in_(free), due_filter(now))
                    .values(
                        lease_owner=self.owner,
                        lease_expires_at=lease_until,
                        status="sending",
                        updated_at=now,
                    )
                    .returning(MessageRow.id)
                    .execution_options(synchronize_session=False)
                )
            )
            if not taken:
                return []
            rows = {
                row.id: row
                for row in session.scalars(select(MessageRow).where(MessageRow.id.in_(taken)))
            }
            server_ids = {row.email_server_id for row in rows.values()}
            servers = {
                server.id: server
                for server in session.scalars(
                    select(EmailServerRow).where(EmailServerRow.id.in_(server_ids))
                )
            }
            # In the order given: the order they were submitted in.
            return [
                self._job(rows[i], servers.get(rows[i].email_server_id))
                for i in dict.fromkeys(message_ids)
                if i in rows
            ]

    def renew(self, jobs: list[_Job]) -> list[_Job]:
        """Extend the lease of messages still to send; those whose lease ran out (another
        worker may have them now) are dropped."""
        if not jobs:
            return []
        now = self.clock()
        with self._writing, self.ctx.sessions.begin() as session:
            kept = set(
                session.scalars(
                    update(MessageRow)
                    .where(
                        MessageRow.id.in_([job.message.id for job in jobs]),
                        MessageRow.lease_owner == self.owner,
                        MessageRow.lease_expires_at >= now,
                    )
                    .values(lease_expires_at=now + timedelta(seconds=self.ctx.settings.lease_s))
                    .returning(MessageRow.id)
                    .execution_options(synchronize_session=False)
                )
            )
        return [job for job in jobs if job.message.id in kept]

    def _job(self, row: MessageRow, server: EmailServerRow | None) -> _Job:
        pending = [a for a, state in row.recipients.items() if state.get("status") == "pending"]
        message = Outgoing(
            id=row.id,
            message_id=row.message_id,
            to=list(row.to),
            cc=list(row.cc or []),
            bcc=list(row.bcc or []),
            reply_to=row.reply_to,
            subject=row.subject,
            text=row.text,
            html=row.html,
            created_at=row.created_at,
            pending=pending,
        )
        if server is None:
            return _Job(
                message, row.attempts, row.email_server_id, "(deleted)", "", 0, None, None, None
            )
        return _Job(
            message,
            row.attempts,
            server.id,
            server.name,
            server.type,
            server.version,
            self._settings(server),
            server.fallback_server_id,
            server.max_per_minute,
        )

    def _settings(self, server: EmailServerRow) -> SmtpSettings | GraphSettings:
        """The server's settings with its secrets, as the connection test uses them."""
        key = (server.id, server.version)
        with self._cache_lock:
            cached = self._settings_cache.get(key)
        if cached is not None:
            return cached
        public = {k: v for k, v in server.settings.items() if k not in _DERIVED}
        values = {**public, **self.ctx.box.open(server.secrets_sealed)}
        settings = SETTINGS_BY_TYPE[server.type].model_validate(values)
        with self._cache_lock:
            self._settings_cache[key] = settings
        return settings

    # ------------------------------------------------------------------ send

    def send(self, job: _Job) -> Attempt:
        settings = job.settings
        if isinstance(settings, SmtpSettings):
            connection = self.connections.get(
                (job.server_id, job.server_version),
                lambda: SmtpConnection(
                    settings,
                    self.ctx.egress,
                    self.ctx.ssl_context(),
                    self.ctx.settings.send_budget_s,
                    oauth=smtp_oauth_endpoints(self.ctx),
                    token_cache=process_token_cache(settings),
                ),
            )
            return connection.send(job.message)
        assert isinstance(settings, GraphSettings)
        return self._send_graph(settings, job.message)

    def _send_graph(self, settings: GraphSettings, message: Outgoing) -> Attempt:
        from ...connectivity.graph import send_graph_message  # msal is heavy: only for Graph

        def people(addresses: list[str]) -> list[dict[str, Any]]:
            return [{"emailAddress": {"address": a}} for a in addresses]

        pending = set(message.pending)
        resource: dict[str, Any] = {
            "subject": message.subject,
            "body": (
                {"contentType": "HTML", "content": message.html}
                if message.html is not None
                else {"contentType": "Text", "content": message.text or ""}
            ),
            "toRecipients": people([a for a in message.to if a in pending]),
            "ccRecipients": people([a for a in message.cc if a in pending]),
            "bccRecipients": people([a for a in message.bcc if a in pending]),
            "internetMessageId": message.message_id,
        }
        if message.reply_to:
            resource["replyTo"] = people([message.reply_to])
        settings_ = self.ctx.settings
        outcome, code = send_graph_message(
            settings,
            message=resource,
            summary=", ".join(message.pending),
            authority_host=settings_.graph_authority_host,
            graph_base_url=settings_.graph_base_url,
            budget_s=settings_.send_budget_s,
            ca_bundle=str(settings_.graph_ca_file) if settings_.graph_ca_file else None,
        )
        if outcome.ok:
            sent = RecipientResult("sent", 202, outcome.detail)
            return Attempt(
                {a: sent for a in message.pending}, stage="send", code=202, reply=outcome.detail
            )
        if code == "ErrorInvalidRecipients":
            return Attempt.refused_all(
                message.pending, stage="send", code=400, reply=outcome.detail
            )
        status = int(code) if code and code.isdigit() else None
        return Attempt.server_failure(stage="send", code=status, reply=outcome.detail)

    # ------------------------------------------------------------------ record

    def record(self, job: _Job, attempt: Attempt) -> str:
        return self.record_many([(job, attempt)])[job.message.id]

    def record_many(self, done: Sequence[tuple[_Job, Attempt | datetime]]) -> dict[str, str]:
        """Write what happened to each message in one transaction: an attempt's outcome, or
        (a time instead of an attempt) the message given back untried until then, over its
        server's pace, with no attempt counted."""
        now = self.clock()
        statuses: dict[str, str] = {}
        with self._writing, self.ctx.sessions.begin() as session:
            rows = {
                row.id: row
                for row in session.scalars(
                    select(MessageRow)
                    .where(MessageRow.id.in_([job.message.id for job, _ in done]))
                    .with_for_update()
                )
            }
            for job, result in done:
                row = rows[job.message.id]
                if isinstance(result, datetime):
                    statuses[row.id] = self._release(row, job, result, now)
                else:
                    statuses[row.id] = self._record(session, row, job, result, now)
        return statuses

    def _release(self, row: MessageRow, job: _Job, at: datetime, now: datetime) -> str:
        if row.lease_owner == self.owner:
            row.status = "retrying" if job.attempts else "queued"
            row.next_attempt_at = at
            row.lease_owner = None
            row.lease_expires_at = None
            row.updated_at = now
        return "paced"

    def _record(
        self, session: Session, row: MessageRow, job: _Job, attempt: Attempt, now: datetime
    ) -> str:
        settings = self.ctx.settings
        results = attempt.for_recipients(job.message.pending)
        if now >= retry_deadline(row.created_at, settings):
            # The retry window closed: what is deferred now has failed, with this reply.
            results = {
                a: r if r.outcome != "deferred" else replace(r, outcome="failed")
                for a, r in results.items()
            }
        self._add_deliveries(session, row, job, attempt, results, now)
        if row.lease_owner != self.owner:
            # Our lease ran out while we sent and another worker may have the message:
            # the attempt is on record; its state is the other worker's to write.
            log.warning(
                "The lease on message %s expired while it was sent (lease %g s, send "
                "budget %g s): raise ELEGERE_LEASE_S above the send budget.",
                row.id,
                settings.lease_s,
                settings.send_budget_s,
            )
            return row.status
        recipients = {addr: dict(state) for addr, state in row.recipients.items()}
        for address, result in results.items():
            state = recipients.setdefault(address, {"status": "pending", "reply": None})
            state["reply"] = result.reply
            if result.outcome != "deferred":
                state["status"] = result.outcome
        row.attempts += 1
        row.last_reply = attempt.reply or row.last_reply
        pending = [a for a, s in recipients.items() if s["status"] == "pending"]
        if pending:
            if attempt.server_failed:
                row.server_failures += 1
            if now >= retry_deadline(row.created_at, settings):
                for address in pending:  # not tried this time (a lost connection)
                    recipients[address]["status"] = "failed"
                pending = []
            elif row.server_failures >= 2 and job.fallback_server_id:
                row.email_server_id = job.fallback_server_id
                row.server_failures = 0
                row.next_attempt_at = now
                row.status = "retrying"
            else:
                row.next_attempt_at = now + next_delay(row.attempts, settings)
                row.status = "retrying"
        if not pending:
            everyone_sent = all(s["status"] == "sent" for s in recipients.values())
            row.status = "sent" if everyone_sent else "failed"
            row.finished_at = now
            row.next_attempt_at = None
        row.recipients = recipients
        row.lease_owner = None
        row.lease_expires_at = None
        row.updated_at = now
        return row.status

    def _add_deliveries(
        self,
        session: Session,
        row: MessageRow,
        job: _Job,
        attempt: Attempt,
        results: dict[str, RecipientResult],
        now: datetime,
    ) -> None:
        """A delivery row per outcome of this attempt (sent / deferred / failed)."""
        by_outcome: dict[str, list[tuple[str, RecipientResult]]] = {}
        for address, result in results.items():
            by_outcome.setdefault(result.outcome, []).append((address, result))
        for outcome, entries in by_outcome.items():
            first = entries[-1][1]
            session.add(
                DeliveryRow(
                    id=new_id("dlv"),
                    workspace_id=row.workspace_id,
                    email_server_id=job.server_id,
                    email_server_name=job.server_name,
                    kind=row.sender_kind,
                    recipients=[address for address, _ in entries],
                    status=outcome,
                    error=first.reply or attempt.reply or None,
                    created_at=now,
                    message_id=row.id,
                    stage=first.stage or attempt.stage,
                    reply_code=first.code,
                )
            )


def due_ids(session: Session, now: datetime, limit: int) -> list[str]:
    """Up to ``limit`` messages a worker may take now, the longest waiting first."""
    return list(
        session.scalars(
            select(MessageRow.id)
            .where(due_filter(now))
            .order_by(MessageRow.next_attempt_at)
            .limit(limit)
        )
    )
