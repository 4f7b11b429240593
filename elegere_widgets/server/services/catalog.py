"""What sends mail in a workspace (read-only) and what was sent: reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from ... import models
from ..scope import Scope
from ..store.tables import AuditEvent as AuditEventRow
from ..store.tables import CustomActionRow, DeliveryRow, SchedulerJobRow
from .paging import decode_cursor, encode_cursor, zoned
from .server_activity import audit_page_where


def deliveries_filter(
    scope: Scope, server_id: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """The WHERE clauses shared by the JSON pages and the CSV export (``routes/exports.py``).

    ``since`` is inclusive, ``until`` exclusive. A time without a zone is refused (422 on that
    field): the store compares instants, and whose local time it meant cannot be guessed.
    """
    zoned("since", since)
    zoned("until", until)
    clauses: list[ColumnElement[bool]] = [DeliveryRow.workspace_id == scope.workspace_id]
    if server_id:
        clauses.append(DeliveryRow.email_server_id == server_id)
    if since:
        clauses.append(DeliveryRow.created_at >= since)
    if until:
        clauses.append(DeliveryRow.created_at < until)
    return clauses


@dataclass
class CatalogQueries:
    """A workspace's custom actions, scheduler jobs, deliveries and audit trail."""

    session: Session
    scope: Scope

    def custom_actions(self) -> list[models.CustomAction]:
        rows = self.session.scalars(
            select(CustomActionRow)
            .where(CustomActionRow.workspace_id == self.scope.workspace_id)
            .order_by(CustomActionRow.name)
        )
        return [models.CustomAction.model_validate(r, from_attributes=True) for r in rows]

    def scheduler_jobs(self) -> list[models.SchedulerJob]:
        rows = self.session.scalars(
            select(SchedulerJobRow)
            .where(SchedulerJobRow.workspace_id == self.scope.workspace_id)
            .order_by(SchedulerJobRow.name)
        )
        return [models.SchedulerJob.model_validate(r, from_attributes=True) for r in rows]

    def deliveries(
        self,
        *,
        server_id: str | None,
        since: datetime | None,
        until: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> models.Page[models.Delivery]:
        """Deliveries through the workspace's servers, oldest first, paginated by cursor."""
        query = select(DeliveryRow).where(*deliveries_filter(self.scope, server_id, since, until))
        if cursor:
            at, ident = decode_cursor(cursor)
            # A row value, as in the CSV export: SQLite seeks the index only for this form.
            query = query.where(tuple_(DeliveryRow.created_at, DeliveryRow.id) > (at, ident))
        rows = list(
            self.session.scalars(
                query.order_by(DeliveryRow.created_at, DeliveryRow.id).limit(limit + 1)
            )
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return models.Page[models.Delivery](
            items=[models.Delivery.model_validate(r, from_attributes=True) for r in rows],
            next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        )

    def audit_events(self, *, cursor: str | None, limit: int) -> models.Page[models.AuditEvent]:
        """Changes, tests and test sends of the workspace's servers, newest first."""
        where = [AuditEventRow.workspace_id == self.scope.workspace_id]
        return audit_page_where(self.session, where, cursor=cursor, limit=limit)
