"""Sign-in under password guessing: wrong passwords pause the account and the client address
(429 + Retry-After, growing), others still sign in, and a failed sign-in never holds the
store's write lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import RateLimited
from elegere_widgets.server.seed import DEMO_PASSWORD
from tests.conftest import ADMIN, ANALYST, DELEGATE
from tests.fixtures.service import RunningService

TOKEN_PATH = "/identityprovider/connect/token"


@pytest.fixture
def service_settings_overrides() -> dict[str, object]:
    return {
        "sign_in_failures_per_account": 5,
        "sign_in_failures_per_address": 8,
        "sign_in_first_wait_s": 1,
    }


def _client(local_address: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=20)


@pytest.fixture
def here() -> Iterator[httpx.Client]:
    with _client() as client:
        yield client


@pytest.fixture
def elsewhere() -> Iterator[httpx.Client]:
    """Another client address: loopback answers on all of 127.0.0.0/8."""
    with _client("127.0.0.2") as client:
        yield client


def _sign_in(
    http: httpx.Client, service: RunningService, who: str, password: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": who, "password": password}
    return http.post(f"{service.url}{TOKEN_PATH}", data=form)


def test_wrong_passwords_pause_the_account_longer_each_time(
    service: RunningService, here: httpx.Client, elsewhere: httpx.Client
) -> None:
    for _ in range(5):
        assert _sign_in(here, service, ADMIN, "guess").status_code == 400
    waits: list[int] = []
    for attempt in range(3):
        paused = _sign_in(here, service, ADMIN, "guess")
        assert paused.status_code == 429, paused.text
        waits.append(int(paused.headers["retry-after"]))
        # Paused even with the right password, and the answer says so.
        right = _sign_in(here, service, ADMIN, DEMO_PASSWORD)
        assert right.status_code == 429
        assert "paused, even with the right password" in right.json()["detail"]
        # Another account, from another address, signs in as ever.
        assert _sign_in(elsewhere, service, DELEGATE, DEMO_PASSWORD).status_code == 200
        if attempt < 2:
            time.sleep(waits[-1])  # the pause ends; one more wrong password pauses longer
            assert _sign_in(here, service, ADMIN, "guess").status_code == 400
    assert 1 <= waits[0] < waits[1] < waits[2]
    # The client reports the pause as RateLimited, with the wait.
    with pytest.raises(RateLimited) as info:
        Client.sign_in(service.url, ADMIN, DEMO_PASSWORD)
    assert info.value.retry_after is not None and info.value.retry_after >= 1
    assert "try again in" in str(info.value).lower()


def test_wrong_passwords_from_one_address_pause_it_for_every_account(
    service: RunningService, here: httpx.Client, elsewhere: httpx.Client
) -> None:
    for who in [ADMIN, DELEGATE, ANALYST, "nobody@acme.example"] * 2:
        assert _sign_in(here, service, who, "guess").status_code == 400
    paused = _sign_in(here, service, ANALYST, DEMO_PASSWORD)
    assert paused.status_code == 429 and int(paused.headers["retry-after"]) >= 1
    assert "network address" in paused.json()["detail"]
    # The accounts themselves are not paused: from elsewhere they sign in.
    assert _sign_in(elsewhere, service, ANALYST, DEMO_PASSWORD).status_code == 200


def test_a_failed_sign_in_never_waits_for_the_write_lock(
    service: RunningService, database_url: str, here: httpx.Client
) -> None:
    """Someone else holds SQLite's write lock; a wrong password is still answered at once,
    because checking it writes nothing and runs outside any write transaction."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    path = service.ctx.engine.url.database
    assert path
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        try:
            wrong = _sign_in(here, service, ADMIN, "guess")
        finally:
            writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert _sign_in(here, service, ADMIN, DEMO_PASSWORD).status_code == 200
