"""The audit trail: who did what to which server, with field names only, never values."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from .scope import Caller, Scope
from .store.tables import AuditEvent


def record(
    session: Session,
    caller: Caller,
    scope: Scope,
    action: str,
    *,
    server_id: str | None,
    result: str = "ok",
    changed_fields: Iterable[str] = (),
    detail: str = "",
) -> None:
    session.add(
        AuditEvent(
            actor_user_id=caller.user.id,
            actor_email=caller.user.email,
            organization_id=scope.organization_id,
            workspace_id=scope.workspace_id,
            email_server_id=server_id,
            action=action,
            changed_fields=sorted(changed_fields),
            result=result,
            detail=detail[:1000],
        )
    )


def record_by_service(
    session: Session,
    scope: Scope,
    action: str,
    *,
    server_id: str | None,
    result: str = "ok",
    detail: str = "",
) -> None:
    """What the service did on its own (the worker's health alerts): no actor."""
    session.add(
        AuditEvent(
            actor_user_id=None,
            actor_email=None,
            organization_id=scope.organization_id,
            workspace_id=scope.workspace_id,
            email_server_id=server_id,
            action=action,
            changed_fields=[],
            result=result,
            detail=detail[:1000],
        )
    )
