"""Two `elegere serve` processes on one PostgreSQL store share one user's budget of
connection tests through Redis; without a shared limits store, `serve` says that limits are
per process."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.conftest import ADMIN
from tests.fixtures.processes import clean_env, elegere, free_port, serving, token_for

BUDGET = 5
KEY = Fernet.generate_key().decode()


def _env(database: str, **more: str) -> dict[str, str]:
    return clean_env(
        ELEGERE_DATABASE_URL=database,
        ELEGERE_SECRET_KEY=KEY,  # what every replica shares: the store and the key
        ELEGERE_EGRESS_ALLOW="127.0.0.0/8",
        ELEGERE_EGRESS_ALLOW_PORTS="1024-65535",
        **more,
    )


def test_two_processes_share_one_users_budget_through_redis(
    pg_database: str, redis_url: str, tmp_path: Path
) -> None:
    env = _env(pg_database, ELEGERE_LIMITS_URL=redis_url, ELEGERE_TEST_RATE_LIMIT=str(BUDGET))
    elegere("seed", "--demo", cwd=tmp_path, env=env, check=True)
    token = token_for(ADMIN, tmp_path, env)
    closed_port = free_port()  # nothing listens there: each test fails at once
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
    with serving(tmp_path, env) as one, serving(tmp_path, env) as two:
        answers = [
            httpx.post(
                f"{service.url}/api/v1/workspaces/ws_sales/email-servers/test",
                json=body,
                headers=headers,
                timeout=30,
            )
            for service in [one, two] * BUDGET
        ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * BUDGET + [429] * BUDGET, statuses
    assert all(not a.json()["ok"] for a in answers[:BUDGET])
    assert int(answers[BUDGET].headers["retry-after"]) >= 1


def test_serve_on_a_server_database_without_a_limits_store_warns(
    pg_database: str, tmp_path: Path
) -> None:
    with serving(tmp_path, _env(pg_database)) as service:
        pass
    warning = service.stderr()
    assert "counted in this process only" in warning and "ELEGERE_LIMITS_URL" in warning
