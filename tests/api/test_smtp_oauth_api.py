"""SMTP servers with OAuth 2.0 (Microsoft 365) through the API: test, add, send-test, update
(switching Authentication both ways) and the validation of the OAuth fields, against the local
identity provider and an aiosmtpd peer that verifies the XOAUTH2 token."""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import text

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch, SmtpServerSpec
from tests.fixtures.graph_certs import CertAndKey, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, Tenant
from tests.fixtures.oauth import OAUTH_CERT_CN, OAUTH_SMTP_STAGES, PFX_PASSWORD, oauth_settings
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import PASSWORD, SmtpPeer

SALES = "ws_sales"


@pytest.fixture
def service_settings_overrides(oauth_service_settings: dict[str, object]) -> dict[str, object]:
    return oauth_service_settings


def oauth_spec(peer: SmtpPeer, tenant: Tenant, app: App, cert: CertAndKey) -> SmtpServerSpec:
    return SmtpServerSpec(name="Sales 365", settings=oauth_settings(peer, tenant, app, cert))


def test_oauth_smtp_is_tested_added_sends_and_never_shows_its_secrets(
    admin: Client,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
    xoauth2_peer: SmtpPeer,
    service: RunningService,
) -> None:
    spec = oauth_spec(xoauth2_peer, tenant, oauth_app, oauth_cert)
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    assert [s.name for s in result.stages][:3] == ["certificate", "token", "resolve"]
    assert result.test_token
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token)
    assert server.secrets_set == {"certificate": True, "certificate_password": True}
    shown = server.settings
    assert isinstance(shown, type(server.settings))
    assert shown.authentication == "oauth2"  # type: ignore[union-attr]
    assert shown.tenant_id == tenant.id and shown.client_id == oauth_app.client_id
    info = shown.certificate_info
    assert info is not None and f"CN={OAUTH_CERT_CN}" in info.subject
    assert info.thumbprint_sha256 == oauth_cert.cert.fingerprint(hashes.SHA256()).hex().upper()

    sent = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert sent.ok, sent.detail
    # The app's sign-in, then the one SMTP session that carries the message.
    assert [s.name for s in sent.stages] == [*OAUTH_SMTP_STAGES, "data"]
    assert sent.stages[6].detail.startswith("XOAUTH2: 235")
    assert xoauth2_peer.messages[-1].login == SALES_MAILBOX
    assert xoauth2_peer.auth_attempts == ["XOAUTH2", "XOAUTH2"]

    r = httpx.get(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server.id}",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    pfx_b64 = base64.b64encode(to_pfx(oauth_cert, password=PFX_PASSWORD)).decode()
    assert PFX_PASSWORD not in r.text and pfx_b64[:40] not in r.text
    with service.ctx.engine.connect() as conn:
        raw = str(
            conn.execute(text("SELECT * FROM email_servers WHERE id = :i"), {"i": server.id}).one()
        )
    assert PFX_PASSWORD not in raw and pfx_b64[:40] not in raw


def test_oauth_fields_are_validated_like_graph(
    xoauth2_peer: SmtpPeer, oauth_app: App, service: RunningService
) -> None:
    def errors(**changes: object) -> dict[str, str]:
        settings = {
            "server": xoauth2_peer.host,
            "port": xoauth2_peer.port,
            "use_ssl": True,
            "account": SALES_MAILBOX,
            "sender_address": SALES_MAILBOX,
            "authentication": "oauth2",
            **changes,
        }
        r = httpx.post(
            f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test",
            json={"name": "x", "type": "smtp", "settings": settings},
            headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
        )
        assert r.status_code == 422, r.text
        return {e["field"]: e["message"] for e in r.json()["errors"]}

    assert errors(tenant_id="contoso.onmicrosoft.com", client_id="not-a-guid")[
        "client_id"
    ].startswith("Client ID must be a GUID")
    missing = errors(password="secret")
    assert missing["tenant_id"] == "Enter the Tenant ID: OAuth 2.0 needs it."
    assert missing["client_id"] == "Enter the Client ID: OAuth 2.0 needs it."
    assert "Password is not used with OAuth 2.0" in missing["password"]
    no_certificate = errors(tenant_id="contoso.onmicrosoft.com", client_id=oauth_app.client_id)
    assert no_certificate["certificate"].startswith("Upload the certificate")
    stray = errors(authentication="password", tenant_id="contoso.onmicrosoft.com")
    assert stray["tenant_id"].startswith("Tenant ID is only used with OAuth 2.0")


def test_password_server_switches_to_oauth_and_leaves_its_password_behind(
    admin: Client, tenant: Tenant, oauth_app: App, oauth_cert: CertAndKey, xoauth2_peer: SmtpPeer
) -> None:
    spec = xoauth2_peer.spec(port=xoauth2_peer.port)
    spec.settings.account = SALES_MAILBOX
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token or "")
    assert server.secrets_set == {"password": True}
    oauth = oauth_spec(xoauth2_peer, tenant, oauth_app, oauth_cert).settings
    switched = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(
            settings={
                "authentication": "oauth2",
                "tenant_id": oauth.tenant_id,
                "client_id": oauth.client_id,
                "certificate": oauth.certificate,
                "certificate_password": oauth.certificate_password,
            }
        ),
        version=server.version,
    )
    assert switched.secrets_set == {"certificate": True, "certificate_password": True}
    sent = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert sent.ok, sent.detail
    assert xoauth2_peer.auth_attempts[-1] == "XOAUTH2"
    back = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"authentication": "password", "password": PASSWORD}),
        version=switched.version,
    )
    assert back.secrets_set == {"password": True}
    assert back.settings.model_dump().get("tenant_id") is None
