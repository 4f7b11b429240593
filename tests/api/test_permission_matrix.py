"""Every endpoint, as every kind of caller, against the matrix in API.md.

The rows come from the app's own route list: an endpoint without a row fails this test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update

from elegere_widgets.server.security import hash_password, new_id
from elegere_widgets.server.seed import ORG_ID, create_sender_token, create_token
from elegere_widgets.server.store.tables import ApiToken, RoleGrant, User
from tests.conftest import ADMIN
from tests.fixtures.service import RunningService

# Who may call what: the access classes of API.md.
WORKSPACE = "workspace admin of the workspace"
ORGANIZATION = "admin or IT delegate"
GRANT = "workspace admin, admin or users & workspaces delegate"
SIGNED_IN = "anyone signed in"
MESSAGES = "workspace admin of the workspace, or a sender token of it"

MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/workspaces"): SIGNED_IN,
    ("PUT", "/api/v1/workspaces/{ws}/admins/{user}"): GRANT,
    ("DELETE", "/api/v1/workspaces/{ws}/admins/{user}"): GRANT,
    ("GET", "/api/v1/workspaces/{ws}/custom-actions"): WORKSPACE,
    ("GET", "/api/v1/workspaces/{ws}/scheduler-jobs"): WORKSPACE,
    ("GET", "/api/v1/workspaces/{ws}/deliveries"): WORKSPACE,
    ("GET", "/api/v1/workspaces/{ws}/deliveries.csv"): WORKSPACE,
    ("GET", "/api/v1/workspaces/{ws}/audit-events"): WORKSPACE,
    ("POST", "/api/v1/workspaces/{ws}/messages"): MESSAGES,
    ("GET", "/api/v1/workspaces/{ws}/messages"): MESSAGES,
    ("GET", "/api/v1/workspaces/{ws}/messages/{message_id}"): MESSAGES,
    ("POST", "/api/v1/workspaces/{ws}/custom-actions"): WORKSPACE,
    ("PATCH", "/api/v1/workspaces/{ws}/custom-actions/{action_id}"): WORKSPACE,
    ("DELETE", "/api/v1/workspaces/{ws}/custom-actions/{action_id}"): WORKSPACE,
    ("POST", "/api/v1/workspaces/{ws}/scheduler-jobs"): WORKSPACE,
    ("PATCH", "/api/v1/workspaces/{ws}/scheduler-jobs/{job_id}"): WORKSPACE,
    ("DELETE", "/api/v1/workspaces/{ws}/scheduler-jobs/{job_id}"): WORKSPACE,
    ("GET", "/api/v1/workspaces/{ws}/mail-settings"): WORKSPACE,
    ("PATCH", "/api/v1/workspaces/{ws}/mail-settings"): WORKSPACE,
    ("GET", "/api/v1/organizations/{org}/mail-settings"): ORGANIZATION,
    ("PATCH", "/api/v1/organizations/{org}/mail-settings"): ORGANIZATION,
}
for prefix, access in (
    ("/api/v1/workspaces/{ws}/email-servers", WORKSPACE),
    ("/api/v1/organizations/{org}/email-servers", ORGANIZATION),
):
    for method, suffix in (
        ("GET", ""),
        ("POST", ""),
        ("POST", "/test"),
        ("GET", "/{server_id}"),
        ("PATCH", "/{server_id}"),
        ("DELETE", "/{server_id}"),
        ("GET", "/{server_id}/usages"),
        ("GET", "/{server_id}/checks"),
        ("POST", "/{server_id}/test"),
        ("GET", "/{server_id}/delivery-summary"),
        ("GET", "/{server_id}/audit-events"),
        ("POST", "/{server_id}/send-test"),
        ("POST", "/{server_id}/next-certificate/test"),
        ("POST", "/{server_id}/next-certificate/promote"),
        ("DELETE", "/{server_id}/next-certificate"),
    ):
        MATRIX[(method, prefix + suffix)] = access

PUBLIC = {("POST", "/identityprovider/connect/token"), ("GET", "/healthz")}

# caller -> the access classes it passes; None: not signed in at all (401).
CALLERS: dict[str, set[str] | None] = {
    "no token": None,
    "bad token": None,
    "expired sign-in": None,
    "plain user": {SIGNED_IN},
    "workspace admin of another workspace": {SIGNED_IN},
    "licenses & billings delegate": {SIGNED_IN},
    "it delegate": {SIGNED_IN, ORGANIZATION},
    "users & workspaces delegate": {SIGNED_IN, GRANT},
    "admin delegate": {SIGNED_IN, ORGANIZATION, GRANT},
    "workspace admin": {SIGNED_IN, WORKSPACE, GRANT, MESSAGES},
    # A sender token of the workspace: its messages, nothing else (not even /me).
    "sender token": {MESSAGES},
    "sender token of another workspace": set(),
}

PATH_VALUES = {
    "ws": "ws_sales",
    "org": ORG_ID,
    "server_id": "srv_nope",  # allowed callers get 404, so nothing is changed by this test
    "user": "nobody@acme.example",
    "message_id": "msg_nope",
    "action_id": "ca_nope",
    "job_id": "job_nope",
}


def _routes(service: RunningService) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in service.app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def _user(service: RunningService, email: str, role: str | None, ws: str | None = None) -> str:
    with service.ctx.sessions() as s:
        user = User(
            id=new_id("usr"),
            organization_id=ORG_ID,
            email=email,
            name=email,
            password_hash=hash_password("demo"),
        )
        s.add(user)
        s.flush()
        if role:
            s.add(
                RoleGrant(
                    user_id=user.id,
                    role=role,
                    organization_id=ORG_ID,
                    workspace_id=ws,
                    scope_key=ws or "org",
                )
            )
        s.commit()
    return create_token(service.ctx, email)


def _tokens(service: RunningService) -> dict[str, str | None]:
    expired = _user(service, "expired@acme.example", "workspace_admin", "ws_sales")
    with service.ctx.sessions() as s:
        s.execute(
            update(ApiToken)
            .where(
                ApiToken.token_hash == __import__("hashlib").sha256(expired.encode()).hexdigest()
            )
            .values(kind="session", expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        s.commit()
    return {
        "no token": None,
        "bad token": "elg_not-a-real-token",
        "expired sign-in": expired,
        "plain user": service.tokens["analyst@acme.example"],
        "workspace admin of another workspace": _user(
            service, "support-admin@acme.example", "workspace_admin", "ws_support"
        ),
        "licenses & billings delegate": _user(
            service, "billing@acme.example", "licenses_billings_delegate"
        ),
        "it delegate": _user(service, "it@acme.example", "it_delegate"),
        "users & workspaces delegate": _user(
            service, "people@acme.example", "users_workspaces_delegate"
        ),
        "admin delegate": service.tokens["delegate@acme.example"],
        "workspace admin": service.tokens["admin@acme.example"],
        "sender token": create_sender_token(service.ctx, "ws_sales"),
        "sender token of another workspace": create_sender_token(service.ctx, "Support", ADMIN),
    }


@pytest.mark.read_only
def test_every_route_has_a_row_in_the_matrix(service: RunningService) -> None:
    missing = _routes(service) - set(MATRIX) - PUBLIC
    assert not missing, f"endpoints without a row in the permission matrix: {sorted(missing)}"


def test_every_endpoint_answers_every_caller_as_the_matrix_says(service: RunningService) -> None:
    tokens = _tokens(service)
    failures = []
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for (method, template), access in sorted(MATRIX.items()):
            path = template.format(**PATH_VALUES)
            for caller, passes in CALLERS.items():
                token = tokens[caller]
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                body = {} if method in ("POST", "PATCH", "PUT") else None
                r = http.request(method, path, json=body, headers=headers)
                if passes is None:
                    expected = "401"
                elif access in passes:
                    expected = "allowed"
                else:
                    expected = "403"
                got = str(r.status_code)
                ok = got == expected if expected != "allowed" else got not in {"401", "403"}
                if r.status_code >= 500 or not ok:
                    failures.append(f"{method} {template} as {caller}: {got}, expected {expected}")
    assert not failures, "\n".join(failures)


@pytest.mark.read_only
@pytest.mark.parametrize(
    "path", ["/workspaces/ws_elsewhere/email-servers", "/organizations/org_elsewhere/email-servers"]
)
def test_what_the_caller_may_not_know_of_is_404_not_403(service: RunningService, path: str) -> None:
    r = httpx.get(
        f"{service.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {service.tokens['delegate@acme.example']}"},
    )
    assert r.status_code == 404
