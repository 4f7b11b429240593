"""SMTP with OAuth 2.0 (Microsoft 365): the app signs in with its certificate at the local
identity provider, then AUTH XOAUTH2 at an aiosmtpd peer that verifies the token (signature,
audience, expiry, tenant, SMTP.SendAsApp) against that provider's key."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from elegere_widgets.connectivity import EgressPolicy
from elegere_widgets.connectivity.app_token import TokenCache
from elegere_widgets.connectivity.smtp import OAuthEndpoints, oauth_login, send_smtp, test_smtp
from elegere_widgets.connectivity.smtp_hints import SmtpExplainer
from elegere_widgets.connectivity.smtp_session import SmtpSession
from elegere_widgets.connectivity.stages import Budget, StageRecorder
from elegere_widgets.models import ConnectionTestResult, SmtpSettings, Stage
from tests.fixtures.certs import Pki
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.smtp import SmtpPeer, XOAuth2Check

PFX_PASSWORD = "pfx-Passw0rd"
STAGES = [
    "certificate",
    "token",
    "resolve",
    "connect",
    "tls",
    "ehlo",
    "authenticate",
    "sender",
    "recipient",
]


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-smtp-app", key=rsa_key(30))


@pytest.fixture
def app(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey) -> App:
    return idp.add_app(tenant, certificates=[cert.cert], roles=[])


@pytest.fixture
def exchange(pki: Pki, idp: IdentityProvider, tenant: Tenant) -> Iterator[SmtpPeer]:
    check = XOAuth2Check(idp.signing_key.public_key(), tenant.id, SALES_MAILBOX)
    with SmtpPeer("starttls", pki=pki, account=SALES_MAILBOX, xoauth2=check) as peer:
        yield peer


def oauth_settings(
    peer: SmtpPeer, tenant: Tenant | str, app: App, cert: CertAndKey
) -> SmtpSettings:
    return SmtpSettings.model_validate(
        {
            "server": peer.host,
            "port": peer.port,
            "use_ssl": True,
            "account": SALES_MAILBOX,
            "sender_address": SALES_MAILBOX,
            "authentication": "oauth2",
            "tenant_id": tenant.id if isinstance(tenant, Tenant) else tenant,
            "client_id": app.client_id,
            "certificate": to_pfx(cert, password=PFX_PASSWORD),
            "certificate_password": PFX_PASSWORD,
        }
    )


def endpoints(idp: IdentityProvider) -> OAuthEndpoints:
    return OAuthEndpoints(authority_host=idp.url, ca_bundle=idp.ca_bundle)


def run(
    idp: IdentityProvider, settings: SmtpSettings, egress: EgressPolicy, pki: Pki
) -> ConnectionTestResult:
    return test_smtp(
        settings,
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
        oauth=endpoints(idp),
    )


def failed(result: ConnectionTestResult) -> Stage:
    assert not result.ok
    stage = result.failed_stage
    assert stage is not None
    return stage


def all_text(result: ConnectionTestResult) -> str:
    return " ".join(f"{s.detail} {s.hint or ''}" for s in result.stages)


def test_oauth_test_walks_certificate_token_then_xoauth2(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    seen: list[Stage] = []
    result = test_smtp(
        oauth_settings(exchange, tenant, app, cert),
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
        oauth=endpoints(idp),
        progress=seen.append,
    )
    assert result.ok, result.stages
    assert [s.name for s in result.stages] == STAGES
    assert seen == result.stages
    by_name = {s.name: s for s in result.stages}
    assert "CN=elegere-smtp-app" in by_name["certificate"].detail
    assert app.client_id in by_name["token"].detail
    assert by_name["authenticate"].detail.startswith("XOAUTH2: 235")
    assert "XOAUTH2" in by_name["ehlo"].detail
    assert exchange.auth_attempts == ["XOAUTH2"]
    assert exchange.xoauth2_refusals == []
    assert PFX_PASSWORD not in all_text(result)


def test_send_reuses_the_cached_token_per_credential(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    settings = oauth_settings(exchange, tenant, app, cert)
    cache = TokenCache()
    before = idp.token_requests
    for n in range(2):
        outcome = send_smtp(
            settings,
            to="someone@example.com",
            subject=f"Hello {n}",
            body="Hi",
            egress=egress,
            budget_s=10.0,
            ssl_context=pki.client_context(),
            oauth=endpoints(idp),
            token_cache=cache,
        )
        assert outcome.ok, outcome.detail
    assert idp.token_requests == before + 1  # the second send used the cached token
    assert [m.subject for m in exchange.messages] == ["Hello 0", "Hello 1"]
    assert exchange.messages[0].login == SALES_MAILBOX
    # A test asks afresh: it checks the sign-in itself.
    assert run(idp, settings, egress, pki).ok
    assert idp.token_requests == before + 2


def test_wrong_tenant_fails_authenticate_with_its_hint(
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    other = idp.add_tenant(domains=["other-tenant.onmicrosoft.com"])
    app = idp.add_app(other, certificates=[cert.cert], roles=[])
    result = run(idp, oauth_settings(exchange, other, app, cert), egress, pki)
    stage = failed(result)
    assert stage.name == "authenticate"
    assert stage.detail == "535 5.7.3 Authentication unsuccessful [peer.test]"
    assert stage.hint is not None
    assert f"Tenant ID ({other.id}) is the tenant of {SALES_MAILBOX}" in stage.hint
    assert "New-ServicePrincipal" in stage.hint and "Add-MailboxPermission" in stage.hint
    assert exchange.xoauth2_refusals == ["tenant"]


def test_missing_role_fails_authenticate_naming_smtp_sendasapp(
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    app = idp.add_app(tenant, certificates=[cert.cert], roles=[], exchange_roles=["Mail.Read"])
    stage = failed(run(idp, oauth_settings(exchange, tenant, app, cert), egress, pki))
    assert stage.name == "authenticate"
    assert stage.code == "535"
    assert stage.hint is not None
    assert "does not grant SMTP.SendAsApp" in stage.hint and "Mail.Read" in stage.hint
    assert "Grant admin consent" in stage.hint
    assert exchange.xoauth2_refusals == ["role"]


def test_expired_token_fails_authenticate_with_its_hint(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    idp.token_lifetime_s = -120
    try:
        stage = failed(run(idp, oauth_settings(exchange, tenant, app, cert), egress, pki))
    finally:
        idp.token_lifetime_s = 3600
    assert stage.name == "authenticate"
    assert stage.hint is not None and "token had expired" in stage.hint
    assert exchange.xoauth2_refusals == ["expired"]


def test_token_never_appears_in_a_result(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    pki: Pki,
    egress: EgressPolicy,
) -> None:
    """A server that echoes what it was sent: neither the token nor the XOAUTH2 response
    (base64) may reach a stage."""
    check = XOAuth2Check(idp.signing_key.public_key(), "not-this-tenant", SALES_MAILBOX)
    with SmtpPeer("starttls", pki=pki, account=SALES_MAILBOX, xoauth2=check) as peer:
        result = run(idp, oauth_settings(peer, tenant, app, cert), egress, pki)
    text = all_text(result)
    assert failed(result).name == "authenticate"
    assert "Bearer" not in text
    assert base64.b64encode(b"user=").decode()[:6] not in text


def test_unknown_app_fails_the_token_stage_before_any_connection(
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    stranger = App("11111111-2222-3333-4444-555555555555", [cert.cert], [])
    stage = failed(run(idp, oauth_settings(exchange, tenant, stranger, cert), egress, pki))
    assert stage.name == "token"
    assert stage.code == "AADSTS700016"
    assert exchange.auth_attempts == []


def test_server_without_xoauth2_is_told_apart(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    starttls_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    stage = failed(run(idp, oauth_settings(starttls_peer, tenant, app, cert), egress, pki))
    assert stage.name == "authenticate"
    assert stage.detail.startswith("The server does not offer AUTH XOAUTH2")
    assert stage.hint is not None and "Authentication to Password" in stage.hint
    assert starttls_peer.auth_attempts == []


def test_a_session_opened_by_a_sender_signs_in_with_oauth_login(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    exchange: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    """What the worker does: its own SmtpSession, the login from oauth_login (token cached)."""
    settings = oauth_settings(exchange, tenant, app, cert)
    cache = TokenCache()
    before = idp.token_requests
    for _ in range(2):
        budget = Budget(10.0)
        explainer = SmtpExplainer(
            host=settings.server,
            port=settings.port,
            use_ssl=True,
            implicit_tls=False,
            implicit_ports=frozenset({465}),
            budget=budget,
            sender=settings.sender_address,
            recipient=settings.sender_address,
            oauth=True,
            account=settings.account,
        )
        recorder = StageRecorder("smtp", explain=explainer)
        login = oauth_login(settings, oauth=endpoints(idp), budget=budget, token_cache=cache)
        session = SmtpSession(
            settings, egress, budget, recorder, explainer, pki.client_context(), login
        )
        try:
            session.open()
        finally:
            session.close()
        assert recorder.ok, recorder.stages
        assert recorder.stages[-1].name == "authenticate"
    assert idp.token_requests == before + 1
    assert exchange.auth_attempts == ["XOAUTH2", "XOAUTH2"]
