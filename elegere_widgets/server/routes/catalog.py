"""What sends mail in a workspace (read-only) and what was sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ... import models
from ..deps import CatalogDep

router = APIRouter(prefix="/workspaces/{ws}", tags=["workspace"])

MAX_PAGE = 5000


@router.get("/custom-actions", response_model=list[models.CustomAction])
def custom_actions(catalog: CatalogDep) -> list[models.CustomAction]:
    return catalog.custom_actions()


@router.get("/scheduler-jobs", response_model=list[models.SchedulerJob])
def scheduler_jobs(catalog: CatalogDep) -> list[models.SchedulerJob]:
    return catalog.scheduler_jobs()


@router.get("/deliveries", response_model=models.Page[models.Delivery])
def deliveries(
    catalog: CatalogDep,
    server_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> models.Page[models.Delivery]:
    """Deliveries through the workspace's servers, oldest first, paginated by cursor."""
    return catalog.deliveries(
        server_id=server_id, since=since, until=until, cursor=cursor, limit=limit
    )


@router.get("/audit-events", response_model=models.Page[models.AuditEvent])
def audit_events(
    catalog: CatalogDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> models.Page[models.AuditEvent]:
    """Changes, tests and test sends of the workspace's servers, newest first."""
    return catalog.audit_events(cursor=cursor, limit=limit)
