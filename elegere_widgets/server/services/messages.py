"""Messages the platform hands over: accepted into the store, read back with their attempts.

The store is the record of every message: a message is written with status ``queued`` in the
request's transaction, its ``Message-ID`` fixed then, and a worker (``server/worker``) is
signalled after the commit. A lost signal costs only time (the worker's sweep finds it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...errors import IdempotencyKeyReused, InvalidSettings, NotFound, PayloadTooLarge
from ...models import FieldError, Page
from ...models.messages import (
    Attempt,
    Message,
    MessageAccepted,
    MessageIn,
    MessageSender,
    MessageSummary,
    RecipientState,
)
from ..context import ServiceContext
from ..scope import Scope
from ..security import new_id
from ..store.tables import (
    CustomActionRow,
    DeliveryRow,
    EmailServerRow,
    MessageRow,
    Organization,
    SchedulerJobRow,
    WorkspaceRow,
    sender_name_key,
)
from .paging import decode_cursor, encode_cursor, zoned

#: What a message's status may be; the list filters by these.
STATUSES = ("queued", "sending", "retrying", "sent", "failed")
FINAL_STATUSES = ("sent", "failed")
#: The domain of a Message-ID when the server's sender address gives none usable.
FALLBACK_MSGID_DOMAIN = "elegere.invalid"


def _now() -> datetime:
    return datetime.now(UTC)


def body_digest(message: MessageIn) -> str:
    """SHA-256 of the message's canonical JSON: what a repeat must match."""
    canonical = json.dumps(message.to_wire(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def message_id_domain(server: EmailServerRow) -> str:
    """The domain of the server's sender address (SMTP) or mailbox (Graph), as IDNA."""
    address = str(server.settings.get("sender_address") or server.settings.get("account") or "")
    domain = address.rpartition("@")[2].strip().rstrip(".")
    if not domain:
        return FALLBACK_MSGID_DOMAIN
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return FALLBACK_MSGID_DOMAIN


def accepted(row: MessageRow) -> MessageAccepted:
    return MessageAccepted(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        email_server_id=row.email_server_id,
        message_id=row.message_id,
    )


def _sender(row: MessageRow) -> MessageSender:
    if row.sender_kind == "notification":
        return MessageSender(kind=row.sender_kind, event=row.sender_ref)
    return MessageSender(kind=row.sender_kind, id=row.sender_ref)


def _summary_fields(row: MessageRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "sender": _sender(row),
        "to": row.to,
        "cc": row.cc,
        "bcc": row.bcc,
        "reply_to": row.reply_to,
        "subject": row.subject,
        "message_id": row.message_id,
        "email_server_id": row.email_server_id,
        "recipients": {a: RecipientState.model_validate(s) for a, s in row.recipients.items()},
        "next_attempt_at": row.next_attempt_at,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "last_reply": row.last_reply,
        "body_purged": row.body_purged_at is not None,
    }


def purge_message_bodies(session: Session, now: datetime, retention: timedelta) -> int:
    """Drop the bodies of messages final for longer than ``retention``; the rows stay.

    Returns how many were purged. The caller commits (the worker calls this periodically,
    with ``timedelta(days=settings.message_retention_days)``).
    """
    result = session.execute(
        update(MessageRow)
        .where(
            MessageRow.status.in_(FINAL_STATUSES),
            MessageRow.finished_at.is_not(None),
            MessageRow.finished_at <= now - retention,
            MessageRow.body_purged_at.is_(None),
        )
        .values(text=None, html=None, body_purged_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def move_queued_messages(session: Session, server_id: str, replacement_id: str | None) -> int:
    """Messages not yet final on a deleted server: to the replacement, else failed."""
    pending = (
        update(MessageRow)
        .where(MessageRow.email_server_id == server_id, MessageRow.status.not_in(FINAL_STATUSES))
        .execution_options(synchronize_session=False)
    )
    if replacement_id is not None:
        result = session.execute(pending.values(email_server_id=replacement_id))
    else:
        now = _now()
        result = session.execute(
            pending.values(
                status="failed",
                finished_at=now,
                updated_at=now,
                next_attempt_at=None,
                last_reply="The email server was deleted before the message could be sent.",
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class _Prepared:
    message: MessageIn
    digest: str
    label: str  # "" for a single message, "Message 3: " in a batch


@dataclass
class MessageService:
    """The messages of one workspace, as a Workspace Admin or a sender token sees them."""

    ctx: ServiceContext
    session: Session
    scope: Scope
    #: (kind, name key) -> id of the workspace's senders, as looked up by this request.
    _names: dict[tuple[str, str], str] = field(default_factory=dict, init=False, repr=False)

    @property
    def _workspace_id(self) -> str:
        if self.scope.workspace_id is None:  # a wiring bug: messages belong to a workspace
            raise RuntimeError("messages need a workspace scope")
        return self.scope.workspace_id

    # ---------------------------------------------------------------- accept

    def submit(self, messages: Sequence[MessageIn]) -> tuple[list[MessageAccepted], bool]:
        """Accept the messages in one transaction, in order; also whether any is new.

        A message whose idempotency key the workspace used already, with the same body, is
        answered with the first one; with another body the whole request is refused (409).
        """
        prepared = [self._prepare(m, i, len(messages)) for i, m in enumerate(messages)]
        try:
            answers, new_ids = self._write(prepared)
        except IntegrityError:
            # Another request took one of the keys between our read and our commit: read
            # again, and its message is the answer (or the conflict).
            self.session.rollback()
            answers, new_ids = self._write(prepared)
        self.ctx.queue.signal(new_ids)
        return answers, bool(new_ids)

    def submit_through(self, message: MessageIn, server: EmailServerRow) -> MessageAccepted:
        """Accept one message for ``server``, chosen by the service rather than by the
        sender's routing (a health alert must not go through the failing server). Commits
        what the session holds with it, then signals a worker."""
        row = self._row(self._prepare(message, 0, 1), server, _now())
        self.session.add(row)
        self.session.commit()
        self.ctx.queue.signal([row.id])
        return accepted(row)

    def _prepare(self, message: MessageIn, index: int, count: int) -> _Prepared:
        label = f"Message {index + 1}: " if count > 1 else ""
        if message.sender.name is not None:
            # Kept, and compared for a repeat, by the id: by name or by id, it is one message.
            sender = self._named_sender(message.sender, label)
            message = message.model_copy(update={"sender": sender})
        size, limit = message.body_bytes(), self.ctx.settings.max_message_bytes
        if size > limit:
            raise PayloadTooLarge(
                f"{label}the subject and body are {size:,} bytes; the limit is {limit:,} bytes "
                "(ELEGERE_MAX_MESSAGE_BYTES). Send a shorter body, or a link to the content."
            )
        return _Prepared(message, body_digest(message), label)

    def _write(self, prepared: Sequence[_Prepared]) -> tuple[list[MessageAccepted], list[str]]:
        ws = self._workspace_id
        keys = {p.message.idempotency_key for p in prepared if p.message.idempotency_key}
        known: dict[str, MessageRow] = {}
        if keys:
            rows = self.session.scalars(
                select(MessageRow).where(
                    MessageRow.workspace_id == ws, MessageRow.idempotency_key.in_(keys)
                )
            )
            known = {r.idempotency_key: r for r in rows if r.idempotency_key}
        servers: dict[tuple[str, str], EmailServerRow] = {}
        answers: list[MessageAccepted] = []
        new_ids: list[str] = []
        now = _now()
        for index, p in enumerate(prepared):
            key = p.message.idempotency_key
            earlier = known.get(key) if key else None
            if earlier is not None:
                if earlier.body_digest != p.digest:
                    raise IdempotencyKeyReused(
                        f"{p.label}the idempotency key {key!r} was used for another message in "
                        f"{self.scope.label} ({earlier.id}); use a new key for a new message, "
                        "or send exactly the same message to get the first answer again."
                    )
                answers.append(accepted(earlier))
                continue
            sender = p.message.sender
            server = servers.get((sender.kind, sender.ref))
            if server is None:
                server = servers[(sender.kind, sender.ref)] = self._server_of(sender, p.label)
            # A microsecond apart: the list (by created_at, id) keeps a batch in its order.
            row = self._row(p, server, now + timedelta(microseconds=index))
            self.session.add(row)
            if key:
                known[key] = row  # the same key twice in one batch: the first is the answer
            answers.append(accepted(row))
            new_ids.append(row.id)
        self.session.commit()
        return answers, new_ids

    def _row(self, p: _Prepared, server: EmailServerRow, now: datetime) -> MessageRow:
        m = p.message
        return MessageRow(
            id=new_id("msg"),
            organization_id=self.scope.organization_id,
            workspace_id=self._workspace_id,
            sender_kind=m.sender.kind,
            sender_ref=m.sender.ref,
            email_server_id=server.id,
            idempotency_key=m.idempotency_key,
            body_digest=p.digest,
            message_id=make_msgid(domain=message_id_domain(server)),
            to=m.to,
            cc=m.cc,
            bcc=m.bcc,
            reply_to=m.reply_to,
            subject=m.subject,
            text=m.text,
            html=m.html,
            recipients={a: {"status": "pending", "reply": None} for a in m.recipient_addresses()},
            status="queued",
            attempts=0,
            server_failures=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )

    def _named_sender(self, sender: MessageSender, label: str) -> MessageSender:
        """The custom action or job that ``sender.name`` names in the workspace, by its id;
        else 422 on ``sender`` listing the names there are."""
        name = sender.name or ""
        found = self._names.get((sender.kind, sender_name_key(name)))
        if found is None:
            model = CustomActionRow if sender.kind == "custom_action" else SchedulerJobRow
            rows = self.session.execute(
                select(model.id, model.name, model.name_key)
                .where(model.workspace_id == self._workspace_id)
                .order_by(model.name_key)
            ).all()
            self._names.update({(sender.kind, key): ident for ident, _, key in rows})
            found = self._names.get((sender.kind, sender_name_key(name)))
            if found is None:
                what = sender.kind.replace("_", " ")
                names = ", ".join(repr(n) for _, n, _ in rows[:20]) or "none yet"
                raise InvalidSettings(
                    field_errors=[
                        FieldError(
                            field="sender",
                            message=f"{label}there is no {what} named {name!r} in "
                            f"{self.scope.label}; its {what}s: {names}.",
                        )
                    ]
                )
        return MessageSender(kind=sender.kind, id=found)

    def _server_of(self, sender: MessageSender, label: str) -> EmailServerRow:
        """The server the sender sends through, or 422 on ``sender`` saying what to set."""
        ws = self._workspace_id

        def refuse(message: str) -> InvalidSettings:
            return InvalidSettings(
                field_errors=[FieldError(field="sender", message=label + message)]
            )

        server_id: str | None
        if sender.kind == "notification":
            workspace = self.session.get(WorkspaceRow, ws)
            organization = self.session.get(Organization, self.scope.organization_id)
            server_id = (workspace.notifications_server_id if workspace else None) or (
                organization.default_server_id if organization else None
            )
            if server_id is None:
                raise refuse(
                    f"no server sends {self.scope.label}'s notifications: set the workspace's "
                    "notifications server (PATCH …/mail-settings) or the organization's default "
                    "server."
                )
        else:
            model = CustomActionRow if sender.kind == "custom_action" else SchedulerJobRow
            what = sender.kind.replace("_", " ")
            server_id = self.session.scalar(
                select(model.email_server_id).where(model.id == sender.id, model.workspace_id == ws)
            )
            if server_id is None:
                raise refuse(
                    f"there is no {what} '{sender.id}' in {self.scope.label}; use the id of one "
                    f"of its {what}s (GET …/{sender.kind.replace('_', '-')}s)."
                )
        server = self.session.get(EmailServerRow, server_id)
        if server is None:
            raise refuse(
                f"the server '{server_id}' this sender names no longer exists; choose another."
            )
        return server

    # ---------------------------------------------------------------- read

    def get(self, message_id: str) -> Message:
        row = self.session.scalar(
            select(MessageRow).where(
                MessageRow.id == message_id, MessageRow.workspace_id == self._workspace_id
            )
        )
        if row is None:
            raise NotFound(f"There is no message '{message_id}' in {self.scope.label}.")
        deliveries = self.session.scalars(
            select(DeliveryRow)
            .where(DeliveryRow.message_id == row.id)
            .order_by(DeliveryRow.created_at, DeliveryRow.id)
        )
        attempts = [
            Attempt(
                at=d.created_at,
                email_server_id=d.email_server_id,
                email_server_name=d.email_server_name,
                outcome=d.status,
                stage=d.stage,
                reply_code=d.reply_code,
                reply=d.error,
            )
            for d in deliveries
        ]
        return Message(**_summary_fields(row), attempts=attempts)

    def page(
        self,
        *,
        status: str | None,
        since: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[MessageSummary]:
        """The workspace's messages, oldest first, paginated by cursor like the deliveries."""
        zoned("since", since)
        query = select(MessageRow).where(MessageRow.workspace_id == self._workspace_id)
        if status:
            if status not in STATUSES:
                raise InvalidSettings(
                    field_errors=[
                        FieldError(
                            field="status", message=f"Status must be one of: {', '.join(STATUSES)}."
                        )
                    ]
                )
            query = query.where(MessageRow.status == status)
        if since:
            query = query.where(MessageRow.created_at >= since)
        if cursor:
            query = query.where(
                tuple_(MessageRow.created_at, MessageRow.id) > decode_cursor(cursor)
            )
        rows = list(
            self.session.scalars(
                query.order_by(MessageRow.created_at, MessageRow.id).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[MessageSummary](
            items=[MessageSummary(**_summary_fields(r)) for r in rows],
            next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        )
