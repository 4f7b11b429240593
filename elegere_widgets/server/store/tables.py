"""The tables. Times are stored in UTC and always come back time-zone aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets the time zone; give every time back as UTC-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def stored_time(value: str | datetime | None) -> datetime | None:
    """A time read without its column's type (an aggregate's, or a column cast to text) as
    UTC-aware: SQLite gives its stored text, "2026-12-01 16:00:00.000000" in UTC without a
    zone; PostgreSQL a time, or its text "2026-12-01 16:00:00+00", in the session's zone."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Base(DeclarativeBase):
    pass


ROLES = (
    "admin_delegate",
    "users_workspaces_delegate",
    "it_delegate",
    "licenses_billings_delegate",
    "workspace_admin",
)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Sends a workspace's notifications when the workspace names no server of its own.
    default_server_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class WorkspaceRow(Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The workspace's notifications server (own or inherited); unset: the organization's default.
    notifications_server_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)


class RoleGrant(Base):
    """A Delegate role (organization-wide) or Workspace Admin (one workspace)."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role", "scope_key", name="uq_role_grant"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True
    )
    # workspace id, or "org" for organization-wide roles: NULLs are never equal in a unique key.
    scope_key: Mapped[str] = mapped_column(String(40))
    granted_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256. Sign-ins expire; API tokens when made with
    ``--expires-in``. Revoking deletes the row; expired rows are purged."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # "api" | "session"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: A sender token ("sender") may only send and read this workspace's messages.
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)


class EmailServerRow(Base):
    __tablename__ = "email_servers"
    __table_args__ = (UniqueConstraint("scope_key", "name_key", name="uq_server_name"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id"), nullable=True, index=True
    )
    # workspace id, or "org:<id>" for an organization's own server.
    scope_key: Mapped[str] = mapped_column(String(48))
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    secrets_set: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_test: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Where a message goes after this server's second failed attempt (own or inherited).
    fallback_server_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: A pace: more messages per minute defer without counting as a failure (None: no pace).
    max_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Its checks summed up as each is recorded (server_checks.record_check), so that health
    # reads the row rather than the history: when the last one ran and what it said, how many
    # failed in a row up to it, and when the first of those ran.
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_check_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # UPDATE ... WHERE version = <the one read>: a concurrent save makes the flush fail.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


def sender_name_key(name: str) -> str:
    """What makes two names of senders the same name: case does not count."""
    return name.casefold()


class _Sender:
    """A custom action or a scheduler job: a name, unique in its workspace whatever its case
    (the store refuses a second one, so two requests at once cannot both add it), and the
    server it sends through."""

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: ``sender_name_key(name)``, kept by ``_keep_name_key`` whenever the name is set.
    name_key: Mapped[str] = mapped_column(String(200))
    email_server_id: Mapped[str] = mapped_column(ForeignKey("email_servers.id"), index=True)

    @validates("name")
    def _keep_name_key(self, _key: str, name: str) -> str:
        self.name_key = sender_name_key(name)
        return name


class CustomActionRow(_Sender, Base):
    __tablename__ = "custom_actions"
    __table_args__ = (UniqueConstraint("workspace_id", "name_key", name="uq_custom_action_name"),)


class SchedulerJobRow(_Sender, Base):
    __tablename__ = "scheduler_jobs"
    __table_args__ = (UniqueConstraint("workspace_id", "name_key", name="uq_scheduler_job_name"),)


#: A delivery that went wrong and counts for health, as the partial index of such deliveries
#: states it: a planner takes that index only for a query that repeats its condition as is.
GONE_WRONG = "status IN ('failed', 'deferred') AND history = false"


class DeliveryRow(Base):
    """History outlives the server: no foreign key, and the server's name is kept."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_ws_time", "workspace_id", "created_at", "id"),
        # A server's health reads its last 24 hours (services.health).
        Index("ix_deliveries_server_time", "email_server_id", "created_at"),
        # ... but only of the servers with something gone wrong lately: few, and found here.
        Index(
            "ix_deliveries_gone_wrong",
            "email_server_id",
            "created_at",
            sqlite_where=text(GONE_WRONG),
            postgresql_where=text(GONE_WRONG),
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email_server_id: Mapped[str] = mapped_column(String(40))
    email_server_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The message this attempt delivered (None for test sends and the seeded history).
    message_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    #: The stage an attempt ended in ("data" when sent), and the server's reply code.
    stage: Mapped[str | None] = mapped_column(String(30), nullable=True)
    reply_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Rows the demo seed invented, kept apart from real traffic.
    history: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AuditEvent(Base):
    """Who did what to which server, and how it went. Field names only, never values."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_scope_time", "organization_id", "occurred_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    actor_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    organization_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email_server_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    changed_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    result: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")


class SpentReceipt(Base):
    """A test receipt that added its server: the key refuses a second create with it, also
    when two service processes race (the second insert of the id fails)."""

    __tablename__ = "spent_receipts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MessageRow(Base):
    """One message the platform handed over: the store is the record, the queue only a signal.

    ``recipients`` keeps each address's state (``{"addr": {"status", "reply"}}``, status
    pending, sent or failed) so that a retry sends only to those still pending. The body
    (``text``/``html``) is purged after the message is final plus the retention; the row and
    its deliveries stay. A worker leases a message (``lease_owner`` until
    ``lease_expires_at``) before sending; a lease that expires makes it due again.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key", name="uq_message_idempotency"),
        UniqueConstraint("message_id", name="uq_messages_message_id"),
        Index("ix_messages_due", "status", "next_attempt_at"),
        Index("ix_messages_ws_time", "workspace_id", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[str] = mapped_column(String(40))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id"))
    #: "custom_action" | "scheduler_job" | "notification"
    sender_kind: Mapped[str] = mapped_column(String(20))
    #: The custom action's or scheduler job's id, or the notification's event.
    sender_ref: Mapped[str] = mapped_column(String(40))
    #: The server the next attempt goes through (the sender's, later its fallback).
    email_server_id: Mapped[str] = mapped_column(String(40), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: SHA-256 of the canonical request body: the same key with another body is a conflict.
    body_digest: Mapped[str] = mapped_column(String(64))
    #: The RFC 5322 Message-ID, fixed at acceptance so that a retry carries the same one.
    message_id: Mapped[str] = mapped_column(String(300))
    to: Mapped[list[str]] = mapped_column(JSON)
    cc: Mapped[list[str]] = mapped_column(JSON, default=list)
    bcc: Mapped[list[str]] = mapped_column(JSON, default=list)
    reply_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    html: Mapped[str | None] = mapped_column(Text, nullable=True)
    body_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    recipients: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: "queued" | "sending" | "retrying" | "sent" | "failed"
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Failed attempts on the current server: the second sends the message to the fallback.
    server_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ServerCheckRow(Base):
    """One connection test of a stored server: scheduled (the worker) or manual (the API).

    ``detail`` is the test's summary (a stage and the server's reply), never a secret. No
    foreign key: the checks of a deleted server are history like its deliveries.
    """

    __tablename__ = "server_checks"
    __table_args__ = (Index("ix_server_checks_server_time", "email_server_id", "checked_at", "id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email_server_id: Mapped[str] = mapped_column(String(40))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean)
    failed_stage: Mapped[str | None] = mapped_column(String(30), nullable=True)
    elapsed_ms: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(Text, default="")
    #: "scheduled" | "manual"
    source: Mapped[str] = mapped_column(String(20))


class ServerCheckLeaseRow(Base):
    """A server's place in the health schedule, and what its admins were last told.

    A worker checks a server when ``next_check_at`` has come and no other holds it (a
    conditional UPDATE takes ``check_lease_owner`` until ``check_lease_expires_at``). The row
    is made by the first worker that sees the server.
    """

    __tablename__ = "server_check_leases"
    __table_args__ = (Index("ix_server_check_leases_due", "next_check_at"),)
    email_server_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime)
    check_lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    check_lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The health last alerted (failing, expiring, expired, healthy); None: never alerted.
    alerted_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The last expiry reminder sent (30, 7 or 1 days before); None: none since the last renewal.
    reminded_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
