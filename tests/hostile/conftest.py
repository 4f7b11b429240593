"""The real service for hostile-input tests: one per module, SQLite, seeded with the demo data.

Hypothesis runs many examples in one test function, which a function-scoped service cannot
serve; and these tests refuse far more than they change, so sharing one store across a module
is what they need (each test compares the store before and after what it refuses).

Connection tests through it reach only 127.0.0.1: the budget is short, the rate limit out of
the way, and Microsoft Graph's authority and API point at a closed local port.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from elegere_widgets.server.app import create_app
from elegere_widgets.server.seed import DEMO_USERS, create_token, seed_demo
from elegere_widgets.server.store.tables import AuditEvent, DeliveryRow, EmailServerRow
from tests.fixtures.service import RunningService, build_settings, serve_in_thread
from tests.fixtures.smtp import closed_port

ADMIN = "admin@acme.example"
SALES = "ws_sales"
MAILER = "srv_sales_mailer"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    tmp = Path(tmp_path_factory.mktemp("hostile-service"))
    nowhere = f"https://127.0.0.1:{closed_port()}"
    settings = build_settings(
        f"sqlite:///{tmp / 'elegere.db'}",
        str(tmp / "data"),
        test_budget_s=1.0,
        send_budget_s=1.0,
        test_rate_limit=1_000_000,
        graph_authority_host=nowhere,
        graph_base_url=f"{nowhere}/v1.0",
    )
    app = create_app(settings)
    seed_demo(app.state.ctx)
    with serve_in_thread(app) as url:
        running = RunningService(url=url, app=app)
        running.tokens = {email: create_token(app.state.ctx, email) for email in DEMO_USERS}
        yield running


@pytest.fixture(scope="module")
def admin_http(hostile_service: RunningService) -> Iterator[httpx.Client]:
    """Raw HTTP as the demo Workspace Admin of Sales: bodies go out exactly as written."""
    with httpx.Client(
        base_url=f"{hostile_service.url}/api/v1",
        headers={"Authorization": f"Bearer {hostile_service.tokens[ADMIN]}"},
        timeout=30,
    ) as client:
        yield client


def store_snapshot(service: RunningService) -> dict[str, Any]:
    """Everything a refused request must leave as it was: servers (secrets sealed included),
    and the number of audit events and deliveries."""
    with service.ctx.sessions() as session:
        servers = [
            (
                row.id,
                row.name,
                row.version,
                json.dumps(row.settings, sort_keys=True),
                row.secrets_sealed,
                json.dumps(row.secrets_set, sort_keys=True),
                json.dumps(row.last_test, sort_keys=True, default=str),
            )
            for row in session.scalars(select(EmailServerRow).order_by(EmailServerRow.id))
        ]
        audits = session.scalar(select(func.count()).select_from(AuditEvent))
        deliveries = session.scalar(select(func.count()).select_from(DeliveryRow))
    return {"servers": servers, "audit_events": audits, "deliveries": deliveries}


def assert_problem(response: httpx.Response) -> dict[str, Any]:
    """A 4xx is problem+json with type, title, status and detail; a 422 names its fields."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    problem = response.json()
    assert isinstance(problem, dict)
    for member, kind in (("type", str), ("title", str), ("status", int), ("detail", str)):
        assert isinstance(problem.get(member), kind), (member, problem)
    assert problem["status"] == response.status_code
    assert problem["title"] and problem["detail"], problem
    if response.status_code == 422:
        errors = problem.get("errors")
        assert isinstance(errors, list) and errors, problem
        for error in errors:
            assert isinstance(error.get("field"), str), error
            assert isinstance(error.get("message"), str) and error["message"].strip(), error
    return problem
