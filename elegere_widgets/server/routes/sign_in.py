"""eLegere-style sign-in: POST /identityprovider/connect/token (password grant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from ..deps import ContextDep, SessionDep
from ..security import hash_token, new_id, new_token, verify_password
from ..store.tables import ApiToken, User

router = APIRouter(tags=["sign-in"])


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    # OAuth 2.0 clients read error/error_description; problem+json readers read the rest.
    return JSONResponse(
        {
            "error": error,
            "error_description": description,
            "type": f"/problems/{error.replace('_', '-')}",
            "title": "Sign-in failed",
            "status": status,
            "detail": description,
        },
        status_code=status,
        media_type="application/problem+json",
    )


@router.post("/identityprovider/connect/token")
def token(
    session: SessionDep,
    ctx: ContextDep,
    grant_type: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
) -> JSONResponse:
    if grant_type != "password":
        return _oauth_error(
            400, "unsupported_grant_type", "Use grant_type=password with username and password."
        )
    user = session.scalar(select(User).where(func.lower(User.email) == username.strip().lower()))
    if not verify_password(password, user.password_hash if user else None) or user is None:
        return _oauth_error(400, "invalid_grant", "Wrong email or password.")
    raw = new_token()
    ttl = ctx.settings.session_ttl_s
    session.add(
        ApiToken(
            id=new_id("tok"),
            user_id=user.id,
            token_hash=hash_token(raw),
            kind="session",
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        )
    )
    session.commit()
    return JSONResponse(
        {"access_token": raw, "expires_in": ttl, "token_type": "Bearer", "scope": scope}
    )
