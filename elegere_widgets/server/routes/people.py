"""Who the caller is, which workspaces it administers, and granting that right."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from ... import models
from ...errors import NotFound, PermissionDenied
from ..deps import ADMIN_GRANTORS, CallerDep, SessionDep, find_workspace
from ..store.tables import Organization, RoleGrant, User, WorkspaceRow

router = APIRouter(tags=["people"])


@router.get("/me", response_model=models.Me)
def me(caller: CallerDep) -> models.Me:
    return models.Me(
        id=caller.user.id,
        email=caller.user.email,
        name=caller.user.name,
        organization_id=caller.user.organization_id,
        roles=[
            models.RoleGrant(
                role=g.role,  # type: ignore[arg-type]
                organization_id=g.organization_id,
                workspace_id=g.workspace_id,
            )
            for g in caller.grants
        ],
    )


@router.get("/workspaces", response_model=list[models.Workspace])
def workspaces(caller: CallerDep, session: SessionDep) -> list[models.Workspace]:
    """The workspaces the caller may administer."""
    ids = {g.workspace_id for g in caller.grants if g.role == "workspace_admin"}
    rows = session.execute(
        select(WorkspaceRow, Organization.name)
        .join(Organization, Organization.id == WorkspaceRow.organization_id)
        .where(WorkspaceRow.id.in_(ids))
        .order_by(WorkspaceRow.name)
    )
    return [
        models.Workspace(
            id=ws.id, name=ws.name, organization_id=ws.organization_id, organization_name=org
        )
        for ws, org in rows
    ]


def _grant_target(session: SessionDep, caller: CallerDep, ws: str, user: str) -> tuple[str, str]:
    workspace = find_workspace(session, caller, ws)
    if not (
        caller.is_workspace_admin(workspace.id)
        or caller.has_org_role(workspace.organization_id, ADMIN_GRANTORS)
    ):
        raise PermissionDenied(
            f"Only a Workspace Admin of '{workspace.name}', or an Admin or Users & Workspaces "
            "Delegate, may grant or revoke Workspace Admin."
        )
    column = User.email if "@" in user else User.id
    target = session.scalar(
        select(User).where(column == user, User.organization_id == workspace.organization_id)
    )
    if target is None:
        raise NotFound(f"There is no user '{user}' in your organization.")
    return workspace.id, target.id


def _admin_grant(session: SessionDep, ws_id: str, user_id: str) -> RoleGrant | None:
    return session.scalar(
        select(RoleGrant).where(
            RoleGrant.user_id == user_id,
            RoleGrant.role == "workspace_admin",
            RoleGrant.workspace_id == ws_id,
        )
    )


@router.put("/workspaces/{ws}/admins/{user}", status_code=status.HTTP_204_NO_CONTENT)
def grant_admin(ws: str, user: str, caller: CallerDep, session: SessionDep) -> Response:
    ws_id, user_id = _grant_target(session, caller, ws, user)
    if _admin_grant(session, ws_id, user_id) is None:
        session.add(
            RoleGrant(
                user_id=user_id,
                role="workspace_admin",
                organization_id=caller.user.organization_id,
                workspace_id=ws_id,
                scope_key=ws_id,
                granted_by=caller.id,
            )
        )
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/workspaces/{ws}/admins/{user}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_admin(ws: str, user: str, caller: CallerDep, session: SessionDep) -> Response:
    ws_id, user_id = _grant_target(session, caller, ws, user)
    grant = _admin_grant(session, ws_id, user_id)
    if grant is not None:
        session.delete(grant)
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
