"""SMTP servers with OAuth 2.0 (Microsoft 365) through the API: test, add, send-test, update
(switching Authentication both ways) and the validation of the OAuth fields, against the local
identity provider and an aiosmtpd peer that verifies the XOAUTH2 token."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import text

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch, SmtpServerSpec, SmtpSettings
from tests.fixtures.certs import Pki
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import PASSWORD, SmtpPeer, XOAuth2Check

SALES = "ws_sales"
PFX_PASSWORD = "pfx-Smtp-Marker-Passw0rd"


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-smtp-oauth", key=rsa_key(32))


@pytest.fixture
def app(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey) -> App:
    return idp.add_app(tenant, certificates=[cert.cert], roles=[])


@pytest.fixture
def exchange(pki: Pki, idp: IdentityProvider, tenant: Tenant) -> Iterator[SmtpPeer]:
    check = XOAuth2Check(idp.signing_key.public_key(), tenant.id, SALES_MAILBOX)
    with SmtpPeer(
        "starttls", pki=pki, account=SALES_MAILBOX, password=PASSWORD, xoauth2=check
    ) as peer:
        yield peer


@pytest.fixture
def service_settings_overrides(
    idp: IdentityProvider, trusting_test_ca: dict[str, object]
) -> dict[str, object]:
    return {
        **trusting_test_ca,
        "graph_authority_host": idp.url,
        "graph_base_url": idp.graph_base_url,
        "graph_ca_file": idp.ca_bundle,
    }


def oauth_spec(peer: SmtpPeer, tenant: Tenant, app: App, cert: CertAndKey) -> SmtpServerSpec:
    return SmtpServerSpec(
        name="Sales 365",
        settings=SmtpSettings(
            server=peer.host,
            port=peer.port,
            use_ssl=True,
            account=SALES_MAILBOX,
            sender_address=SALES_MAILBOX,
            authentication="oauth2",
            tenant_id=tenant.id,
            client_id=app.client_id,
            certificate=to_pfx(cert, password=PFX_PASSWORD),
            certificate_password=PFX_PASSWORD,
        ),
    )


def test_oauth_smtp_is_tested_added_sends_and_never_shows_its_secrets(
    admin: Client,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    exchange: SmtpPeer,
    service: RunningService,
) -> None:
    spec = oauth_spec(exchange, tenant, app, cert)
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    assert [s.name for s in result.stages][:3] == ["certificate", "token", "resolve"]
    assert result.test_token
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token)
    assert server.secrets_set == {"certificate": True, "certificate_password": True}
    shown = server.settings
    assert isinstance(shown, type(server.settings))
    assert shown.authentication == "oauth2"  # type: ignore[union-attr]
    assert shown.tenant_id == tenant.id and shown.client_id == app.client_id
    info = shown.certificate_info
    assert info is not None and "CN=elegere-smtp-oauth" in info.subject
    assert info.thumbprint_sha256 == cert.cert.fingerprint(hashes.SHA256()).hex().upper()

    sent = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert sent.ok, sent.detail
    assert exchange.messages[-1].login == SALES_MAILBOX
    assert exchange.auth_attempts == ["XOAUTH2", "XOAUTH2"]

    r = httpx.get(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server.id}",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    pfx_b64 = base64.b64encode(to_pfx(cert, password=PFX_PASSWORD)).decode()
    assert PFX_PASSWORD not in r.text and pfx_b64[:40] not in r.text
    with service.ctx.engine.connect() as conn:
        raw = str(
            conn.execute(text("SELECT * FROM email_servers WHERE id = :i"), {"i": server.id}).one()
        )
    assert PFX_PASSWORD not in raw and pfx_b64[:40] not in raw


def test_oauth_fields_are_validated_like_graph(
    exchange: SmtpPeer, app: App, service: RunningService
) -> None:
    def errors(**changes: object) -> dict[str, str]:
        settings = {
            "server": exchange.host,
            "port": exchange.port,
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
    no_certificate = errors(tenant_id="contoso.onmicrosoft.com", client_id=app.client_id)
    assert no_certificate["certificate"].startswith("Upload the certificate")
    stray = errors(authentication="password", tenant_id="contoso.onmicrosoft.com")
    assert stray["tenant_id"].startswith("Tenant ID is only used with OAuth 2.0")


def test_password_server_switches_to_oauth_and_leaves_its_password_behind(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, exchange: SmtpPeer
) -> None:
    spec = exchange.spec(port=exchange.port)
    spec.settings.account = SALES_MAILBOX
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token or "")
    assert server.secrets_set == {"password": True}
    oauth = oauth_spec(exchange, tenant, app, cert).settings
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
    assert exchange.auth_attempts[-1] == "XOAUTH2"
    back = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"authentication": "password", "password": PASSWORD}),
        version=switched.version,
    )
    assert back.secrets_set == {"password": True}
    assert back.settings.model_dump().get("tenant_id") is None
