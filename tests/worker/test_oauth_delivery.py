"""Mail through an SMTP server with OAuth 2.0 (Microsoft 365), as the worker delivers it.

The server is added through the API (tested, then created); messages are POSTed to the real
service; the worker signs in as the connection test does (certificate → token at the local
identity provider → AUTH XOAUTH2) at an aiosmtpd peer that verifies the token and keeps what
it accepts. The token appears nowhere: not in the worker's log, a delivery's reply, the
message a user reads, or a connection's repr.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.connectivity import EgressPolicy
from elegere_widgets.connectivity.smtp import said, test_smtp
from elegere_widgets.connectivity.smtp_session import xoauth2_response
from elegere_widgets.models import SmtpServerSpec, SmtpSettings
from elegere_widgets.server.store.tables import CustomActionRow, DeliveryRow, MessageRow
from elegere_widgets.server.worker.delivery import Deliverer
from elegere_widgets.server.worker.smtp_sender import SmtpConnection, SmtpConnections
from tests.conftest import ADMIN
from tests.fixtures.certs import Pki
from tests.fixtures.graph_certs import CertAndKey
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import oauth_endpoints, oauth_settings, service_environment
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .conftest import Clock, Workers, wait_until

SALES = "ws_sales"
QUOTE = {"kind": "custom_action", "id": "ca_send_quote"}


@pytest.fixture
def service_settings_overrides(oauth_service_settings: dict[str, object]) -> dict[str, object]:
    return oauth_service_settings


@pytest.fixture
def http(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.tokens[ADMIN]}"}
    url = f"{service.url}/api/v1/workspaces/{SALES}"
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def oauth_server(
    admin: Client,
    service: RunningService,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
) -> SmtpSettings:
    """An OAuth 2.0 server reaching the peer, tested and added as an admin does; "Send quote"
    goes through it. Its settings, as the test was given them."""
    settings = oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
    spec = SmtpServerSpec(name="Sales 365", settings=settings)
    passed = admin.email_servers.test(SALES, spec)
    assert passed.ok, passed.stages
    server = admin.email_servers.create(SALES, spec, test_token=passed.test_token or "")
    with service.ctx.sessions.begin() as s:
        action = s.get(CustomActionRow, "ca_send_quote")
        assert action is not None
        action.email_server_id = server.id
    return settings


def post_quote(http: httpx.Client, n: int) -> str:
    r = http.post(
        "/messages",
        json={"sender": QUOTE, "to": [f"kunde{n}@example.org"], "subject": f"Quote {n}"}
        | {"text": "Guten Tag"},
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def status_of(service: RunningService, ident: str) -> str:
    with service.ctx.sessions() as s:
        row = s.get(MessageRow, ident)
        assert row is not None
        return row.status


def token_forms(idp: IdentityProvider) -> list[str]:
    """Every token the provider issued, and the XOAUTH2 responses that carry them."""
    forms = []
    for token in idp.issued:
        response = xoauth2_response(SALES_MAILBOX, token).encode()
        forms += [token, base64.b64encode(response).decode()]
    return forms


def deliveries(service: RunningService, ident: str) -> list[DeliveryRow]:
    with service.ctx.sessions() as s:
        return list(
            s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.message_id == ident)
                .order_by(DeliveryRow.created_at)
            )
        )


def test_a_worker_process_delivers_through_oauth_with_one_token_for_two_connections(
    oauth_server: SmtpSettings,
    service: RunningService,
    http: httpx.Client,
    idp: IdentityProvider,
    pki: Pki,
    xoauth2_peer: SmtpPeer,
    workers: Workers,
) -> None:
    signed_in = idp.token_requests  # the API's test asked for a token of its own
    quits = xoauth2_peer.quits
    # The worker trusts the local provider and the peer's CA, as an operator would set it up;
    # it closes a connection idle for 0.2 s, so the second message needs a new one.
    workers.start(service.ctx, **service_environment(idp, pki), ELEGERE_SMTP_IDLE_S="0.2")

    first = post_quote(http, 1)
    wait_until("the first message sent", lambda: status_of(service, first) == "sent")
    wait_until("the idle connection closed", lambda: xoauth2_peer.quits > quits)
    second = post_quote(http, 2)
    wait_until("the second message sent", lambda: status_of(service, second) == "sent")

    assert [m.subject for m in xoauth2_peer.messages] == ["Quote 1", "Quote 2"]
    assert {m.login for m in xoauth2_peer.messages} == {SALES_MAILBOX}
    assert xoauth2_peer.auth_attempts == ["XOAUTH2"] * 3  # the test's, then two connections
    assert xoauth2_peer.xoauth2_refusals == []
    assert idp.token_requests == signed_in + 1  # the second connection reused the token
    shown = http.get(f"/messages/{second}").json()
    assert [a["outcome"] for a in shown["attempts"]] == ["sent"]

    workers.stop_all()
    log = workers.log(0).read_text()
    assert f"message {second}: sent" in log  # the worker's own log
    assert_no_token(idp, log)
    assert_no_token(idp, str(shown))


REFUSED = "535 5.7.3 Authentication unsuccessful [peer.test]"
NO_ROLE = (
    "The app's token does not grant SMTP.SendAsApp (Exchange Online application permissions: "
    "Mail.Read): in the app registration open API permissions → Add a permission → APIs my "
    "organization uses → Office 365 Exchange Online → Application permissions → "
    "SMTP.SendAsApp, then Grant admin consent"
)
EXPIRED = (
    "The token had expired when the server checked it: check this service's clock (it must "
    "be in time with the identity provider's), then test again"
)


def attempts(http: httpx.Client, ident: str) -> list[tuple[str, str | None, int | None, str]]:
    """What a user reads of each attempt: outcome, stage, reply code, reply."""
    shown = http.get(f"/messages/{ident}").json()
    return [(a["outcome"], a["stage"], a["reply_code"], a["reply"]) for a in shown["attempts"]]


def assert_no_token(idp: IdentityProvider, text: str) -> None:
    forms = token_forms(idp)
    assert forms, "no token was issued: the check would prove nothing"
    for form in forms:
        assert form not in text
    assert "auth=Bearer" not in text


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every line this process logged (tracebacks included), but the test peer's own."""
    lines = [caplog.handler.format(r) for r in caplog.records if r.name != "mail.log"]
    assert lines, "nothing was logged: the check would prove nothing"
    return "\n".join(lines)


