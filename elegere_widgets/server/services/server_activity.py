"""What one stored server did and what was done to it: its deliveries of a period, counted by
outcome, and its audit trail. The details view of the panel reads these; the caller has
checked that the scope can see the server.

A workspace sees only its own traffic through a server (an inherited one carries the other
workspaces' mail too) and, of the trail, its own events and the Organization's changes of an
inherited server; an organization sees everything about its servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from ...models import AuditEvent, Delivery, DeliverySummary, Page
from ..scope import Scope
from ..store.tables import AuditEvent as AuditEventRow
from ..store.tables import DeliveryRow
from .paging import bad_cursor, zoned

__all__ = ["audit_page", "audit_page_where", "delivery_summary"]

#: How the summary counts each stored status (Graph's "accepted" is its "sent"; the seeded
#: history's "bounced" is a failure found later).
_BUCKETS = {
    "sent": "sent",
    "accepted": "sent",
    "deferred": "deferred",
    "failed": "failed",
    "bounced": "failed",
}
_NOT_DELIVERED = ("deferred", "failed", "bounced")


def _deliveries_of(scope: Scope, server_id: str, since: datetime) -> list[ColumnElement[bool]]:
    clauses = [DeliveryRow.email_server_id == server_id, DeliveryRow.created_at >= since]
    if scope.workspace_id is not None:
        clauses.append(DeliveryRow.workspace_id == scope.workspace_id)
    return clauses


def delivery_summary(
    session: Session, scope: Scope, server_id: str, *, since: datetime, failures: int
) -> DeliverySummary:
    """Counts by outcome since ``since`` (one aggregate), and the latest ``failures``
    deliveries that were deferred or failed, newest first."""
    zoned("since", since)
    where = _deliveries_of(scope, server_id, since)
    counts = {"sent": 0, "deferred": 0, "failed": 0}
    rows = session.execute(
        select(DeliveryRow.status, func.count()).where(*where).group_by(DeliveryRow.status)
    )
    for status, n in rows:
        bucket = _BUCKETS.get(status)
        if bucket is not None:
            counts[bucket] += n
    latest = session.scalars(
        select(DeliveryRow)
        .where(*where, DeliveryRow.status.in_(_NOT_DELIVERED))
        .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc())
        .limit(failures)
    )
    return DeliverySummary(
        since=since,
        **counts,
        last_failures=[Delivery.model_validate(r, from_attributes=True) for r in latest],
    )


def _trail_of(scope: Scope, server_id: str) -> list[ColumnElement[bool]]:
    clauses = [
        AuditEventRow.email_server_id == server_id,
        AuditEventRow.organization_id == scope.organization_id,
    ]
    if scope.workspace_id is not None:
        # Its own events, and the Organization's (an inherited server's changes); never
        # another workspace's test sends through an inherited server.
        clauses.append(
            or_(
                AuditEventRow.workspace_id == scope.workspace_id,
                AuditEventRow.workspace_id.is_(None),
            )
        )
    return clauses


def audit_page(
    session: Session, scope: Scope, server_id: str, *, cursor: str | None, limit: int
) -> Page[AuditEvent]:
    """The server's audit events, newest first."""
    return audit_page_where(session, _trail_of(scope, server_id), cursor=cursor, limit=limit)


def audit_page_where(
    session: Session,
    clauses: Sequence[ColumnElement[bool]],
    *,
    cursor: str | None,
    limit: int,
) -> Page[AuditEvent]:
    """The audit events that match, newest first; the cursor is the last id seen."""
    query = select(AuditEventRow).where(*clauses)
    if cursor:
        if not cursor.isdigit():
            raise bad_cursor()
        query = query.where(AuditEventRow.id < int(cursor))
    rows = list(session.scalars(query.order_by(AuditEventRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[AuditEvent](
        items=[AuditEvent.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=str(rows[-1].id) if more else None,
    )
