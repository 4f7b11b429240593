"""``client.messages``, ``client.mail_settings`` and the senders' CRUD against the real
service: models in, models out, problems as the package's errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from elegere_widgets.client import Client
from elegere_widgets.client.messages import sender
from elegere_widgets.errors import (
    IdempotencyKeyReused,
    InvalidSettings,
    NameTaken,
    NotFound,
    PermissionDenied,
)
from elegere_widgets.models import MessageIn
from elegere_widgets.server.seed import create_sender_token
from tests.fixtures.service import RunningService

SALES = "ws_sales"
QUOTE = sender(custom_action="ca_send_quote")


def test_send_get_and_list(admin: Client) -> None:
    first = admin.messages.send(
        SALES, sender=QUOTE, to=["kunde@example.org"], subject="Angebot", text="Hallo"
    )
    assert first.status == "queued" and first.email_server_id == "srv_sales_mailer"
    batch = admin.messages.send_many(
        SALES,
        [
            MessageIn(sender=sender(notification="reply"), to=[f"n{i}@example.org"], subject="s")
            for i in range(3)
        ],
    )
    assert [m.email_server_id for m in batch] == ["srv_acme_relay"] * 3
    got = admin.messages.get(SALES, first.id)
    assert got.message_id == first.message_id and got.subject == "Angebot" and got.attempts == []
    listed = [m.id for m in admin.messages.list(SALES, page_size=2)]
    assert listed == [first.id, *(m.id for m in batch)]
    assert [m.id for m in admin.messages.list(SALES, status="sent")] == []
    with pytest.raises(NotFound):
        admin.messages.get(SALES, "msg_nope")


def test_idempotency_and_refusals_raise_the_package_errors(admin: Client) -> None:
    args = {"sender": QUOTE, "to": ["a@example.org"], "subject": "s", "idempotency_key": "k1"}
    first = admin.messages.send(SALES, **args)  # type: ignore[arg-type]
    assert admin.messages.send(SALES, **args) == first  # type: ignore[arg-type]
    with pytest.raises(IdempotencyKeyReused):
        admin.messages.send(SALES, **{**args, "subject": "other"})  # type: ignore[arg-type]
    with pytest.raises(InvalidSettings) as info:
        admin.messages.send(
            SALES, sender=sender(custom_action="ca_nope"), to=["a@example.org"], subject="s"
        )
    assert info.value.for_field("sender")
    with pytest.raises(ValidationError):  # checked before any request
        admin.messages.send(SALES, sender=QUOTE, to=["a@example.org"], subject="a\r\nBcc: b@x.org")
    with pytest.raises(ValueError):
        sender(custom_action="a", notification="reply")


def test_a_sender_token_client_sends_and_nothing_else(service: RunningService) -> None:
    with Client(service.url, create_sender_token(service.ctx, "Sales")) as client:
        accepted = client.messages.send(SALES, sender=QUOTE, to=["a@example.org"], subject="s")
        assert client.messages.get(SALES, accepted.id).id == accepted.id
        with pytest.raises(PermissionDenied):
            client.email_servers.list(SALES)


def test_custom_actions_and_jobs_crud(admin: Client) -> None:
    action = admin.custom_actions.create(SALES, name="Invoice", email_server_id="srv_acme_relay")
    assert action.email_server_id == "srv_acme_relay"
    moved = admin.custom_actions.update(SALES, action.id, email_server_id="srv_sales_mailer")
    assert (moved.name, moved.email_server_id) == ("Invoice", "srv_sales_mailer")
    with pytest.raises(NameTaken):
        admin.custom_actions.create(SALES, name="send QUOTE", email_server_id="srv_acme_relay")
    admin.custom_actions.delete(SALES, action.id)
    assert "Invoice" not in [a.name for a in admin.custom_actions.list(SALES)]
    job = admin.scheduler_jobs.create(SALES, name="Nightly", email_server_id="srv_sales_mailer")
    assert (
        admin.scheduler_jobs.update(SALES, job.id, name="Nightly report").name == "Nightly report"
    )
    with pytest.raises(InvalidSettings) as info:
        admin.scheduler_jobs.update(SALES, job.id, email_server_id="srv_nope")
    assert info.value.for_field("email_server_id")


def test_mail_settings(admin: Client, delegate: Client) -> None:
    assert admin.mail_settings.get(SALES).notifications_server_id is None
    assert admin.mail_settings.set_notifications_server(
        SALES, "srv_sales_mailer"
    ).notifications_server_id == ("srv_sales_mailer")
    assert delegate.mail_settings.get_organization("org_acme").default_server_id == (
        "srv_acme_relay"
    )
    assert delegate.mail_settings.set_default_server("org_acme", None).default_server_id is None
    with pytest.raises(PermissionDenied):
        admin.mail_settings.set_default_server("org_acme", None)
