"""Route dependencies: the store session, the caller, and what the caller may touch."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import AuthenticationRequired, NotFound, PermissionDenied
from .context import ServiceContext
from .security import hash_token
from .store.tables import ApiToken, Organization, RoleGrant, User, WorkspaceRow

SERVER_MANAGERS = frozenset({"admin_delegate", "it_delegate"})
ADMIN_GRANTORS = frozenset({"admin_delegate", "users_workspaces_delegate"})


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


#: Methods whose handlers only read the store.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request, ctx: ContextDep) -> Iterator[Session]:
    sessions = ctx.read_sessions if request.method in READ_METHODS else ctx.sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass
class Caller:
    user: User
    grants: list[RoleGrant]

    @property
    def id(self) -> str:
        return self.user.id

    def is_workspace_admin(self, workspace_id: str) -> bool:
        return any(
            g.role == "workspace_admin" and g.workspace_id == workspace_id for g in self.grants
        )

    def has_org_role(self, organization_id: str, roles: frozenset[str]) -> bool:
        return any(
            g.role in roles and g.organization_id == organization_id and g.workspace_id is None
            for g in self.grants
        )


def get_caller(request: Request, session: SessionDep) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "Sign in first: send 'Authorization: Bearer <token>' (a sign-in or an API token)."
        )
    # The token and its user in one statement: every request pays for finding its caller.
    found = session.execute(
        select(ApiToken.expires_at, User)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token.strip()))
    ).first()
    if found is None:
        raise AuthenticationRequired("This token is not valid; sign in again or create a new one.")
    expires_at, user = found
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise AuthenticationRequired("Your sign-in has expired; sign in again.")
    if user is None:
        raise AuthenticationRequired("This token's user no longer exists; sign in again.")
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)))
    return Caller(user=user, grants=grants)


CallerDep = Annotated[Caller, Depends(get_caller)]


@dataclass(frozen=True)
class Scope:
    """Whose email servers a call is about: one workspace (own + inherited) or an organization."""

    organization_id: str
    workspace_id: str | None
    label: str

    @property
    def own_key(self) -> str:
        return self.workspace_id or f"org:{self.organization_id}"


def find_workspace(session: Session, caller: Caller, ws: str) -> WorkspaceRow:
    """The caller's organization's workspace by id, else 404 (other organizations are unknown)."""
    row = session.get(WorkspaceRow, ws)
    if row is None or row.organization_id != caller.user.organization_id:
        raise NotFound(f"There is no workspace '{ws}' in your organization.")
    return row


def workspace_scope(ws: str, caller: CallerDep, session: SessionDep) -> Scope:
    row = find_workspace(session, caller, ws)
    if not caller.is_workspace_admin(row.id):
        raise PermissionDenied(
            f"You need the Workspace Admin right on '{row.name}' to see or manage its email "
            "servers. A Delegate of your organization or a Workspace Admin of this workspace "
            "can grant it."
        )
    return Scope(organization_id=row.organization_id, workspace_id=row.id, label=row.name)


def organization_scope(org: str, caller: CallerDep, session: SessionDep) -> Scope:
    row = session.get(Organization, org)
    if row is None or row.id != caller.user.organization_id:
        raise NotFound(f"There is no organization '{org}' you belong to.")
    if not caller.has_org_role(row.id, SERVER_MANAGERS):
        raise PermissionDenied(
            f"Only the Admin and IT Delegates of '{row.name}' may manage its email servers."
        )
    return Scope(organization_id=row.id, workspace_id=None, label=row.name)


WorkspaceScope = Annotated[Scope, Depends(workspace_scope)]
OrganizationScope = Annotated[Scope, Depends(organization_scope)]
