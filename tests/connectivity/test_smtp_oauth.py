"""SMTP with OAuth 2.0 (Microsoft 365): the app signs in with its certificate at the local
identity provider, then AUTH XOAUTH2 at an aiosmtpd peer that verifies the token (signature,
audience, expiry, tenant, SMTP.SendAsApp) against that provider's key."""

from __future__ import annotations

import base64

from elegere_widgets.connectivity import EgressPolicy
from elegere_widgets.connectivity.app_token import TokenCache
from elegere_widgets.connectivity.smtp import SmtpRun, send_smtp, test_smtp
from elegere_widgets.models import ConnectionTestResult, SmtpSettings, Stage
from tests.fixtures.certs import Pki
from tests.fixtures.graph_certs import CertAndKey
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import (
    OAUTH_CERT_CN,
    OAUTH_SMTP_STAGES,
    PFX_PASSWORD,
    add_oauth_app,
    oauth_endpoints,
    oauth_settings,
    xoauth2_peer,
)
from tests.fixtures.smtp import SmtpPeer


def run(
    idp: IdentityProvider, settings: SmtpSettings, egress: EgressPolicy, pki: Pki
) -> ConnectionTestResult:
    return test_smtp(
        settings,
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
        oauth=oauth_endpoints(idp),
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
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    seen: list[Stage] = []
    result = test_smtp(
        oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert),
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
        oauth=oauth_endpoints(idp),
        progress=seen.append,
    )
    assert result.ok, result.stages
    assert [s.name for s in result.stages] == OAUTH_SMTP_STAGES
    assert seen == result.stages
    by_name = {s.name: s for s in result.stages}
    assert f"CN={OAUTH_CERT_CN}" in by_name["certificate"].detail
    assert oauth_app.client_id in by_name["token"].detail
    assert by_name["authenticate"].detail.startswith("XOAUTH2: 235")
    assert "XOAUTH2" in by_name["ehlo"].detail
    assert xoauth2_peer.auth_attempts == ["XOAUTH2"]
    assert xoauth2_peer.xoauth2_refusals == []
    assert PFX_PASSWORD not in all_text(result)


def test_send_reuses_the_cached_token_per_credential(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    settings = oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
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
            oauth=oauth_endpoints(idp),
            token_cache=cache,
        )
        assert outcome.ok, outcome.detail
    assert idp.token_requests == before + 1  # the second send used the cached token
    assert [m.subject for m in xoauth2_peer.messages] == ["Hello 0", "Hello 1"]
    assert xoauth2_peer.messages[0].login == SALES_MAILBOX
    # A test asks afresh: it checks the sign-in itself.
    assert run(idp, settings, egress, pki).ok
    assert idp.token_requests == before + 2


def test_wrong_tenant_fails_authenticate_with_its_hint(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    other = idp.add_tenant(domains=["other-tenant.onmicrosoft.com"])
    app = add_oauth_app(idp, other, oauth_cert)
    result = run(idp, oauth_settings(xoauth2_peer, other, app, oauth_cert), egress, pki)
    stage = failed(result)
    assert stage.name == "authenticate"
    assert stage.detail == "535 5.7.3 Authentication unsuccessful [peer.test]"
    assert stage.hint is not None
    assert f"Tenant ID ({other.id}) is the tenant of {SALES_MAILBOX}" in stage.hint
    assert "New-ServicePrincipal" in stage.hint and "Add-MailboxPermission" in stage.hint
    assert xoauth2_peer.xoauth2_refusals == ["tenant"]


def test_missing_role_fails_authenticate_naming_smtp_sendasapp(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    app = add_oauth_app(idp, tenant, oauth_cert, exchange_roles=["Mail.Read"])
    stage = failed(run(idp, oauth_settings(xoauth2_peer, tenant, app, oauth_cert), egress, pki))
    assert stage.name == "authenticate"
    assert stage.code == "535"
    assert stage.hint is not None
    assert "does not grant SMTP.SendAsApp" in stage.hint and "Mail.Read" in stage.hint
    assert "Grant admin consent" in stage.hint
    assert xoauth2_peer.xoauth2_refusals == ["role"]


def test_expired_token_fails_authenticate_with_its_hint(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    idp.token_lifetime_s = -120
    try:
        settings = oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
        stage = failed(run(idp, settings, egress, pki))
    finally:
        idp.token_lifetime_s = 3600
    assert stage.name == "authenticate"
    assert stage.hint is not None and "token had expired" in stage.hint
    assert xoauth2_peer.xoauth2_refusals == ["expired"]


def test_token_never_appears_in_a_result(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    pki: Pki,
    egress: EgressPolicy,
) -> None:
    """A server that echoes what it was sent: neither the token nor the XOAUTH2 response
    (base64) may reach a stage."""
    with xoauth2_peer(pki, idp, "not-this-tenant") as peer:
        result = run(idp, oauth_settings(peer, tenant, oauth_app, oauth_cert), egress, pki)
    text = all_text(result)
    assert failed(result).name == "authenticate"
    assert "Bearer" not in text
    assert base64.b64encode(b"user=").decode()[:6] not in text


def test_unknown_app_fails_the_token_stage_before_any_connection(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    stranger = App("11111111-2222-3333-4444-555555555555", [oauth_cert.cert], [])
    settings = oauth_settings(xoauth2_peer, tenant, stranger, oauth_cert)
    stage = failed(run(idp, settings, egress, pki))
    assert stage.name == "token"
    assert stage.code == "AADSTS700016"
    assert xoauth2_peer.auth_attempts == []


def test_server_without_xoauth2_is_told_apart(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    starttls_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    settings = oauth_settings(starttls_peer, tenant, oauth_app, oauth_cert)
    stage = failed(run(idp, settings, egress, pki))
    assert stage.name == "authenticate"
    assert stage.detail.startswith("The server does not offer AUTH XOAUTH2")
    assert stage.hint is not None and "Authentication to Password" in stage.hint
    assert starttls_peer.auth_attempts == []


def test_a_connection_a_sender_keeps_open_signs_in_with_the_cached_token(
    idp: IdentityProvider,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    egress: EgressPolicy,
    pki: Pki,
) -> None:
    """What the worker does for each connection it opens: the test's SmtpRun, opened without
    an envelope; the second connection takes the token from the cache."""
    settings = oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
    cache = TokenCache()
    before = idp.token_requests
    for _ in range(2):
        run = SmtpRun(
            settings,
            egress=egress,
            budget_s=10.0,
            ssl_context=pki.client_context(),
            recipient=settings.sender_address,
            oauth=oauth_endpoints(idp),
            token_cache=cache,
        )
        try:
            run.start().open()
        finally:
            run.close()
        assert run.recorder.ok, run.recorder.stages
        assert [s.name for s in run.recorder.stages] == OAUTH_SMTP_STAGES[:7]
    assert "cached token" in run.recorder.stages[1].detail
    assert idp.token_requests == before + 1
    assert xoauth2_peer.auth_attempts == ["XOAUTH2", "XOAUTH2"]
