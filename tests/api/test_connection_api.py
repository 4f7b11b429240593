"""Test Connection, the test receipt, add, send-test and secrets, against a real aiosmtpd."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings, TestRequired
from elegere_widgets.server.store.tables import DeliveryRow, EmailServerRow
from tests.fixtures.certs import Pki
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import PASSWORD, SMTP_STAGES, SmtpPeer

SALES = "ws_sales"


def _add(admin: Client, peer: SmtpPeer) -> str:
    spec = peer.spec()
    token = admin.email_servers.test(SALES, spec).test_token or ""
    return admin.email_servers.create(SALES, spec, test_token=token).id


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


def test_passing_test_unlocks_create_and_the_server_is_listed(
    admin: Client, peer: SmtpPeer
) -> None:
    spec = peer.spec()
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    assert [s.name for s in result.stages] == SMTP_STAGES
    assert result.test_token
    assert peer.messages == []  # a test never sends
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token)
    assert (server.name, server.type, server.inherited, server.version) == (
        "Sales relay",
        "smtp",
        False,
        1,
    )
    assert server.secrets_set == {"password": True}
    assert server.last_test is not None and server.last_test.ok
    assert "Sales relay" in [s.name for s in admin.email_servers.list(SALES)]


def test_failed_test_gives_no_token_and_says_what_to_fix(admin: Client, peer: SmtpPeer) -> None:
    result = admin.email_servers.test(SALES, peer.spec(password="wrong"))
    assert not result.ok and result.test_token is None
    failed = result.failed_stage
    assert failed is not None and failed.name == "authenticate"
    assert failed.code == "535"
    assert "Account and Password" in (failed.hint or "")


def test_create_without_a_token_is_428_and_adds_nothing(
    admin: Client, service: RunningService, peer: SmtpPeer
) -> None:
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers",
        json=peer.spec().to_wire(),
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 428
    assert "Test Connection" in r.json()["detail"]
    assert [s.name for s in admin.email_servers.list(SALES)] == ["Acme Relay", "Sales Mailer"]


@pytest.mark.parametrize(
    "change",
    ["password", "port", "sender"],
)
def test_a_passing_test_of_other_settings_does_not_unlock_create(
    admin: Client, peer: SmtpPeer, change: str
) -> None:
    tested = peer.spec()
    token = admin.email_servers.test(SALES, tested).test_token
    assert token
    other = tested.model_copy(deep=True)
    if change == "password":
        other.settings.password = "another-password"  # type: ignore[assignment]
    elif change == "port":
        other.settings.port = 2525
    else:
        other.settings.sender_address = "boss@acme.example"
    with pytest.raises(TestRequired) as info:
        admin.email_servers.create(SALES, other, test_token=token)
    assert "changed since the last passing test" in str(info.value)
    # The name is not a setting: renaming before Complete keeps the receipt valid.
    renamed = tested.model_copy(update={"name": "Renamed relay"})
    assert admin.email_servers.create(SALES, renamed, test_token=token).name == "Renamed relay"


def test_a_receipt_is_bound_to_the_workspace_and_the_caller(
    admin: Client, delegate: Client, peer: SmtpPeer
) -> None:
    token = admin.email_servers.test(SALES, peer.spec()).test_token
    assert token
    delegate.workspaces.grant_admin("ws_support", "delegate@acme.example")
    with pytest.raises(TestRequired):
        delegate.email_servers.create("ws_support", peer.spec(), test_token=token)
    delegate.workspaces.grant_admin(SALES, "delegate@acme.example")
    with pytest.raises(TestRequired):
        delegate.email_servers.create(SALES, peer.spec(), test_token=token)
    with pytest.raises(TestRequired):
        admin.email_servers.create(SALES, peer.spec(), test_token=token[:-2] + "00")


def test_an_expired_receipt_is_refused(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    service.ctx.receipts.ttl_s = 1  # a short life, so the test need not wait 15 minutes
    token = admin.email_servers.test(SALES, peer.spec()).test_token
    assert token
    time.sleep(2.1)
    with pytest.raises(TestRequired) as info:
        admin.email_servers.create(SALES, peer.spec(), test_token=token)
    assert "too old" in str(info.value)


def test_stored_secrets_are_reused_by_a_test_of_a_stored_server(
    admin: Client, peer: SmtpPeer
) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    retest = peer.spec(password=None).model_copy(update={"server_id": server.id})
    result = admin.email_servers.test(SALES, retest)
    assert result.ok, result.stages
    assert any(s.name == "authenticate" and s.ok for s in result.stages)
    after = admin.email_servers.get(SALES, server.id)
    assert after.last_test and after.last_test.ok and after.version == server.version


def test_send_test_delivers_a_real_message_and_records_it(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    outcome = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert outcome.ok, outcome.detail
    [received] = peer.messages
    assert received.rcpt_tos == ["someone@example.com"]
    assert received.mail_from == "sales@acme.example"
    assert received.subject == "eLegere test message"
    [delivery] = admin.deliveries.list(SALES, server_id=server.id)
    assert (delivery.id, delivery.kind, delivery.status) == (outcome.delivery_id, "test", "sent")
    assert delivery.recipients == ["someone@example.com"]


def test_send_test_failure_is_recorded_as_failed(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    peer.stop()
    outcome = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert not outcome.ok and outcome.detail
    [delivery] = admin.deliveries.list(SALES, server_id=server.id)
    assert delivery.status == "failed" and delivery.error


def test_send_test_streams_its_stages_from_one_session(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    import json

    from elegere_widgets.models import SendTestResult, Stage

    server_id = _add(admin, peer)
    connections, quits = peer.connections, peer.quits
    headers = {
        "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
        "Accept": "application/x-ndjson",
    }
    url = f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server_id}/send-test"
    with httpx.stream("POST", url, json={"to": "someone@example.com"}, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert [list(line) for line in lines] == [["stage"]] * (len(lines) - 1) + [["result"]]
    stages = [Stage.model_validate(line["stage"]) for line in lines[:-1]]
    result = SendTestResult.model_validate(lines[-1]["result"])
    assert [s.name for s in stages] == [*SMTP_STAGES, "data"]
    assert stages == result.stages and all(s.ok for s in stages)
    assert result.ok and result.detail.startswith("Sent to someone@example.com: 250 2.0.0")
    # The connection test's stages and the message: one session, one QUIT.
    assert (peer.connections - connections, peer.quits - quits) == (1, 1)
    [received] = peer.messages
    assert received.rcpt_tos == ["someone@example.com"]
    [delivery] = admin.deliveries.list(SALES, server_id=server_id)
    assert (delivery.id, delivery.status) == (result.delivery_id, "sent")

    # The client hands each stage to on_stage as it ends; without it, the whole result.
    seen: list[Stage] = []
    streamed = admin.email_servers.send_test(
        SALES, server_id, to="other@example.com", on_stage=seen.append
    )
    assert streamed.ok and seen == streamed.stages and len(seen) == len(SMTP_STAGES) + 1
    whole = admin.email_servers.send_test(SALES, server_id, to="third@example.com")
    assert [s.name for s in whole.stages] == [*SMTP_STAGES, "data"]
    assert [m.rcpt_tos for m in peer.messages][1:] == [["other@example.com"], ["third@example.com"]]
    assert peer.connections - connections == 3


def test_send_test_refused_at_recipient_shows_the_servers_reply(
    admin: Client, pki: Pki, service: RunningService
) -> None:
    with SmtpPeer("starttls", pki=pki, refuse_recipients=("nobody@example.org",)) as peer:
        server_id = _add(admin, peer)
        seen: list[object] = []
        outcome = admin.email_servers.send_test(
            SALES, server_id, to="nobody@example.org", on_stage=seen.append
        )
        assert peer.messages == []
    assert not outcome.ok and seen == outcome.stages
    assert [s.name for s in outcome.stages] == SMTP_STAGES
    refused = outcome.failed_stage
    assert refused is not None and (refused.name, refused.code) == ("recipient", "550")
    reply = "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    assert refused.detail == reply
    assert refused.hint and "refused nobody@example.org as a recipient" in refused.hint
    assert outcome.detail.startswith(f"Failed at recipient: {reply}.")
    [delivery] = admin.deliveries.list(SALES, server_id=server_id)
    assert delivery.status == "failed" and reply in (delivery.error or "")


def test_a_refused_streamed_send_test_is_a_plain_problem_before_any_line(
    service: RunningService,
) -> None:
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/srv_sales_mailer/send-test",
        json={"to": "not-an-address"},
        headers={
            "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
            "Accept": "application/x-ndjson",
        },
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")


def test_send_test_to_a_bad_address_is_422(admin: Client) -> None:
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.send_test(SALES, "srv_sales_mailer", to="not-an-address")
    assert "valid email address" in (info.value.for_field("to") or "")


def test_loopback_is_refused_unless_the_service_allows_it(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    from elegere_widgets.connectivity.egress import EgressPolicy

    service.ctx.egress = EgressPolicy.from_strings([], ports=["1-65535"])
    result = admin.email_servers.test(SALES, peer.spec())
    assert not result.ok and result.test_token is None
    assert result.stages[0].name == "resolve" and not result.stages[0].ok
    assert "loopback" in result.stages[0].detail
    assert "--egress-allow CIDR" in result.stages[0].detail


def test_a_network_the_operator_denied_is_refused_through_the_service(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    from elegere_widgets.connectivity.egress import EgressPolicy

    settings = service.ctx.settings.model_copy(update={"egress_deny": [f"{peer.host}/32"]})
    service.ctx.egress = EgressPolicy.from_strings(
        settings.egress_allow, settings.egress_allow_ports, settings.egress_deny
    )
    result = admin.email_servers.test(SALES, peer.spec())
    assert not result.ok and result.test_token is None
    assert result.stages[0].name == "resolve" and not result.stages[0].ok
    assert "--egress-deny" in result.stages[0].detail


def test_egress_deny_comes_from_the_command_line_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from elegere_widgets.server.cli import _settings, build_parser
    from elegere_widgets.server.config import Settings

    args = build_parser().parse_args(
        ["serve", "--egress-deny", "10.0.0.0/8", "--egress-deny", "100.64.0.0/10"]
    )
    assert _settings(args).egress_deny == ["10.0.0.0/8", "100.64.0.0/10"]
    monkeypatch.setenv("ELEGERE_EGRESS_DENY", "172.16.0.0/12, 192.168.0.0/16")
    assert Settings().egress_deny == ["172.16.0.0/12", "192.168.0.0/16"]
    monkeypatch.setenv("ELEGERE_EGRESS_DENY", "10.0.0.0/33")
    with pytest.raises(ValueError, match=r"--egress-deny '10\.0\.0\.0/33' is not a network"):
        Settings()


def test_secrets_never_leave_the_service_and_are_encrypted_at_rest(
    admin: Client, peer: SmtpPeer, service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = peer.spec()
    assert PASSWORD not in repr(spec) and PASSWORD not in str(spec)
    bodies: list[str] = []
    hooks = {"response": [lambda r: (r.read(), bodies.append(r.text))]}
    with httpx.Client(event_hooks=hooks) as http:  # type: ignore[arg-type]
        client = Client(service.url, service.tokens["admin@acme.example"], http_client=http)
        result = client.email_servers.test(SALES, spec)
        server = client.email_servers.create(SALES, spec, test_token=result.test_token or "")
        client.email_servers.get(SALES, server.id)
        client.email_servers.list(SALES)
        client.email_servers.send_test(SALES, server.id, to="someone@example.com")
        list(client.deliveries.list(SALES))
        assert PASSWORD not in repr(client.email_servers.get(SALES, server.id))
    assert len(bodies) >= 6
    for body in bodies:
        assert PASSWORD not in body
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
    with service.ctx.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT settings, secrets_sealed FROM email_servers WHERE id = :i"),
            {"i": server.id},
        ).one()
        audit = conn.execute(text("SELECT * FROM audit_events")).all()
    assert PASSWORD not in str(raw) and PASSWORD not in str(audit)
    assert service.ctx.box.open(raw.secrets_sealed) == {"password": PASSWORD}
    url = service.ctx.settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        assert PASSWORD.encode() not in Path(url.removeprefix("sqlite:///")).read_bytes()


def test_store_keeps_what_was_added(admin: Client, peer: SmtpPeer, service: RunningService) -> None:
    spec = peer.spec(name="Kept relay")
    admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    with service.ctx.sessions() as s:
        row = s.scalars(select(EmailServerRow).where(EmailServerRow.name == "Kept relay")).one()
        assert row.settings["port"] == peer.port and row.workspace_id == SALES
        assert (
            s.scalars(select(DeliveryRow).where(DeliveryRow.email_server_id == row.id)).all() == []
        )


def test_only_mail_ports_unless_the_service_allows_more(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    from elegere_widgets.connectivity.egress import EgressPolicy

    service.ctx.egress = EgressPolicy.from_strings(["127.0.0.0/8"])
    stage = admin.email_servers.test(SALES, peer.spec()).stages[0]
    assert not stage.ok and f"--egress-allow-port {peer.port}" in stage.detail
    service.ctx.egress = EgressPolicy.from_strings(["127.0.0.0/8"], ports=[str(peer.port)])
    assert admin.email_servers.test(SALES, peer.spec()).ok


def test_tests_are_rate_limited_per_user_with_retry_after(
    admin: Client, delegate: Client, peer: SmtpPeer, service: RunningService
) -> None:
    from elegere_widgets.errors import RateLimited
    from elegere_widgets.server.rate_limit import RateLimiter

    service.ctx.test_limiter = RateLimiter(3, 60)
    for _ in range(3):
        admin.email_servers.test(SALES, peer.spec(password="wrong"))
    with pytest.raises(RateLimited) as info:
        admin.email_servers.test(SALES, peer.spec())
    assert info.value.retry_after is not None and 1 <= info.value.retry_after <= 60
    assert "try again in" in str(info.value)
    with pytest.raises(RateLimited):
        admin.email_servers.send_test(SALES, "srv_sales_mailer", to="a@example.com")
    # Another user has a budget of its own.
    delegate.workspaces.grant_admin(SALES, "delegate@acme.example")
    assert delegate.email_servers.test(SALES, peer.spec()).ok
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test",
        json=peer.spec().to_wire(),
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_accept_ndjson_streams_each_stage_then_the_result(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    import json

    from elegere_widgets.models import ConnectionTestResult, Stage

    headers = {
        "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
        "Accept": "application/x-ndjson",
    }
    url = f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test"
    with httpx.stream("POST", url, json=peer.spec().to_wire(), headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert [list(line) for line in lines] == [["stage"]] * (len(lines) - 1) + [["result"]]
    stages = [Stage.model_validate(line["stage"]) for line in lines[:-1]]
    result = ConnectionTestResult.model_validate(lines[-1]["result"])
    assert [s.name for s in stages] == SMTP_STAGES
    assert stages == result.stages and all(s.ok for s in stages)
    assert result.ok and result.test_token
    # The receipt of a streamed test unlocks create like any other.
    admin.email_servers.create(SALES, peer.spec(), test_token=result.test_token)


def test_a_refused_streamed_test_is_a_plain_problem_before_any_line(
    service: RunningService, peer: SmtpPeer
) -> None:
    headers = {
        "Authorization": f"Bearer {service.tokens['admin@acme.example']}",
        "Accept": "application/x-ndjson",
    }
    spec = peer.spec().model_copy(update={"server_id": "srv_missing"})
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test",
        json=spec.to_wire(),
        headers=headers,
    )
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "srv_missing" in r.json()["detail"]


def test_the_client_hands_each_stage_to_on_stage_before_returning(
    admin: Client, peer: SmtpPeer
) -> None:
    seen: list[object] = []
    passed = admin.email_servers.test(SALES, peer.spec(), on_stage=seen.append)
    assert passed.ok and passed.test_token and seen == passed.stages
    seen.clear()
    failed = admin.email_servers.test(SALES, peer.spec(password="wrong"), on_stage=seen.append)
    assert not failed.ok and failed.test_token is None
    assert seen == failed.stages and seen[-1].name == "authenticate"  # type: ignore[attr-defined]
