"""Tokens that expire, are listed without their values, are revoked, and sign-out (issue 11.9).

The CLI runs as an operator runs it, against the store of the running service.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.errors import AuthenticationRequired
from elegere_widgets.server.security import hash_token, new_id, new_token
from elegere_widgets.server.store.tables import ApiToken, User
from tests.fixtures.processes import elegere as run_elegere
from tests.fixtures.service import RunningService

ADMIN = "admin@acme.example"


def elegere(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return run_elegere(*args, "--database", database_url)


def _me(service: RunningService, token: str) -> int:
    return httpx.get(
        f"{service.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_token_create_with_expiry_list_and_revoke(
    service: RunningService, database_url: str
) -> None:
    made = elegere(
        "token", "create", "--user", ADMIN, "--expires-in", "30d", database_url=database_url
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert _me(service, token) == 200

    listed = elegere("token", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout and hash_token(token) not in listed.stdout
    for secret in service.tokens.values():
        assert secret not in listed.stdout
    with service.ctx.sessions() as s:
        row = s.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).one()
    assert row.expires_at is not None
    assert timedelta(days=29) < row.expires_at - datetime.now(UTC) <= timedelta(days=30)
    line = next(line for line in listed.stdout.splitlines() if line.startswith(row.id))
    assert ADMIN in line and " api " in line and row.expires_at.strftime("%Y-%m-%d") in line
    assert listed.stdout.splitlines()[0].split() == ["ID", "USER", "KIND", "CREATED", "EXPIRES"]

    revoked = elegere("token", "revoke", row.id, database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert _me(service, token) == 401
    assert row.id not in elegere("token", "list", database_url=database_url).stdout
    again = elegere("token", "revoke", row.id, database_url=database_url)
    assert again.returncode == 1 and "token list" in again.stderr


def test_a_bad_duration_says_how_to_write_one(service: RunningService, database_url: str) -> None:
    result = elegere(
        "token", "create", "--user", ADMIN, "--expires-in", "soon", database_url=database_url
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "30d" in result.stderr and "12h" in result.stderr


def test_sign_out_revokes_the_session_token_at_the_service(service: RunningService) -> None:
    client = Client.sign_in(service.url, ADMIN, "demo")
    token = client._http.token
    assert token is not None and client.me().email == ADMIN
    client.sign_out()
    assert _me(service, token) == 401
    with pytest.raises(AuthenticationRequired):
        Client(service.url, token).me()
    with service.ctx.sessions() as s:
        assert (
            s.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).all() == []
        )
    client.sign_out()  # twice is harmless
    client.close()


def test_revocation_endpoint_needs_a_token_and_answers_200_for_unknown_ones(
    service: RunningService,
) -> None:
    url = f"{service.url}/identityprovider/connect/revocation"
    assert httpx.post(url, data={"token": "elg_unknown"}).status_code == 200
    missing = httpx.post(url, data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_expired_rows_are_purged_at_sign_in(service: RunningService) -> None:
    with service.ctx.sessions() as s:
        user_id = s.scalar(select(User.id).where(User.email == ADMIN))
        expired = ApiToken(
            id=new_id("tok"),
            user_id=user_id,
            token_hash=hash_token(new_token()),
            kind="session",
            expires_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        s.add(expired)
        s.commit()
        expired_id = expired.id
    Client.sign_in(service.url, ADMIN, "demo").close()
    with service.ctx.sessions() as s:
        assert s.get(ApiToken, expired_id) is None
