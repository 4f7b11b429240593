"""People and roles: who the caller is, which workspaces it administers, granting that right."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import models
from ...errors import NotFound, PermissionDenied
from ..scope import ADMIN_GRANTORS, Caller
from ..store.tables import Organization, RoleGrant, User, WorkspaceRow


def find_workspace(session: Session, caller: Caller, ws: str) -> WorkspaceRow:
    """The caller's organization's workspace by id, else 404 (other organizations are unknown)."""
    row = session.get(WorkspaceRow, ws)
    if row is None or row.organization_id != caller.user.organization_id:
        raise NotFound(f"There is no workspace '{ws}' in your organization.")
    return row


@dataclass
class PeopleService:
    session: Session
    caller: Caller

    # ---------------------------------------------------------------- queries

    def me(self) -> models.Me:
        user = self.caller.user
        # One small read per /me: the caller's row holds the organization's id only.
        organization = self.session.scalars(
            select(Organization.name).where(Organization.id == user.organization_id)
        ).one()
        return models.Me(
            id=user.id,
            email=user.email,
            name=user.name,
            organization_id=user.organization_id,
            organization_name=organization,
            roles=[
                models.RoleGrant.model_validate(
                    {
                        "role": g.role,
                        "organization_id": g.organization_id,
                        "workspace_id": g.workspace_id,
                    }
                )
                for g in self.caller.grants
            ],
        )

    def administered_workspaces(self) -> list[models.Workspace]:
        """The workspaces the caller may administer."""
        ids = {g.workspace_id for g in self.caller.grants if g.role == "workspace_admin"}
        rows = self.session.execute(
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

    # ---------------------------------------------------------------- commands

    def grant_admin(self, ws: str, user: str) -> None:
        """Make ``user`` (id or email) a Workspace Admin of ``ws``; nothing when it is one."""
        ws_id, user_id = self._grant_target(ws, user)
        if self._admin_grant(ws_id, user_id) is None:
            self.session.add(
                RoleGrant(
                    user_id=user_id,
                    role="workspace_admin",
                    organization_id=self.caller.user.organization_id,
                    workspace_id=ws_id,
                    scope_key=ws_id,
                    granted_by=self.caller.id,
                )
            )
            self.session.commit()

    def revoke_admin(self, ws: str, user: str) -> None:
        ws_id, user_id = self._grant_target(ws, user)
        grant = self._admin_grant(ws_id, user_id)
        if grant is not None:
            self.session.delete(grant)
            self.session.commit()

    def _grant_target(self, ws: str, user: str) -> tuple[str, str]:
        caller = self.caller
        workspace = find_workspace(self.session, caller, ws)
        if not (
            caller.is_workspace_admin(workspace.id)
            or caller.has_org_role(workspace.organization_id, ADMIN_GRANTORS)
        ):
            raise PermissionDenied(
                f"Only a Workspace Admin of '{workspace.name}', or an Admin or Users & "
                "Workspaces Delegate, may grant or revoke Workspace Admin."
            )
        column = User.email if "@" in user else User.id
        target = self.session.scalar(
            select(User).where(column == user, User.organization_id == workspace.organization_id)
        )
        if target is None:
            raise NotFound(f"There is no user '{user}' in your organization.")
        return workspace.id, target.id

    def _admin_grant(self, ws_id: str, user_id: str) -> RoleGrant | None:
        return self.session.scalar(
            select(RoleGrant).where(
                RoleGrant.user_id == user_id,
                RoleGrant.role == "workspace_admin",
                RoleGrant.workspace_id == ws_id,
            )
        )
