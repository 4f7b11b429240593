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
from .store.tables import ApiToken, User

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
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


def create(session: Session, email: str, *, expires_in: timedelta | None = None) -> str:
    """A new API token for the user with ``email``; the value is returned once, stored hashed."""
    user = session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise LookupError(f"There is no user '{email}'; check the address.")
    raw = new_token()
    session.add(
        ApiToken(
            id=new_id("tok"),
            user_id=user.id,
            token_hash=hash_token(raw),
            kind="api",
            created_at=datetime.now(UTC),
            expires_at=datetime.now(UTC) + expires_in if expires_in else None,
        )
    )
    session.commit()
    return raw


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
