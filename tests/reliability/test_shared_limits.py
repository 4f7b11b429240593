"""Two `elegere serve` processes on one PostgreSQL store share one user's budget of
connection tests through Redis; without a shared limits store, `serve` says that limits are
per process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import ADMIN, PG_ENV

REDIS_ENV = "ELEGERE_TEST_REDIS_URL"
ELEGERE = [sys.executable, "-m", "elegere_widgets.server.cli"]
BUDGET = 5
KEY = Fernet.generate_key().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def database() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL run skipped: set {PG_ENV}")
    from tests.fixtures.service import reset_database

    reset_database(url)
    return url


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"No Redis at {url} ({exc}); set {REDIS_ENV}")
    return url


def _env(database: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    return env | {
        "ELEGERE_DATABASE_URL": database,
        "ELEGERE_SECRET_KEY": KEY,  # what every replica shares: the store and the key
        "ELEGERE_EGRESS_ALLOW": "127.0.0.0/8",
        "ELEGERE_EGRESS_ALLOW_PORTS": "1024-65535",
        **more,
    }


@contextmanager
def _serving(cwd: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    process = subprocess.Popen(
        [*ELEGERE, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {process.stderr.read()}") from None
                time.sleep(0.1)
        yield url, process
    finally:
        process.terminate()
        process.wait(10)


def test_two_processes_share_one_users_budget_through_redis(
    database: str, redis_url: str, tmp_path: Path
) -> None:
    env = _env(database, ELEGERE_LIMITS_URL=redis_url, ELEGERE_TEST_RATE_LIMIT=str(BUDGET))
    subprocess.run([*ELEGERE, "seed", "--demo"], cwd=tmp_path, env=env, check=True)
    token = subprocess.run(
        [*ELEGERE, "token", "create", "--user", ADMIN],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    closed_port = _free_port()  # nothing listens there: each test fails at once
    body = {
        "type": "smtp",
        "name": "Nowhere",
        "settings": {
            "server": "127.0.0.1",
            "port": closed_port,
            "account": "sales",
            "password": "secret",
            "sender_address": "sales@acme.example",
        },
    }
    headers = {"Authorization": f"Bearer {token}"}
    with _serving(tmp_path, env) as (one, _), _serving(tmp_path, env) as (two, _):
        answers = [
            httpx.post(
                f"{url}/api/v1/workspaces/ws_sales/email-servers/test",
                json=body,
                headers=headers,
                timeout=30,
            )
            for url in [one, two] * BUDGET
        ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * BUDGET + [429] * BUDGET, statuses
    assert all(not a.json()["ok"] for a in answers[:BUDGET])
    assert int(answers[BUDGET].headers["retry-after"]) >= 1


def test_serve_on_a_server_database_without_a_limits_store_warns(
    database: str, tmp_path: Path
) -> None:
    with _serving(tmp_path, _env(database)) as (_, process):
        pass
    assert process.stderr is not None
    warning = process.stderr.read()
    assert "counted in this process only" in warning and "ELEGERE_LIMITS_URL" in warning
