"""Hostile bodies through the real service, as the demo Workspace Admin of Sales.

For test, add and update: never a 5xx; every 4xx is problem+json with type, title, status and
detail, a 422 names its fields; and a refused request leaves the store (servers, sealed
secrets, audit events, deliveries) exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from pydantic import TypeAdapter, ValidationError

from elegere_widgets.models.servers import FIELD_LABELS, EmailServerSpec
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import closed_port
from tests.hostile.conftest import MAILER, SALES, assert_problem, store_snapshot
from tests.hostile.strategies import VALID_PATCH_SMTP, VALID_SMTP, patch_bodies, spec_bodies

# Hypothesis sends hundreds of bodies through the real service.
pytestmark = pytest.mark.slow

THROUGH_SERVICE = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPEC = TypeAdapter(EmailServerSpec)
CLOSED_PORT = closed_port()

# Bodies that once broke the service, run on every run whatever hypothesis draws: text JSON
# can carry and UTF-8 cannot (a lone surrogate, "\ud800"), in a value, an id and a key; NUL.
SMTP_BODY: dict[str, Any] = {"type": "smtp", "name": "Sales relay", "settings": VALID_SMTP}
SPEC_EXAMPLES: list[dict[str, Any]] = [
    {**SMTP_BODY, "name": "Sales \ud800relay"},
    {**SMTP_BODY, "server_id": "srv_\udfff"},
    {**SMTP_BODY, "server_id": "srv_\x00"},
    {**SMTP_BODY, "settings": {**VALID_SMTP, "\ud800": 1}},
    {**SMTP_BODY, "\udc00": 1},
    {**SMTP_BODY, "settings": {**VALID_SMTP, "account": "sales\x00admin"}},
    {**SMTP_BODY, "settings": {**VALID_SMTP, "port": True}},
    {**SMTP_BODY, "test_token": "\ud800"},
]
PATCH_EXAMPLES: list[Any] = [
    {"name": "Sales \ud800Outbox"},
    {"settings": {**VALID_PATCH_SMTP, "account": "sales\ud800"}},
    {"settings": {"sender_address": "outbox\ud800@acme.example"}},
    {"settings": {"\ud800": 1}},
    {"\ud800": 1},
    {"settings": {"password": "pw\x00"}},
    {"settings": {"port": True}},
]


Test = TypeVar("Test", bound=Callable[..., None])


def _with_examples(examples: list[Any]) -> Callable[[Test], Test]:
    def decorate(test: Test) -> Test:
        for body in reversed(examples):
            test = example(body=body)(test)
        return test

    return decorate


def _encode(body: Any) -> bytes:
    # allow_nan: NaN and Infinity are not JSON, and a hostile client sends them anyway.
    return json.dumps(body, allow_nan=True).encode()


def _aim_at_nothing(body: Any) -> Any:
    """A body that validates is really tested: point an SMTP one at a closed local port.

    (Graph bodies need no change: the service's authority is a closed local port.)
    """
    try:
        spec = SPEC.validate_python(body)
    except ValidationError:
        return body
    if spec.type == "smtp":
        return {
            **body,
            "settings": {**body["settings"], "server": "127.0.0.1", "port": CLOSED_PORT},
        }
    return body


def _names_in(body: Any) -> set[str]:
    """Every key of the body and of its settings: an unknown field is named as sent."""
    if not isinstance(body, dict):
        return set()
    names = set(body)
    if isinstance(body.get("settings"), dict):
        names |= set(body["settings"])
    return names


def check_answer(
    response: httpx.Response, body: Any, before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert response.status_code < 500, response.text
    if response.status_code < 400:
        return
    problem = assert_problem(response)
    if response.status_code == 422:
        known = set(FIELD_LABELS) | _names_in(body)
        for error in problem["errors"]:
            # A name that was not valid Unicode comes back with "?" in its place.
            assert error["field"] in known or "?" in error["field"], error
    assert after == before, "a refused request changed the store"


@THROUGH_SERVICE
@given(body=spec_bodies())
@_with_examples(SPEC_EXAMPLES)
def test_connection_test_bodies(
    body: Any, admin_http: httpx.Client, hostile_service: RunningService
) -> None:
    body = _aim_at_nothing(body)
    before = store_snapshot(hostile_service)
    response = admin_http.post(
        f"/workspaces/{SALES}/email-servers/test",
        content=_encode(body),
        headers={"Content-Type": "application/json"},
    )
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows the spread
    if response.status_code == 200:
        result = response.json()
        # Nothing listens there: a test that validated fails, and says where.
        assert result["ok"] is False and result["stages"], result
        assert result["test_token"] is None
        return
    check_answer(response, body, before, store_snapshot(hostile_service))


@THROUGH_SERVICE
@given(body=spec_bodies())
@_with_examples(SPEC_EXAMPLES)
def test_add_bodies(body: Any, admin_http: httpx.Client, hostile_service: RunningService) -> None:
    before = store_snapshot(hostile_service)
    response = admin_http.post(
        f"/workspaces/{SALES}/email-servers",
        content=_encode(body),
        headers={"Content-Type": "application/json"},
    )
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics shows the spread
    # No body here carries the receipt of a passing test: none may be added.
    assert response.status_code >= 400, response.text
    check_answer(response, body, before, store_snapshot(hostile_service))


@THROUGH_SERVICE
@given(body=patch_bodies())
@_with_examples(PATCH_EXAMPLES)
def test_update_bodies(
    body: Any, admin_http: httpx.Client, hostile_service: RunningService
) -> None:
    before = store_snapshot(hostile_service)
    [version] = [row[2] for row in before["servers"] if row[0] == MAILER]
    response = admin_http.patch(
        f"/workspaces/{SALES}/email-servers/{MAILER}",
        content=_encode(body),
        headers={"Content-Type": "application/json", "If-Match": f'"{version}"'},
    )
    event(f"HTTP {response.status_code}")
    if response.status_code == 200:
        # A valid patch is saved: the version moves on, and the next example sends the new one.
        assert response.json()["version"] in (version, version + 1)
        return
    check_answer(response, body, before, store_snapshot(hostile_service))
