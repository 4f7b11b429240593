"""Telling a server's admins when its health changes: one email per change, not per check.

An alert goes out on a change to failing, expiring or expired, and back to healthy after one
of those (degraded alone alerts no one: it is one failed check, or a bad hour). An expiring
certificate also gets a reminder at 30, 7 and 1 days before its end. The recipients are the
workspace's Workspace Admins (a workspace's server) or the organization's Admin and IT
Delegates (an organization's server). The email is a notification message (sender
``{"kind": "notification", "event": "account"}``) queued through the messages service, so it
takes the delivery path like any other; it goes through the organization's default server,
or another organization server when the default is the one in trouble, never through the
server it is about. Each alert, sent or not, is an audit event (action ``health_alert``).

Which health was last told is kept on the server's schedule row (``server_check_leases``):
the row is updated on the condition that it still holds what this worker read, so two
workers that see the same change send one email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ...models import MessageIn, MessageSender
from .. import audit_log
from ..context import ServiceContext
from ..scope import SERVER_MANAGERS, Scope
from ..store.tables import (
    EmailServerRow,
    Organization,
    RoleGrant,
    ServerCheckLeaseRow,
    User,
    WorkspaceRow,
)
from .health import CheckSummary, certificate_end, health_by_server
from .messages import MessageService

__all__ = ["ALERTED_STATUSES", "REMINDER_DAYS", "Alert", "alert_on_change"]

log = logging.getLogger(__name__)

#: The health changes worth an email (and "healthy" after one of them).
ALERTED_STATUSES = ("failing", "expiring", "expired")
#: Days before a certificate's end when its admins are reminded.
REMINDER_DAYS = (30, 7, 1)
#: A notification's event; "account" is the one about the workspace's own setup.
ALERT_EVENT = "account"
MAX_RECIPIENTS = 100


@dataclass
class Alert:
    """What was decided for one server; ``message_id`` None when no email could be queued."""

    server_id: str
    status: str
    reason: str
    message_id: str | None
    detail: str


def _due_reminder(not_after: datetime | None, now: datetime) -> int | None:
    if not_after is None or not_after <= now:
        return None
    due = [d for d in REMINDER_DAYS if not_after - now <= timedelta(days=d)]
    return min(due) if due else None


def alert_on_change(ctx: ServiceContext, server_id: str, now: datetime) -> Alert | None:
    """Compare the server's health with what its admins were last told; on a change (or a
    reminder that came due) queue one email and record it. Returns what was done, if
    anything."""
    with ctx.sessions() as session:
        server = session.get(EmailServerRow, server_id)
        lease = session.get(ServerCheckLeaseRow, server_id)
        if server is None or lease is None:
            return None
        health = health_by_server(
            session, {server.id: (server.settings, CheckSummary.of(server))}, [server.id], now
        )
        status, reason = health[server.id]["status"], health[server.id]["reason"]
        told, reminded = lease.alerted_status, lease.reminded_days
        changed = (status in ALERTED_STATUSES and status != told) or (
            status == "healthy" and told in ALERTED_STATUSES
        )
        reminder = _due_reminder(certificate_end(server.settings), now)
        remind = (
            status == "expiring"
            and reminder is not None
            and (reminded is None or reminder < reminded)
        )
        if not changed and not remind:
            return None
        new_reminded = reminder if status == "expiring" else None
        new_told = status if status != "degraded" else told
        taken = session.execute(
            update(ServerCheckLeaseRow)
            .where(
                ServerCheckLeaseRow.email_server_id == server.id,
                ServerCheckLeaseRow.alerted_status.is_(None)
                if told is None
                else ServerCheckLeaseRow.alerted_status == told,
                ServerCheckLeaseRow.reminded_days.is_(None)
                if reminded is None
                else ServerCheckLeaseRow.reminded_days == reminded,
            )
            .values(alerted_status=new_told, alerted_at=now, reminded_days=new_reminded)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()  # another worker told them
            return None
        return _queue_alert(ctx, session, server, status, reason)


def _recipients(session: Session, server: EmailServerRow) -> list[str]:
    if server.workspace_id is not None:
        who = (RoleGrant.role == "workspace_admin") & (
            RoleGrant.workspace_id == server.workspace_id
        )
    else:
        who = RoleGrant.role.in_(SERVER_MANAGERS) & RoleGrant.workspace_id.is_(None)
    emails = session.scalars(
        select(User.email)
        .join(RoleGrant, RoleGrant.user_id == User.id)
        .where(who, RoleGrant.organization_id == server.organization_id)
        .distinct()
        .order_by(User.email)
    )
    return list(emails)[:MAX_RECIPIENTS]


def _sending_server(session: Session, server: EmailServerRow) -> EmailServerRow | None:
    """The organization's default server, or another of its servers: never ``server``."""
    default_id = session.scalar(
        select(Organization.default_server_id).where(Organization.id == server.organization_id)
    )
    if default_id is not None and default_id != server.id:
        default = session.get(EmailServerRow, default_id)
        if default is not None:
            return default
    return session.scalar(
        select(EmailServerRow)
        .where(
            EmailServerRow.organization_id == server.organization_id,
            EmailServerRow.workspace_id.is_(None),
            EmailServerRow.id != server.id,
        )
        .order_by(EmailServerRow.name_key)
        .limit(1)
    )


