"""Messages: accepted into the store (202), repeats (200), conflicts (409), refusals (422,
413), read back with their attempts, paged; who may send (Workspace Admins, sender tokens)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from elegere_widgets.server.security import new_id
from elegere_widgets.server.seed import create_sender_token
from elegere_widgets.server.services.messages import purge_message_bodies
from elegere_widgets.server.store.tables import DeliveryRow, MessageRow, Organization
from tests.conftest import ADMIN
from tests.fixtures.service import RunningService

SALES = "/api/v1/workspaces/ws_sales"
QUOTE = {"kind": "custom_action", "id": "ca_send_quote"}


@pytest.fixture
def service_settings_overrides() -> dict[str, object]:
    return {"max_message_bytes": 4000}


@pytest.fixture
def http(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.tokens[ADMIN]}"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
        yield client


def _message(**changes: Any) -> dict[str, Any]:
    return {
        "sender": QUOTE,
        "to": ["Kunde <kunde@bücher.example>"],
        "cc": ["cc@example.org"],
        "subject": "Ihr Angebot – Nr. 7",
        "text": "Guten Tag,\nanbei das Angebot.",
        **changes,
    }


def _errors(r: httpx.Response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in r.json().get("errors", [])}


def test_a_message_is_stored_queued_with_its_message_id(
    http: httpx.Client, service: RunningService
) -> None:
    r = http.post(f"{SALES}/messages", json=_message())
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "queued" and answer["email_server_id"] == "srv_sales_mailer"
    assert answer["message_id"].startswith("<") and answer["message_id"].endswith("@acme.example>")
    with service.ctx.sessions() as s:
        row = s.get(MessageRow, answer["id"])
        assert row is not None
        assert row.message_id == answer["message_id"] and row.status == "queued"
        assert row.recipients == {
            "kunde@bücher.example": {"status": "pending", "reply": None},
            "cc@example.org": {"status": "pending", "reply": None},
        }
        assert row.text == "Guten Tag,\nanbei das Angebot." and row.next_attempt_at is not None
    got = http.get(f"{SALES}/messages/{answer['id']}").json()
    assert got["subject"] == "Ihr Angebot – Nr. 7" and got["to"] == ["Kunde <kunde@bücher.example>"]
    assert got["sender"] == {**QUOTE, "name": None, "event": None} and got["attempts"] == []
    assert "text" not in got and "html" not in got  # bodies never leave the service


def test_notifications_use_the_workspace_server_else_the_organization_default(
    http: httpx.Client, service: RunningService
) -> None:
    note = _message(sender={"kind": "notification", "event": "reply"})
    assert http.post(f"{SALES}/messages", json=note).json()["email_server_id"] == "srv_acme_relay"
    r = http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": "srv_sales_mailer"})
    assert r.status_code == 200, r.text
    assert http.post(f"{SALES}/messages", json=note).json()["email_server_id"] == (
        "srv_sales_mailer"
    )
    http.patch(f"{SALES}/mail-settings", json={"notifications_server_id": None})
    with service.ctx.sessions() as s:
        org = s.get(Organization, "org_acme")
        assert org is not None
        org.default_server_id = None
        s.commit()
    r = http.post(f"{SALES}/messages", json=note)
    assert r.status_code == 422
    assert "notifications server" in _errors(r)["sender"]


def test_a_batch_is_accepted_in_order(http: httpx.Client) -> None:
    batch = {"messages": [_message(subject=f"n° {i}") for i in range(3)]}
    r = http.post(f"{SALES}/messages", json=batch)
    assert r.status_code == 202, r.text
    ids = [item["id"] for item in r.json()["items"]]
    assert len(set(ids)) == 3
    assert [http.get(f"{SALES}/messages/{i}").json()["subject"] for i in ids] == [
        "n° 0",
        "n° 1",
        "n° 2",
    ]
    too_many = {"messages": [_message()] * 501}
    r = http.post(f"{SALES}/messages", json=too_many)
    assert r.status_code == 422 and "1 to 500" in _errors(r)["messages"]


def test_a_repeat_answers_the_first_message_and_another_body_is_a_conflict(
    http: httpx.Client, service: RunningService
) -> None:
    first = http.post(f"{SALES}/messages", json=_message(idempotency_key="quote-7"))
    assert first.status_code == 202
    again = http.post(f"{SALES}/messages", json=_message(idempotency_key="quote-7"))
    assert again.status_code == 200 and again.json() == first.json()
    other = http.post(f"{SALES}/messages", json=_message(idempotency_key="quote-7", text="x"))
    assert other.status_code == 409
    assert "quote-7" in other.json()["detail"] and "another message" in other.json()["detail"]
    with service.ctx.sessions() as s:
        keyed = s.scalars(select(MessageRow).where(MessageRow.idempotency_key == "quote-7"))
        assert len(list(keyed)) == 1


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"to": ["kunde@example.org\r\nBcc: spy@evil.example"]}, "to", "line break"),
        ({"to": ["Evil\nName <a@example.org>"]}, "to", "line break"),
        ({"subject": "Hallo\r\nBcc: spy@evil.example"}, "subject", "line break"),
        ({"reply_to": "a@example.org\nX-Evil: 1"}, "reply_to", "line break"),
        ({"to": ["not-an-address"]}, "to", "email address"),
        ({"to": ["a@example.org, b@example.org"]}, "to", "email address"),
        ({"subject": "x" * 999}, "subject", "998"),
        ({"sender": {"kind": "custom_action", "id": "ca_nope"}}, "sender", "no custom action"),
        ({"sender": {"kind": "scheduler_job", "id": "ca_send_quote"}}, "sender", "scheduler job"),
        ({"sender": {"kind": "custom_action", "id": "ca_ticket_reply"}}, "sender", "Sales"),
        ({"sender": {"kind": "notification", "event": "party"}}, "sender", "event"),
        (
            {"sender": {"kind": "custom_action", "name": "Send quotes"}},
            "sender",
            "no custom action named 'Send quotes' in Sales; its custom actions: 'Send quote'",
        ),
        (
            {"sender": {"kind": "custom_action", "id": "ca_send_quote", "name": "Send quote"}},
            "sender",
            "the id or the name",
        ),
        ({"sender": {"kind": "notification", "event": "reply", "name": "x"}}, "sender", "no id"),
    ],
)
def test_bad_messages_are_refused_on_the_field(
    http: httpx.Client, changes: dict[str, Any], field: str, words: str
) -> None:
    r = http.post(f"{SALES}/messages", json=_message(**changes))
    assert r.status_code == 422, r.text
    assert words in _errors(r)[field]


def test_a_message_without_recipients_is_refused(http: httpx.Client) -> None:
    r = http.post(f"{SALES}/messages", json=_message(to=[], cc=[]))
    assert r.status_code == 422 and "at least one recipient" in r.text


def test_a_message_over_the_size_limit_is_413(http: httpx.Client, service: RunningService) -> None:
    r = http.post(f"{SALES}/messages", json=_message(html="<p>" + "x" * 5000 + "</p>"))
    assert r.status_code == 413
    assert "ELEGERE_MAX_MESSAGE_BYTES" in r.json()["detail"]
    with service.ctx.sessions() as s:
        assert s.scalar(select(MessageRow.id)) is None


def test_attempts_are_the_message_deliveries_in_time_order(
    http: httpx.Client, service: RunningService
) -> None:
    ident = http.post(f"{SALES}/messages", json=_message()).json()["id"]
    now = datetime.now(UTC)
    with service.ctx.sessions() as s:
        for at, status, stage, code, reply in (
            (now, "sent", "data", 250, "250 2.0.0 Ok: queued as 4Xz"),
            (now - timedelta(minutes=1), "deferred", "connect", None, "connection refused"),
        ):
            s.add(
                DeliveryRow(
                    id=new_id("dlv"),
                    workspace_id="ws_sales",
                    email_server_id="srv_sales_mailer",
                    email_server_name="Sales Mailer",
                    kind="custom_action",
                    recipients=["kunde@bücher.example"],
                    status=status,
                    error=reply,
                    created_at=at,
                    message_id=ident,
                    stage=stage,
                    reply_code=code,
                )
            )
        s.commit()
    attempts = http.get(f"{SALES}/messages/{ident}").json()["attempts"]
    assert [(a["outcome"], a["stage"], a["reply"]) for a in attempts] == [
        ("deferred", "connect", "connection refused"),
        ("sent", "data", "250 2.0.0 Ok: queued as 4Xz"),
    ]
    assert attempts[1]["email_server_name"] == "Sales Mailer"
    # The deliveries API shows the real attempts too, deferred included.
    shown = http.get(f"{SALES}/deliveries", params={"limit": 5000}).json()["items"]
    assert {d["status"] for d in shown if d.get("message_id") == ident} == {"sent", "deferred"}


def test_messages_are_paged_and_filtered_by_status(
    http: httpx.Client, service: RunningService
) -> None:
    ids = [
        item["id"]
        for item in http.post(
            f"{SALES}/messages", json={"messages": [_message() for _ in range(5)]}
        ).json()["items"]
    ]
    with service.ctx.sessions() as s:
        row = s.get(MessageRow, ids[0])
        assert row is not None
        row.status = "sent"
        s.commit()
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{SALES}/messages", params=params).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
    queued = http.get(f"{SALES}/messages", params={"status": "queued"}).json()["items"]
    assert [m["id"] for m in queued] == ids[1:]
    r = http.get(f"{SALES}/messages", params={"status": "lost"})
    assert r.status_code == 422 and "status" in _errors(r)
    assert http.get(f"{SALES}/messages/msg_nope").status_code == 404


def test_sender_tokens_send_and_read_their_workspace_messages_only(
    service: RunningService,
) -> None:
    token = create_sender_token(service.ctx, "Sales")
    with httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as sender:
        r = sender.post(f"{SALES}/messages", json=_message())
        assert r.status_code == 202
        assert sender.get(f"{SALES}/messages/{r.json()['id']}").status_code == 200
        assert sender.get(f"{SALES}/messages").status_code == 200
        elsewhere = sender.post("/api/v1/workspaces/ws_support/messages", json=_message())
        assert elsewhere.status_code == 403 and "its own workspace" in elsewhere.text
        for method, path in (
            ("GET", "/api/v1/me"),
            ("GET", f"{SALES}/email-servers"),
            ("GET", f"{SALES}/deliveries"),
            ("GET", f"{SALES}/deliveries.csv"),
            ("GET", f"{SALES}/mail-settings"),
        ):
            refused = sender.request(method, path)
            assert refused.status_code == 403, (method, path)
            assert "sender token" in refused.json()["detail"]


def test_a_sender_named_by_its_name_is_kept_by_its_id(http: httpx.Client) -> None:
    """The platform may name a custom action or job by its name (any case): the message is
    the one the id names, a repeat by id answers it, and a batch looks each name up once."""
    body = _message(
        sender={"kind": "custom_action", "name": "SEND quote"}, idempotency_key="quote-7"
    )
    r = http.post(f"{SALES}/messages", json=body)
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["email_server_id"] == "srv_sales_mailer"
    assert http.get(f"{SALES}/messages/{first['id']}").json()["sender"]["id"] == "ca_send_quote"
    again = http.post(f"{SALES}/messages", json={**body, "sender": QUOTE})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    job = {"kind": "scheduler_job", "name": "Weekly digest"}
    batch = http.post(f"{SALES}/messages", json={"messages": [_message(sender=job)] * 3})
    assert batch.status_code == 202, batch.text
    ids = [m["id"] for m in batch.json()["items"]]
    senders = {http.get(f"{SALES}/messages/{i}").json()["sender"]["id"] for i in ids}
    assert senders == {"job_weekly_digest"}


def test_a_sender_token_names_its_workspace_and_senders_by_name(
    service: RunningService,
) -> None:
    token = create_sender_token(service.ctx, "sales")
    with httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as sender:
        body = _message(sender={"kind": "custom_action", "name": "Send quote"})
        for ws in ("Sales", "sales", "ws_sales"):
            r = sender.post(f"/api/v1/workspaces/{ws}/messages", json=body)
            assert r.status_code == 202, (ws, r.text)
            assert sender.get(f"/api/v1/workspaces/{ws}/messages").status_code == 200
        r = sender.post("/api/v1/workspaces/Support/messages", json=body)
        assert r.status_code == 403
        assert (
            "its own workspace, Sales (ws_sales); make a sender token for 'Support'"
            in (r.json()["detail"])
        )


def test_analysts_and_other_workspaces_admins_may_not_send(
    service: RunningService,
) -> None:
    token = service.tokens["analyst@acme.example"]
    r = httpx.post(
        f"{service.url}{SALES}/messages",
        json=_message(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 403 and "Workspace Admin" in r.json()["detail"]


def test_bodies_are_purged_after_the_retention_and_the_rows_stay(
    http: httpx.Client, service: RunningService
) -> None:
    ids = [
        item["id"]
        for item in http.post(
            f"{SALES}/messages", json={"messages": [_message(), _message(), _message()]}
        ).json()["items"]
    ]
    now = datetime.now(UTC)
    with service.ctx.sessions() as s:
        for ident, status, finished in (
            (ids[0], "sent", now - timedelta(days=8)),
            (ids[1], "failed", now - timedelta(days=6)),
            (ids[2], "retrying", None),
        ):
            row = s.get(MessageRow, ident)
            assert row is not None
            row.status, row.finished_at = status, finished
        s.commit()
        assert purge_message_bodies(s, now, timedelta(days=7)) == 1
        s.commit()
    with service.ctx.sessions() as s:
        rows = {r.id: r for r in s.scalars(select(MessageRow).where(MessageRow.id.in_(ids)))}
        assert rows[ids[0]].text is None and rows[ids[0]].body_purged_at is not None
        assert rows[ids[1]].text and rows[ids[2]].text
    assert http.get(f"{SALES}/messages/{ids[0]}").json()["body_purged"] is True
