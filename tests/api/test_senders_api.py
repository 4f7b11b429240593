"""Custom actions, scheduler jobs, the notifications' servers, fallbacks and paces: written
over the API, and carried over by the delete-with-replacement flow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from elegere_widgets.server.store.tables import CustomActionRow, MessageRow, SchedulerJobRow
from tests.conftest import ADMIN, DELEGATE
from tests.fixtures.service import RunningService, add_server_row

SALES = "/api/v1/workspaces/ws_sales"
ORG = "/api/v1/organizations/org_acme"


def _client(service: RunningService, email: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {service.tokens[email]}"}
    return httpx.Client(base_url=service.url, headers=headers, timeout=30)


@pytest.fixture
def http(service: RunningService) -> Iterator[httpx.Client]:
    with _client(service, ADMIN) as client:
        yield client


@pytest.fixture
def org_http(service: RunningService) -> Iterator[httpx.Client]:
    with _client(service, DELEGATE) as client:
        yield client


def _errors(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json().get("errors", [])}


def _patch_server(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    version = http.get(path).headers["ETag"]
    return http.patch(path, json=body, headers={"If-Match": version})


@pytest.mark.parametrize("collection", ["custom-actions", "scheduler-jobs"])
def test_senders_are_created_renamed_moved_and_deleted(
    http: httpx.Client, service: RunningService, collection: str
) -> None:
    add_server_row(service, "srv_support_own", "Support Own", "ws_support")
    r = http.post(
        f"{SALES}/{collection}",
        json={"name": "Order shipped", "email_server_id": "srv_sales_mailer"},
    )
    assert r.status_code == 201, r.text
    ident = r.json()["id"]
    r = http.patch(f"{SALES}/{collection}/{ident}", json={"name": "Order sent"})
    assert r.status_code == 200 and r.json()["name"] == "Order sent"
    # An inherited server is allowed; another workspace's is not, nor an unknown one.
    r = http.patch(f"{SALES}/{collection}/{ident}", json={"email_server_id": "srv_acme_relay"})
    assert r.status_code == 200 and r.json()["email_server_id"] == "srv_acme_relay"
    for server in ("srv_support_own", "srv_nope"):
        r = http.patch(f"{SALES}/{collection}/{ident}", json={"email_server_id": server})
        assert (
            r.status_code == 422 and "not a server Sales can use" in _errors(r)["email_server_id"]
        )
    names = [s["name"] for s in http.get(f"{SALES}/{collection}").json()]
    assert "Order sent" in names
    taken = names[0] if names[0] != "Order sent" else names[1]
    r = http.post(
        f"{SALES}/{collection}", json={"name": taken.upper(), "email_server_id": "srv_acme_relay"}
    )
    assert r.status_code == 409 and "choose another name" in r.json()["detail"]
    r = http.post(f"{SALES}/{collection}", json={"name": "  ", "email_server_id": "srv_acme_relay"})
    assert r.status_code == 422 and "name" in _errors(r)
    assert http.delete(f"{SALES}/{collection}/{ident}").status_code == 204
    assert http.delete(f"{SALES}/{collection}/{ident}").status_code == 404
    assert "Order sent" not in [s["name"] for s in http.get(f"{SALES}/{collection}").json()]


ROWS = {"custom-actions": CustomActionRow, "scheduler-jobs": SchedulerJobRow}


@pytest.mark.parametrize("collection", ["custom-actions", "scheduler-jobs"])
def test_creates_of_one_name_at_once_add_it_once(service: RunningService, collection: str) -> None:
    """Four admins' requests at the same moment, three times: one 201 each time, and 409s
    that say what to fix; the workspace lists the name once."""
    clients = [_client(service, ADMIN) for _ in range(4)]
    try:
        for round_ in range(3):
            name = f"Order shipped {round_}"
            barrier = threading.Barrier(len(clients))

            def create(
                http: httpx.Client, i: int, name: str = name, barrier: threading.Barrier = barrier
            ) -> httpx.Response:
                barrier.wait()
                body = {
                    "name": name if i % 2 else name.upper(),
                    "email_server_id": "srv_acme_relay",
                }
                return http.post(f"{SALES}/{collection}", json=body)

            with ThreadPoolExecutor(len(clients)) as pool:
                answers = list(pool.map(create, clients, range(len(clients))))
            codes = sorted(r.status_code for r in answers)
            assert codes == [201, 409, 409, 409], [r.text for r in answers]
            for r in answers:
                if r.status_code == 409:
                    detail = r.json()["detail"]
                    assert "Sales already has a" in detail and "choose another name" in detail
            names = [s["name"].casefold() for s in clients[0].get(f"{SALES}/{collection}").json()]
            assert names.count(name.casefold()) == 1
    finally:
        for http in clients:
            http.close()


@pytest.mark.parametrize("collection", ["custom-actions", "scheduler-jobs"])
def test_the_store_itself_refuses_a_second_sender_of_one_name(
    service: RunningService, collection: str
) -> None:
    """Whatever writes to the store (another process, eLegere's designers), not only the
    service's check: the name is unique in its workspace, whatever its case."""
    model = ROWS[collection]
    taken = "Send quote" if collection == "custom-actions" else "Weekly digest"

    def add(ident: str, name: str, workspace: str = "ws_sales") -> None:
        with service.ctx.sessions() as s:
            s.add(
                model(id=ident, workspace_id=workspace, name=name, email_server_id="srv_acme_relay")
            )
            s.commit()

    with pytest.raises(IntegrityError):
        add("x_same_case", taken.upper())
    add("x_other_workspace", taken, "ws_support")  # another workspace may use it
    add("x_new", "Brand new")
    with service.ctx.sessions() as s:  # a rename to a taken name, too
        row = s.get(model, "x_new")
        assert row is not None
        row.name = taken.lower()
        with pytest.raises(IntegrityError):
            s.commit()


def test_a_create_racing_past_the_check_is_refused_by_the_store_with_a_409(
    http: httpx.Client, service: RunningService
) -> None:
    """PostgreSQL: another transaction holds an uncommitted action of the name, so the
    service's check passes and its insert waits on the unique index; once the other commits,
    the insert fails, and the answer is the same 409 as the check's. (SQLite runs one writer
    at a time, so the check always sees the other's row.)"""
    if service.ctx.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL lets two writers in at once")
    with service.ctx.sessions() as other, ThreadPoolExecutor(1) as pool:
        other.add(
            CustomActionRow(
                id="ca_other",
                workspace_id="ws_sales",
                name="Racy",
                email_server_id="srv_acme_relay",
            )
        )
        other.flush()  # inserted, not committed: invisible to the service's check
        body = {"name": "RACY", "email_server_id": "srv_acme_relay"}
        answer = pool.submit(http.post, f"{SALES}/custom-actions", json=body)
        with service.ctx.engine.connect() as watch:  # until the insert waits on our row
            waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            while not answer.done() and not watch.execute(waiting).scalar():
                time.sleep(0.02)
                watch.rollback()
        other.commit()
        r = answer.result(timeout=60)
    assert r.status_code == 409, r.text
    assert "already has a custom action named 'RACY'" in r.json()["detail"]


def test_workspace_mail_settings(http: httpx.Client, service: RunningService) -> None:
    add_server_row(service, "srv_support_own", "Support Own", "ws_support")
    # The organization's default (srv_acme_relay, the seed's) shows, read-only, beside it.
    org_default = {"organization_default_server_id": "srv_acme_relay"}
    assert http.get(f"{SALES}/mail-settings").json() == {
        "notifications_server_id": None,
        **org_default,
    }
    for server in ("srv_sales_mailer", "srv_acme_relay"):
        r = http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": server})
        assert r.status_code == 200
        assert r.json() == {"notifications_server_id": server, **org_default}
    r = http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": "srv_support_own"})
    assert r.status_code == 422 and "notifications_server_id" in _errors(r)
    assert http.patch(f"{SALES}/mail-settings", json={}).json() == {
        "notifications_server_id": "srv_acme_relay",
        **org_default,
    }
    r = http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": None})
    assert r.json() == {"notifications_server_id": None, **org_default}


def test_organization_default_server(
    org_http: httpx.Client, http: httpx.Client, service: RunningService
) -> None:
    assert org_http.get(f"{ORG}/mail-settings").json() == {"default_server_id": "srv_acme_relay"}
    r = org_http.patch(f"{ORG}/mail-settings", json={"default_server_id": "srv_sales_mailer"})
    assert r.status_code == 422 and "Organization's servers" in _errors(r)["default_server_id"]
    r = org_http.patch(f"{ORG}/mail-settings", json={"default_server_id": None})
    assert r.status_code == 200 and r.json() == {"default_server_id": None}
    assert http.get(f"{ORG}/mail-settings").status_code == 403  # a Workspace Admin only


def test_fallback_and_pace_are_set_through_the_server_patch(
    http: httpx.Client, org_http: httpx.Client, service: RunningService
) -> None:
    add_server_row(service, "srv_sales_b", "Sales B", "ws_sales")
    add_server_row(service, "srv_support_own", "Support Own", "ws_support")
    mailer = f"{SALES}/email-servers/srv_sales_mailer"
    r = _patch_server(http, mailer, {"fallback_server_id": "srv_acme_relay", "max_per_minute": 30})
    assert r.status_code == 200, r.text
    assert (r.json()["fallback_server_id"], r.json()["max_per_minute"]) == ("srv_acme_relay", 30)
    listed = {s["id"]: s for s in http.get(f"{SALES}/email-servers").json()}
    assert listed["srv_sales_mailer"]["fallback_server_id"] == "srv_acme_relay"
    for body, words in (
        ({"fallback_server_id": "srv_sales_mailer"}, "its own fallback"),
        ({"fallback_server_id": "srv_support_own"}, "not a server"),
        ({"max_per_minute": 0}, "from 1"),
        ({"max_per_minute": True}, "whole number"),
    ):
        r = _patch_server(http, mailer, body)
        assert r.status_code == 422, (body, r.text)
        assert words in next(iter(_errors(r).values())), (body, r.text)
    # B falls back to the mailer; the mailer may then not fall back to B.
    assert (
        _patch_server(
            http, f"{SALES}/email-servers/srv_sales_b", {"fallback_server_id": "srv_sales_mailer"}
        ).status_code
        == 200
    )
    r = _patch_server(http, mailer, {"fallback_server_id": "srv_sales_b"})
    assert r.status_code == 422 and "cycle" in _errors(r)["fallback_server_id"]
    # An organization's server may not fall back to a workspace's.
    add_server_row(service, "srv_org_b", "Org B", None)  # type: ignore[arg-type]
    r = _patch_server(
        org_http, f"{ORG}/email-servers/srv_acme_relay", {"fallback_server_id": "srv_sales_b"}
    )
    assert r.status_code == 422
    r = _patch_server(
        org_http, f"{ORG}/email-servers/srv_acme_relay", {"fallback_server_id": "srv_org_b"}
    )
    assert r.status_code == 200
    r = _patch_server(http, mailer, {"fallback_server_id": None, "max_per_minute": None})
    assert (r.json()["fallback_server_id"], r.json()["max_per_minute"]) == (None, None)


def test_delete_with_replacement_moves_every_usage_and_queued_messages(
    http: httpx.Client, service: RunningService
) -> None:
    add_server_row(service, "srv_sales_b", "Sales B", "ws_sales")
    add_server_row(service, "srv_sales_c", "Sales C", "ws_sales")
    http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": "srv_sales_mailer"})
    for other in ("srv_sales_b", "srv_sales_c"):
        r = _patch_server(
            http, f"{SALES}/email-servers/{other}", {"fallback_server_id": "srv_sales_mailer"}
        )
        assert r.status_code == 200
    queued = http.post(
        f"{SALES}/messages",
        json={
            "sender": {"kind": "custom_action", "id": "ca_send_quote"},
            "to": ["a@example.org"],
            "subject": "s",
        },
    ).json()["id"]
    usages = http.get(f"{SALES}/email-servers/srv_sales_mailer/usages").json()
    assert {(u["kind"], u["id"]) for u in usages} == {
        ("custom_action", "ca_send_quote"),
        ("scheduler_job", "job_weekly_digest"),
        ("notifications", "ws_sales"),
        ("fallback", "srv_sales_b"),
        ("fallback", "srv_sales_c"),
    }
    refused = http.delete(f"{SALES}/email-servers/srv_sales_mailer")
    assert refused.status_code == 409 and len(refused.json()["usages"]) == 5
    r = http.delete(
        f"{SALES}/email-servers/srv_sales_mailer", params={"replacement_id": "srv_sales_b"}
    )
    assert r.status_code == 204, r.text
    assert {a["email_server_id"] for a in http.get(f"{SALES}/custom-actions").json()} == {
        "srv_sales_b"
    }
    assert http.get(f"{SALES}/mail-settings").json()["notifications_server_id"] == "srv_sales_b"
    servers = {s["id"]: s for s in http.get(f"{SALES}/email-servers").json()}
    assert servers["srv_sales_c"]["fallback_server_id"] == "srv_sales_b"
    assert servers["srv_sales_b"]["fallback_server_id"] is None  # never its own fallback
    with service.ctx.sessions() as s:
        row = s.get(MessageRow, queued)
        assert row is not None and row.email_server_id == "srv_sales_b"


def test_deleting_the_organization_default_moves_it(
    org_http: httpx.Client, service: RunningService
) -> None:
    add_server_row(service, "srv_org_b", "Org B", None)  # type: ignore[arg-type]
    usages = org_http.get(f"{ORG}/email-servers/srv_acme_relay/usages").json()
    assert ("default_server", "org_acme") in {(u["kind"], u["id"]) for u in usages}
    r = org_http.delete(
        f"{ORG}/email-servers/srv_acme_relay", params={"replacement_id": "srv_org_b"}
    )
    assert r.status_code == 204, r.text
    assert org_http.get(f"{ORG}/mail-settings").json() == {"default_server_id": "srv_org_b"}
