"""eLegere-style sign-in: POST /identityprovider/connect/token (password grant), and sign-out:
POST /identityprovider/connect/revocation (RFC 7009 token revocation).

The password is checked (a slow hash, on purpose) outside any store transaction: a read finds
the account, and only a correct password opens a short write for the session token. Wrong
passwords pause sign-in for the account and the client address (``sign_in_throttle``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from ...errors import RateLimited
from ..deps import ContextDep, SessionDep
from ..security import hash_token, new_id, new_token, verify_password
from ..store.tables import ApiToken, User
from ..tokens import purge_expired, revoke_value

router = APIRouter(tags=["sign-in"])


def _oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
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
        headers=headers,
    )


@router.post("/identityprovider/connect/token")
def token(
    request: Request,
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
    address = request.client.host if request.client else "unknown"
    throttle = ctx.sign_in_throttle
    try:
        throttle.check(username, address)
    except RateLimited as paused:
        return _oauth_error(
            429,
            "too_many_attempts",
            str(paused),
            headers={"Retry-After": str(paused.retry_after)},
        )
    with ctx.read_sessions() as reading:
        found = reading.execute(
            select(User.id, User.password_hash).where(
                func.lower(User.email) == username.strip().lower()
            )
        ).first()
    user_id, stored_hash = found if found else (None, None)
    if not verify_password(password, stored_hash) or user_id is None:
        throttle.failed(username, address)
        return _oauth_error(400, "invalid_grant", "Wrong email or password.")
    throttle.succeeded(username)
    raw = new_token()
    ttl = ctx.settings.session_ttl_s
    with ctx.sessions() as session:
        session.add(
            ApiToken(
                id=new_id("tok"),
                user_id=user_id,
                token_hash=hash_token(raw),
                kind="session",
                expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
            )
        )
        # Sign-ins are where expired rows are made, so they are where they are swept.
        purge_expired(session)
        session.commit()
    return JSONResponse(
        {"access_token": raw, "expires_in": ttl, "token_type": "Bearer", "scope": scope}
    )


@router.post(
    "/identityprovider/connect/revocation",
    response_class=Response,
    responses={200: {"description": "The token no longer works (an empty body, as RFC 7009)."}},
)
def revocation(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form()] = "",
    token_type_hint: Annotated[str, Form()] = "",
) -> Response:
    """Sign out: the token (form field `token`, else the bearer token of the request) stops
    working at once, in every process. As RFC 7009 says, 200 also for a token that is unknown
    or revoked already: the caller's goal, a token that no longer works, is met."""
    if not token.strip():
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        token = bearer if scheme.lower() == "bearer" else ""
    if not token.strip():
        return _oauth_error(
            400,
            "invalid_request",
            "Send the token to revoke as the form field 'token' (or as the bearer token).",
        )
    revoke_value(session, token)
    session.commit()
    return Response(status_code=200)
