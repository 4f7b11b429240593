"""Route dependencies: the store session, the caller, the scope, and the services built
from them. The values themselves (``Caller``, ``Scope``) live in ``scope.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import (
    AuthenticationRequired,
    BadRequest,
    NotFound,
    PermissionDenied,
    VersionRequired,
)
from .context import ServiceContext
from .scope import ADMIN_GRANTORS, SERVER_MANAGERS, Caller, Scope
from .security import hash_token
from .services.catalog import CatalogQueries
from .services.certificate_rollover import CertificateRollover
from .services.email_servers import EmailServerService
from .services.messages import MessageService
from .services.people import PeopleService, find_workspace
from .services.senders import OrganizationMailService, SenderService
from .store.tables import ApiToken, Organization, RoleGrant, User, WorkspaceRow
from .tokens import SENDER as SENDER_TOKEN

__all__ = [
    "ADMIN_GRANTORS",
    "SERVER_MANAGERS",
    "Caller",
    "CallerDep",
    "CatalogDep",
    "ContextDep",
    "EmailServersDep",
    "MessagesDep",
    "OrganizationMailDep",
    "OrganizationScope",
    "PeopleDep",
    "Scope",
    "SendersDep",
    "SessionDep",
    "WorkspaceScope",
]


# Dependencies that only compute are coroutines: FastAPI runs each plain one in the thread pool,
# a hand-off of a few tenths of a millisecond; a listing's request had ten of them. Those that
# read the store stay plain functions, so the event loop never waits on the database.


async def get_context(request: Request) -> ServiceContext:
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


@contextmanager
def _looking_up(request: Request, ctx: ServiceContext, session: Session) -> Iterator[Session]:
    """Where a dependency looks up who calls, and on what: the request's own session, except
    for a write request on SQLite, which looks up in a read session of its own, closed at once.
    Its session then begins its transaction (takes SQLite's write lock) with its command's
    first statement, not with the token's lookup, so the lock is not held through the
    authentication and the other dependencies. PostgreSQL takes no lock to begin, and a session
    of its own would cost each lookup a pool checkout with its ping, a BEGIN and a ROLLBACK."""
    if request.method in READ_METHODS or ctx.engine.dialect.name != "sqlite":
        yield session
        return
    with ctx.read_sessions() as own:
        yield own


def _identify(request: Request, ctx: ContextDep, session: SessionDep) -> Caller:
    """Whoever the bearer token is: a user with its roles, or a sender token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "Sign in first: send 'Authorization: Bearer <token>' (a sign-in or an API token)."
        )
    with _looking_up(request, ctx, session) as lookup:
        return _caller(lookup, token.strip())


