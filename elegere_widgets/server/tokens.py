"""Bearer tokens: made, listed (never their value), revoked, and purged once expired.

A token is stored as its SHA-256 only; revoking one deletes its row, so the next request
with it is a 401 in every process at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from .security import hash_token, new_id, new_token
from .store.tables import ApiToken, RoleGrant, User, WorkspaceRow

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
#: ``ApiToken.kind`` of a token that may only send and read one workspace's messages.
SENDER = "sender"
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` -> a positive timedelta; ValueError saying
    what to write otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(
            f"--expires-in {text!r} is not a duration; write a positive number and a unit: "
            "30d (days), 12h (hours), 90m (minutes), 2w (weeks) or 45s (seconds)."
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2).lower()])


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a token: never its value."""

    id: str
    user_email: str
    kind: str
    created_at: datetime
    expires_at: datetime | None


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise LookupError(f"There is no user '{email}'; check the address.")
    return user


def _issue(
    session: Session,
    user: User,
    *,
    kind: str = "api",
    workspace_id: str | None = None,
    expires_in: timedelta | None = None,
) -> str:
    raw = new_token()
    now = datetime.now(UTC)
    session.add(
        ApiToken(
            id=new_id("tok"),
            user_id=user.id,
            token_hash=hash_token(raw),
            kind=kind,
            workspace_id=workspace_id,
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
        )
    )
    session.commit()
    return raw


def create(session: Session, email: str, *, expires_in: timedelta | None = None) -> str:
    """A new API token for the user with ``email``; the value is returned once, stored hashed."""
    return _issue(session, _user(session, email), expires_in=expires_in)


def workspace_named(session: Session, workspace: str) -> WorkspaceRow:
    """The workspace with this id, or this name whatever its case; LookupError saying which
    names there are (or, when organizations share the name, which ids)."""
    exact = session.get(WorkspaceRow, workspace)
    if exact is not None:
        return exact
    found = list(
        session.scalars(
            select(WorkspaceRow).where(func.lower(WorkspaceRow.name) == workspace.strip().lower())
        )
    )
    if len(found) == 1:
        return found[0]
    if found:
        ids = ", ".join(f"{ws.id} (organization {ws.organization_id})" for ws in found)
        raise LookupError(f"Several workspaces are named {workspace!r}: pass the id of one: {ids}.")
    names = sorted(session.scalars(select(WorkspaceRow.name)))
    known = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    raise LookupError(
        f"There is no workspace named {workspace!r}; "
        + (f"the workspaces are: {known}." if names else "the store has none yet.")
    )


def create_sender(
    session: Session,
    workspace: str,
    email: str | None = None,
    *,
    expires_in: timedelta | None = None,
) -> str:
    """A token that may only send and read one workspace's messages (by its name or id).

    It belongs to ``email``'s user, by default the workspace's first Workspace Admin: the
    store keeps who a token was made for, although none of that user's roles come with it.
    """
    ws = workspace_named(session, workspace)
    if email:
        user = _user(session, email)
        if user.organization_id != ws.organization_id:
            raise LookupError(
                f"{email} is not in the organization of '{ws.name}'; pass a user of it, or "
                "leave --user out (the token then belongs to its Workspace Admin)."
            )
    else:
        found = session.scalar(
            select(User)
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(RoleGrant.role == "workspace_admin", RoleGrant.workspace_id == ws.id)
            .order_by(RoleGrant.id)
            .limit(1)
        )
        if found is None:
            raise LookupError(
                f"'{ws.name}' has no Workspace Admin to own the token; pass --user EMAIL."
            )
        user = found
    return _issue(session, user, kind=SENDER, workspace_id=ws.id, expires_in=expires_in)


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token that has not expired, oldest first."""
    now = datetime.now(UTC)
    rows = session.execute(
        select(ApiToken.id, User.email, ApiToken.kind, ApiToken.created_at, ApiToken.expires_at)
        .join(User, User.id == ApiToken.user_id)
        .where((ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now))
        .order_by(ApiToken.created_at, ApiToken.id)
    ).all()
    return [TokenInfo(*row) for row in rows]


def revoke(session: Session, token_id: str) -> bool:
    """Delete the token with this id; whether there was one."""
    result = session.execute(delete(ApiToken).where(ApiToken.id == token_id))
    session.commit()
    return bool(cast(CursorResult[Any], result).rowcount)


def revoke_value(session: Session, raw: str) -> None:
    """Delete the token with this value (sign-out); nothing when there is none."""
    session.execute(delete(ApiToken).where(ApiToken.token_hash == hash_token(raw.strip())))


def purge_expired(session: Session) -> int:
    """Delete the rows of expired tokens; how many."""
    now = datetime.now(UTC)
    result = session.execute(
        delete(ApiToken).where(ApiToken.expires_at.is_not(None), ApiToken.expires_at <= now)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)