def test_a_token_without_smtp_sendasapp_defers_with_the_hint_and_a_new_grant_is_taken_up(
    oauth_server: SmtpSettings,
    oauth_app: App,
    service: RunningService,
    http: httpx.Client,
    idp: IdentityProvider,
    xoauth2_peer: SmtpPeer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ident = post_quote(http, 1)
    oauth_app.exchange_roles = ["Mail.Read"]  # an admin took SMTP.SendAsApp away
    caplog.set_level(logging.DEBUG)
    deliverer = Deliverer(service.ctx, clock=clock, connections=SmtpConnections(idle_s=30))
    try:
        assert deliverer.deliver(ident) == "retrying"
        oauth_app.exchange_roles = ["SMTP.SendAsApp"]  # and granted it again
        clock.advance(seconds=31)  # the first retry is due
        assert deliverer.deliver(ident) == "sent"
    finally:
        deliverer.connections.close_all()
    reply = f"{REFUSED}. {NO_ROLE}."
    assert attempts(http, ident)[0] == ("deferred", "authenticate", 535, reply)
    assert [a[0] for a in attempts(http, ident)] == ["deferred", "sent"]
    assert xoauth2_peer.xoauth2_refusals == ["role"]
    assert [m.subject for m in xoauth2_peer.messages] == ["Quote 1"]
    assert_no_token(idp, logged(caplog))


def test_an_expired_token_defers_then_fails_with_the_connection_tests_words(
    oauth_server: SmtpSettings,
    service: RunningService,
    http: httpx.Client,
    idp: IdentityProvider,
    pki: Pki,
    xoauth2_peer: SmtpPeer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ident = post_quote(http, 1)
    caplog.set_level(logging.DEBUG)
    deliverer = Deliverer(service.ctx, clock=clock, connections=SmtpConnections(idle_s=30))
    # This machine's clock runs ahead of the identity provider's: its tokens arrive expired.
    idp.token_lifetime_s = -120
    try:
        assert deliverer.deliver(ident) == "retrying"
        clock.advance(days=30)  # past the retry window: the next refusal is final
        assert deliverer.deliver(ident) == "failed"
        tested = test_smtp(
            oauth_server,
            egress=EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1024-65535"]),
            budget_s=10.0,
            ssl_context=pki.client_context(),
            oauth=oauth_endpoints(idp),
        )
    finally:
        idp.token_lifetime_s = 3600
        deliverer.connections.close_all()
    reply = f"{REFUSED}. {EXPIRED}."
    failed = tested.failed_stage
    assert failed is not None and said(failed.detail, failed.hint) == reply  # word for word
    assert attempts(http, ident) == [
        ("deferred", "authenticate", 535, reply),
        ("failed", "authenticate", 535, reply),
    ]
    shown = http.get(f"/messages/{ident}").json()
    assert shown["status"] == "failed"
    assert shown["recipients"]["kunde1@example.org"] == {"status": "failed", "reply": reply}
    assert [d.error for d in deliveries(service, ident)] == [reply, reply]
    assert xoauth2_peer.xoauth2_refusals == ["expired"] * 3
    assert xoauth2_peer.messages == []
    assert_no_token(idp, logged(caplog))


def test_a_kept_connection_shows_no_token_in_its_repr(
    service: RunningService,
    idp: IdentityProvider,
    pki: Pki,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
) -> None:
    """The connection a worker thread keeps open after signing in (its settings, login and
    masking) prints without the token or the certificate's password."""
    settings = oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
    ctx = service.ctx
    connection = SmtpConnection(
        settings,
        ctx.egress,
        ctx.ssl_context(),
        10.0,
        oauth=oauth_endpoints(idp),
    )
    try:
        assert connection._open() is None
        assert connection.conn is not None
    finally:
        connection.close()
    text = repr(connection)
    assert "SmtpConnection(" in text
    assert_no_token(idp, text)
    assert settings.certificate_password is not None
    assert settings.certificate_password.get_secret_value() not in text