def _caller(session: Session, token: str) -> Caller:
    # The token and its user in one statement: every request pays for finding its caller.
    found = session.execute(
        select(ApiToken.expires_at, ApiToken.kind, ApiToken.workspace_id, User)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if found is None:
        raise AuthenticationRequired("This token is not valid; sign in again or create a new one.")
    expires_at, kind, token_workspace, user = found
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise AuthenticationRequired("Your sign-in has expired; sign in again.")
    if user is None:
        raise AuthenticationRequired("This token's user no longer exists; sign in again.")
    if kind == SENDER_TOKEN:
        # Only what the token was made for: none of its user's roles come with it.
        return Caller(user=user, grants=[], sender_workspace_id=token_workspace or "")
    grants = list(session.scalars(select(RoleGrant).where(RoleGrant.user_id == user.id)))
    return Caller(user=user, grants=grants)


async def get_caller(caller: Annotated[Caller, Depends(_identify)]) -> Caller:
    """The caller of every route but the messages': a sender token is refused here, so a
    new route cannot forget to refuse it (only ``get_sender_or_caller`` lets one in)."""
    if caller.sender_workspace_id is not None:
        raise PermissionDenied(
            "This is a sender token: it may only send and read its workspace's messages "
            "(POST/GET /workspaces/{ws}/messages). Use a user's token or sign in for anything "
            "else."
        )
    return caller


async def get_sender_or_caller(caller: Annotated[Caller, Depends(_identify)]) -> Caller:
    """The caller of the messages' routes, where a sender token is allowed."""
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
SenderOrCallerDep = Annotated[Caller, Depends(get_sender_or_caller)]


def workspace_scope(
    request: Request, ws: str, ctx: ContextDep, caller: CallerDep, session: SessionDep
) -> Scope:
    with _looking_up(request, ctx, session) as lookup:
        row = find_workspace(lookup, caller, ws)
    if not caller.is_workspace_admin(row.id):
        raise PermissionDenied(
            f"You need the Workspace Admin right on '{row.name}' to see or manage its email "
            "servers. A Delegate of your organization or a Workspace Admin of this workspace "
            "can grant it."
        )
    return Scope(organization_id=row.organization_id, workspace_id=row.id, label=row.name)


def organization_scope(
    request: Request, org: str, ctx: ContextDep, caller: CallerDep, session: SessionDep
) -> Scope:
    with _looking_up(request, ctx, session) as lookup:
        row = lookup.get(Organization, org)
    if row is None or row.id != caller.user.organization_id:
        raise NotFound(f"There is no organization '{org}' you belong to.")
    if not caller.has_org_role(row.id, SERVER_MANAGERS):
        raise PermissionDenied(
            f"Only the Admin and IT Delegates of '{row.name}' may manage its email servers."
        )
    return Scope(organization_id=row.id, workspace_id=None, label=row.name)


WorkspaceScope = Annotated[Scope, Depends(workspace_scope)]
OrganizationScope = Annotated[Scope, Depends(organization_scope)]


# A router mounted under several prefixes gets its scope from the mount: the mount's
# dependency (which declares the path parameter, `ws` or `org`) sets it, the routes read it.
_MOUNTED_SCOPE = "elegere_scope"


async def enter_workspace(request: Request, scope: WorkspaceScope) -> None:
    """Mount dependency: the routes below `/workspaces/{ws}` act on that workspace."""
    setattr(request.state, _MOUNTED_SCOPE, scope)


async def enter_organization(request: Request, scope: OrganizationScope) -> None:
    """Mount dependency: the routes below `/organizations/{org}` act on that organization."""
    setattr(request.state, _MOUNTED_SCOPE, scope)


async def mounted_scope(request: Request) -> Scope:
    scope: Scope | None = getattr(request.state, _MOUNTED_SCOPE, None)
    if scope is None:  # a mount without enter_workspace / enter_organization: a wiring bug
        raise RuntimeError("this router must be mounted with a scope dependency")
    return scope


MountedScope = Annotated[Scope, Depends(mounted_scope)]


async def email_servers(
    ctx: ContextDep, session: SessionDep, caller: CallerDep, scope: MountedScope
) -> EmailServerService:
    return EmailServerService(ctx, session, scope, caller)


EmailServersDep = Annotated[EmailServerService, Depends(email_servers)]


async def certificate_rollover(servers: EmailServersDep) -> CertificateRollover:
    return CertificateRollover(servers)


RolloverDep = Annotated[CertificateRollover, Depends(certificate_rollover)]


async def people(session: SessionDep, caller: CallerDep) -> PeopleService:
    return PeopleService(session, caller)


PeopleDep = Annotated[PeopleService, Depends(people)]


async def catalog(session: SessionDep, scope: WorkspaceScope) -> CatalogQueries:
    return CatalogQueries(session, scope)


CatalogDep = Annotated[CatalogQueries, Depends(catalog)]


async def senders(session: SessionDep, scope: WorkspaceScope) -> SenderService:
    return SenderService(session, scope)


SendersDep = Annotated[SenderService, Depends(senders)]


async def organization_mail(
    session: SessionDep, scope: OrganizationScope
) -> OrganizationMailService:
    return OrganizationMailService(session, scope)


OrganizationMailDep = Annotated[OrganizationMailService, Depends(organization_mail)]


def messages(
    request: Request, ws: str, ctx: ContextDep, session: SessionDep, caller: SenderOrCallerDep
) -> MessageService:
    with _looking_up(request, ctx, session) as lookup:
        row = _messages_workspace(lookup, caller, ws)
    scope = Scope(organization_id=row.organization_id, workspace_id=row.id, label=row.name)
    return MessageService(ctx, session, scope)


def _messages_workspace(session: Session, caller: Caller, ws: str) -> WorkspaceRow:
    if caller.sender_workspace_id is not None:
        # Its one workspace, named by id or by name (a sender token cannot look either up).
        row = session.get(WorkspaceRow, caller.sender_workspace_id)
        named = row is not None and (ws == row.id or ws.casefold() == row.name.casefold())
        if row is None or not named:
            own = f"{row.name} ({row.id})" if row else f"'{caller.sender_workspace_id}'"
            raise PermissionDenied(
                f"This sender token may only send and read the messages of its own workspace, "
                f"{own}; make a sender token for '{ws}' to send there."
            )
    else:
        row = find_workspace(session, caller, ws)
        if not caller.is_workspace_admin(row.id):
            raise PermissionDenied(
                f"You need the Workspace Admin right on '{row.name}', or a sender token of it, "
                "to send or read its messages."
            )
    return row


MessagesDep = Annotated[MessageService, Depends(messages)]


def expected_version(if_match: str | None) -> int:
    """The version an update changes, from `If-Match: "<version>"`.

    Called by the route after its body was validated, so a bad body is still a 422 first.
    """
    if if_match is None or not if_match.strip():
        raise VersionRequired(
            "Send the version you are changing in an If-Match header (the ETag of the server, "
            'e.g. If-Match: "3"), so that nobody else\'s change is overwritten.'
        )
    raw = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(
            f'If-Match must be the server\'s version number, like "3"; got {if_match!r}.'
        ) from None