def _workspace_of(session: Session, server: EmailServerRow) -> WorkspaceRow | None:
    """The workspace the message is filed under: the server's own, or for an organization's
    server the organization's first workspace (a message belongs to a workspace)."""
    if server.workspace_id is not None:
        return session.get(WorkspaceRow, server.workspace_id)
    return session.scalar(
        select(WorkspaceRow)
        .where(WorkspaceRow.organization_id == server.organization_id)
        .order_by(WorkspaceRow.id)
        .limit(1)
    )


def _subject(server: EmailServerRow, status: str) -> str:
    words = {
        "failing": "is failing",
        "expiring": "has a certificate that expires soon",
        "expired": "has an expired certificate",
        "healthy": "is healthy again",
    }
    return f"Email server '{server.name}' {words.get(status, status)}"


def _queue_alert(
    ctx: ServiceContext, session: Session, server: EmailServerRow, status: str, reason: str
) -> Alert:
    scope = Scope(server.organization_id, server.workspace_id, server.name)
    recipients = _recipients(session, server)
    through = _sending_server(session, server)
    workspace = _workspace_of(session, server)
    problem = (
        "no admin to tell"
        if not recipients
        else "no other organization server to send it through"
        if through is None
        else "the organization has no workspace to file the message under"
        if workspace is None
        else ""
    )
    subject = _subject(server, status)
    if problem or through is None or workspace is None:
        detail = f"{subject}: {reason} No alert could be sent: {problem}."
        audit_log.record_by_service(
            session, scope, "health_alert", server_id=server.id, result="failed", detail=detail
        )
        session.commit()
        log.warning("%s", detail)
        return Alert(server.id, status, reason, None, detail)
    text = (
        f"{subject}.\n\n{reason}\n\nHealth: {status}. Server: {server.name} ({server.id}).\n"
        "Open the email servers panel to see its checks and deliveries."
    )
    message = MessageIn(
        sender=MessageSender(kind="notification", event=ALERT_EVENT),
        to=recipients,
        subject=subject,
        text=text,
    )
    detail = f"{subject}: {reason} Sent to {len(recipients)} admin(s) through '{through.name}'."
    audit_log.record_by_service(session, scope, "health_alert", server_id=server.id, detail=detail)
    messages = MessageService(ctx, session, Scope(workspace.organization_id, workspace.id, ""))
    accepted = messages.submit_through(message, through)
    return Alert(server.id, status, reason, accepted.id, detail)
