"""Certificate rollover through the API: a next certificate is uploaded beside the current one,
tested on its own against the local identity provider, then promoted (or dropped); refusals
say what to do; secrets never leave the service; only the server's own admins may do it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select, text

from elegere_widgets.client import Client
from elegere_widgets.errors import (
    Conflict,
    InvalidSettings,
    PermissionDenied,
    ReadOnlyServer,
    StaleVersion,
    TestRequired,
)
from elegere_widgets.models import (
    EmailServer,
    EmailServerPatch,
    GraphServerSpec,
    GraphSettingsView,
    SmtpSettings,
    SmtpSettingsView,
)
from elegere_widgets.server.seed import ORG_ID
from elegere_widgets.server.store.tables import AuditEvent
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_cer, to_pfx
from tests.fixtures.graph_servers import add_graph_server
from tests.fixtures.graph_servers import graph_spec as spec_with
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import service_settings
from tests.fixtures.service import RunningService, count_statements

SALES = "ws_sales"
PASSWORD = "pfx-Current-Marker-1"
NEXT_PASSWORD = "pfx-Next-Marker-2"


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-rollover-2026", key=rsa_key(40))


@pytest.fixture(scope="module")
def next_cert() -> CertAndKey:
    return make_cert("elegere-rollover-2027", key=rsa_key(41), days=730)


@pytest.fixture
def app(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey, next_cert: CertAndKey) -> App:
    """The app registration, with both certificates uploaded in Azure (step 1 of a rollover)."""
    return idp.add_app(tenant, certificates=[cert.cert, next_cert.cert])


@pytest.fixture
def service_settings_overrides(idp: IdentityProvider) -> dict[str, object]:
    return service_settings(idp)


def graph_spec(tenant: Tenant, app: App, cert: CertAndKey) -> GraphServerSpec:
    return spec_with(tenant, app, cert, password=PASSWORD)


def upload(client: Client, server: EmailServer, item: CertAndKey) -> EmailServer:
    return client.email_servers.upload_next_certificate(
        SALES,
        server.id,
        certificate=to_pfx(item, password=NEXT_PASSWORD),
        password=NEXT_PASSWORD,
        version=server.version,
    )


def graph_view(server: EmailServer) -> GraphSettingsView:
    assert isinstance(server.settings, GraphSettingsView)
    return server.settings


def sha256(item: CertAndKey) -> str:
    return item.cert.fingerprint(hashes.SHA256()).hex().upper()


def audit_actions(service: RunningService, server_id: str) -> list[str]:
    with service.ctx.sessions() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.email_server_id == server_id)
                .order_by(AuditEvent.id)
            )
        )


def test_the_next_certificate_is_shown_beside_the_current_one_never_its_secrets(
    admin: Client,
    service: RunningService,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, cert))
    uploaded = upload(admin, server, next_cert)
    assert uploaded.version == server.version + 1
    view = graph_view(uploaded)
    assert view.certificate_info is not None and view.certificate_info.thumbprint_sha256 == (
        sha256(cert)
    )
    assert view.next_certificate_info is not None
    assert view.next_certificate_info.thumbprint_sha256 == sha256(next_cert)
    assert "CN=elegere-rollover-2027" in view.next_certificate_info.subject
    assert view.next_certificate_info.days_left > view.certificate_info.days_left
    assert view.next_certificate_test is None  # not tested since it came
    assert uploaded.secrets_set == {
        "certificate": True,
        "certificate_password": True,
        "next_certificate": True,
        "next_certificate_password": True,
    }
    # The list answers what GET answers, and neither carries a secret.
    headers = {"Authorization": f"Bearer {service.tokens['admin@acme.example']}"}
    base = f"{service.url}/api/v1/workspaces/{SALES}/email-servers"
    listed = httpx.get(base, headers=headers)
    got = httpx.get(f"{base}/{server.id}", headers=headers)
    [shown] = [s for s in listed.json() if s["id"] == server.id]
    assert shown == got.json()
    next_b64 = base64.b64encode(to_pfx(next_cert, password=NEXT_PASSWORD)).decode()
    with service.ctx.engine.connect() as conn:
        raw = str(
            conn.execute(text("SELECT * FROM email_servers WHERE id = :i"), {"i": server.id}).one()
        )
    for text_ in (listed.text, got.text, raw):
        assert NEXT_PASSWORD not in text_ and PASSWORD not in text_
        assert next_b64[:40] not in text_
    assert "update" in audit_actions(service, server.id)


def test_the_next_certificate_is_checked_as_the_current_one_is(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, next_cert: CertAndKey
) -> None:
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, cert))

    def refused(settings: dict[str, object]) -> dict[str, str]:
        with pytest.raises(InvalidSettings) as info:
            admin.email_servers.update(
                SALES, server.id, EmailServerPatch(settings=settings), version=server.version
            )
        return {e.field: e.message for e in info.value.field_errors}

    wrong = refused(
        {
            "next_certificate": to_pfx(next_cert, password=NEXT_PASSWORD),
            "next_certificate_password": "nope",
        }
    )
    assert wrong["next_certificate_password"].startswith("Next Certificate: Certificate Password")
    assert "check it" in wrong["next_certificate_password"]
    bare = refused({"next_certificate": to_cer(next_cert)})
    assert "no private key" in bare["next_certificate"]
    same = refused(
        {"next_certificate": to_pfx(cert, password=PASSWORD), "next_certificate_password": PASSWORD}
    )
    assert "the certificate in use now" in same["next_certificate"]
    alone = refused({"next_certificate_password": NEXT_PASSWORD})
    assert "upload the next certificate's file too" in alone["next_certificate_password"]
    # A connection test and a new server sign in with the Certificate: no next one there.
    spec = graph_spec(tenant, app, cert)
    spec.settings.next_certificate = to_pfx(next_cert)  # type: ignore[assignment]
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.test(SALES, spec)
    assert "uploaded in the server's Update" in info.value.field_errors[0].message
    assert admin.email_servers.get(SALES, server.id).version == server.version  # nothing saved


def test_tested_then_promoted_the_next_certificate_becomes_the_current_one_in_one_change(
    admin: Client,
    service: RunningService,
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    server = upload(admin, add_graph_server(admin, SALES, graph_spec(tenant, app, cert)), next_cert)
    seen = len(idp.assertion_headers)
    streamed = []
    result = admin.email_servers.test_next_certificate(SALES, server.id, on_stage=streamed.append)
    assert result.ok, result.stages
    assert [s.name for s in result.stages] == ["certificate", "token"] == [s.name for s in streamed]
    assert "CN=elegere-rollover-2027" in result.stages[0].detail
    assert result.test_token is None  # it adds nothing: no receipt
    # The identity provider saw the next certificate sign in, named by its SHA-256 thumbprint.
    signed = [h["x5t#S256"].rstrip("=") for h in idp.assertion_headers[seen:]]
    expected = base64.urlsafe_b64encode(next_cert.cert.fingerprint(hashes.SHA256()))
    assert signed == [expected.rstrip(b"=").decode()]

    tested = admin.email_servers.get(SALES, server.id)
    assert tested.version == server.version  # a test changes no setting
    test = graph_view(tested).next_certificate_test
    assert test is not None and test.ok and test.detail == "passed"
    assert datetime.now(UTC) - test.at < timedelta(minutes=5)
    # The Update form's Test Connection (stored secrets) still tests the current certificate.
    retest = graph_spec(tenant, app, cert).model_copy(update={"server_id": server.id})
    retest.settings.certificate = None
    retest.settings.certificate_password = None
    again = admin.email_servers.test(SALES, retest)
    assert again.ok and "CN=elegere-rollover-2026" in again.stages[0].detail

    promoted = admin.email_servers.promote_next_certificate(
        SALES, server.id, version=tested.version
    )
    assert promoted.version == tested.version + 1
    view = graph_view(promoted)
    assert view.certificate_info is not None
    assert view.certificate_info.thumbprint_sha256 == sha256(next_cert)
    assert view.next_certificate_info is None and view.next_certificate_test is None
    assert promoted.secrets_set == {"certificate": True, "certificate_password": True}
    assert audit_actions(service, server.id)[-3:] == [
        "test_next_certificate",
        "test",
        "promote_certificate",
    ]
    # From now on the server signs in with the promoted certificate, even once Azure no longer
    # knows the old one.
    idp.revoke_certificate(app, cert.cert)
    after = admin.email_servers.test(SALES, retest)
    assert after.ok and "CN=elegere-rollover-2027" in after.stages[0].detail


def test_promoting_is_refused_until_that_very_certificate_passed_a_test(
    admin: Client,
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    app = idp.add_app(tenant, certificates=[cert.cert])  # the next one not in Azure yet
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, cert))
    with pytest.raises(Conflict) as none:
        admin.email_servers.promote_next_certificate(SALES, server.id, version=server.version)
    assert "holds no next certificate: upload one first" in str(none.value)

    server = upload(admin, server, next_cert)
    with pytest.raises(TestRequired) as untested:
        admin.email_servers.promote_next_certificate(SALES, server.id, version=server.version)
    assert "Test the next certificate of 'Sales Graph' first" in str(untested.value)

    failed = admin.email_servers.test_next_certificate(SALES, server.id)
    assert not failed.ok and failed.failed_stage is not None
    assert (failed.failed_stage.name, failed.failed_stage.code) == ("token", "AADSTS700027")
    with pytest.raises(TestRequired) as refused:
        admin.email_servers.promote_next_certificate(SALES, server.id, version=server.version)
    message = str(refused.value)
    assert "The last test of the next certificate of 'Sales Graph' failed" in message
    assert "Certificates & secrets" in message  # what to do: upload its .cer in Azure
    assert "test it again" in message
    view = graph_view(admin.email_servers.get(SALES, server.id))
    assert view.next_certificate_test is not None and not view.next_certificate_test.ok

    app.certificates.append(next_cert.cert)  # the admin uploads the .cer in Azure
    assert admin.email_servers.test_next_certificate(SALES, server.id).ok
    # Another file uploaded after the pass is untested again: a pass counts for its own file.
    other = make_cert("elegere-rollover-other", key=rsa_key(42))
    app.certificates.append(other.cert)
    replaced = upload(admin, admin.email_servers.get(SALES, server.id), other)
    assert graph_view(replaced).next_certificate_test is None
    with pytest.raises(TestRequired):
        admin.email_servers.promote_next_certificate(SALES, server.id, version=replaced.version)
    # A rename keeps a pass: the same certificate, tenant, app and account.
    assert admin.email_servers.test_next_certificate(SALES, server.id).ok
    renamed = admin.email_servers.update(
        SALES, server.id, EmailServerPatch(name="Sales Graph 2"), version=replaced.version
    )
    assert graph_view(renamed).next_certificate_test is not None
    with pytest.raises(StaleVersion):
        admin.email_servers.promote_next_certificate(SALES, server.id, version=replaced.version)
    promoted = admin.email_servers.promote_next_certificate(
        SALES, server.id, version=renamed.version
    )
    assert graph_view(promoted).certificate_info.thumbprint_sha256 == sha256(other)  # type: ignore[union-attr]


def test_dropping_forgets_the_next_certificate_and_keeps_the_current_one(
    admin: Client,
    service: RunningService,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    server = upload(admin, add_graph_server(admin, SALES, graph_spec(tenant, app, cert)), next_cert)
    dropped = admin.email_servers.drop_next_certificate(SALES, server.id, version=server.version)
    assert dropped.version == server.version + 1
    view = graph_view(dropped)
    assert view.next_certificate_info is None
    assert view.certificate_info is not None and view.certificate_info.thumbprint_sha256 == (
        sha256(cert)
    )
    assert dropped.secrets_set == {"certificate": True, "certificate_password": True}
    assert (
        "next_certificate_info"
        not in httpx.get(
            f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server.id}",
            headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
        ).json()["settings"]
    )
    assert audit_actions(service, server.id)[-1] == "drop_next_certificate"
    with pytest.raises(Conflict):
        admin.email_servers.drop_next_certificate(SALES, server.id, version=dropped.version)
    # The current certificate still signs in.
    retest = graph_spec(tenant, app, cert).model_copy(update={"server_id": server.id})
    assert admin.email_servers.test(SALES, retest).ok
    # Without If-Match a promote or a drop is refused (428), as an update is.
    r = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server.id}/next-certificate/promote",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 428


def test_only_the_servers_own_admins_roll_it_over(
    admin: Client,
    delegate: Client,
    analyst: Client,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    inherited = add_graph_server(delegate, ORG_ID, graph_spec(tenant, app, cert), org=True)
    org = delegate.organization_email_servers
    held = org.upload_next_certificate(
        ORG_ID,
        inherited.id,
        certificate=to_pfx(next_cert, password=NEXT_PASSWORD),
        password=NEXT_PASSWORD,
        version=inherited.version,
    )
    # The Workspace Admin sees both certificates of the inherited server, and changes nothing.
    seen = admin.email_servers.get(SALES, inherited.id)
    assert seen.inherited and graph_view(seen).next_certificate_info is not None
    for call in (
        lambda: admin.email_servers.test_next_certificate(SALES, inherited.id),
        lambda: admin.email_servers.promote_next_certificate(
            SALES, inherited.id, version=held.version
        ),
        lambda: admin.email_servers.drop_next_certificate(
            SALES, inherited.id, version=held.version
        ),
        lambda: upload(admin, held, next_cert),
    ):
        with pytest.raises(ReadOnlyServer) as info:
            call()
        assert "only the Organization's Admin or IT Delegates" in str(info.value)
    for who in (analyst, delegate):  # no Workspace Admin right on Sales
        with pytest.raises(PermissionDenied):
            who.email_servers.test_next_certificate(SALES, inherited.id)
    # The organization's Delegates roll it over.
    assert org.test_next_certificate(ORG_ID, inherited.id).ok
    promoted = org.promote_next_certificate(ORG_ID, inherited.id, version=held.version)
    assert graph_view(promoted).certificate_info.thumbprint_sha256 == sha256(next_cert)  # type: ignore[union-attr]


def test_an_expiring_certificate_with_a_tested_later_one_is_not_expiring(
    admin: Client,
    service: RunningService,
    idp: IdentityProvider,
    tenant: Tenant,
    next_cert: CertAndKey,
) -> None:
    soon = make_cert(
        "elegere-rollover-soon", key=rsa_key(43), not_after=datetime.now(UTC) + timedelta(days=20)
    )
    short = make_cert(
        "elegere-rollover-short", key=rsa_key(44), not_after=datetime.now(UTC) + timedelta(days=10)
    )
    app = idp.add_app(tenant, certificates=[soon.cert, next_cert.cert, short.cert])
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, soon))

    def health(server_id: str) -> tuple[str, str]:
        listed = {s.id: s.health for s in admin.email_servers.list(SALES)}
        got = admin.email_servers.get(SALES, server_id).health
        assert got is not None and listed[server_id] == got
        return got.status, got.reason

    status, reason = health(server.id)
    assert status == "expiring" and "upload a renewed one as the next certificate" in reason
    before = count_statements(service, lambda: admin.email_servers.list(SALES))
    server = upload(admin, server, next_cert)
    assert health(server.id)[0] == "expiring"  # held, not tested: it may not be accepted
    assert admin.email_servers.test_next_certificate(SALES, server.id).ok
    assert health(server.id) == ("healthy", "The last check passed.")
    assert count_statements(service, lambda: admin.email_servers.list(SALES)) == before
    # A tested next certificate that ends sooner than the current one covers nothing.
    server = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"next_certificate": to_pfx(short)}),
        version=admin.email_servers.get(SALES, server.id).version,
    )
    assert admin.email_servers.test_next_certificate(SALES, server.id).ok
    assert health(server.id)[0] == "expiring"


def test_an_oauth_smtp_server_rolls_over_with_exchanges_scope(
    admin: Client,
    service: RunningService,
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    next_cert: CertAndKey,
) -> None:
    from elegere_widgets.server.scope import Scope
    from elegere_widgets.server.services.email_servers import EmailServerService

    app = idp.add_app(tenant, certificates=[cert.cert, next_cert.cert], roles=[])
    settings = SmtpSettings(
        server="smtp.office365.com",
        port=587,
        use_ssl=True,
        account=SALES_MAILBOX,
        sender_address=SALES_MAILBOX,
        authentication="oauth2",
        tenant_id=tenant.id,
        client_id=app.client_id,
        certificate=to_pfx(cert, password=PASSWORD),
        certificate_password=PASSWORD,
    )
    with service.ctx.sessions() as s:  # its full test needs Exchange Online: added directly
        server = EmailServerService(service.ctx, s, Scope(ORG_ID, SALES, "Sales")).create(
            "smtp", "Sales 365", settings, last_test=None
        )
    server = upload(admin, server, next_cert)
    result = admin.email_servers.test_next_certificate(SALES, server.id)
    assert result.ok and result.server_type == "smtp"
    assert [s.name for s in result.stages] == ["certificate", "token"]
    promoted = admin.email_servers.promote_next_certificate(
        SALES, server.id, version=server.version
    )
    assert isinstance(promoted.settings, SmtpSettingsView)
    assert promoted.settings.certificate_info is not None
    assert promoted.settings.certificate_info.thumbprint_sha256 == sha256(next_cert)
    # Back to a password: the next certificate goes with the rest of OAuth 2.0's fields.
    server = upload(admin, promoted, cert)
    back = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"authentication": "password", "password": "pw"}),
        version=server.version,
    )
    assert back.secrets_set == {"password": True}
    with pytest.raises(Conflict) as info:
        admin.email_servers.test_next_certificate(SALES, server.id)
    assert "signs in with a password" in str(info.value)
