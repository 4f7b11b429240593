"""The Microsoft Graph connection test and sending, against a local identity provider and
Graph endpoint (tests/fixtures/identity_provider.py) that verify what msal sends.

Nothing here reaches beyond 127.0.0.1: every call names the local authority and Graph URL.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

import certifi
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from elegere_widgets.connectivity.graph import GRAPH_SCOPE, send_graph, test_graph
from elegere_widgets.models import ConnectionTestResult, GraphSettings, Stage
from tests.fixtures.graph_certs import CertAndKey, make_cert, multi_key_pfx, rsa_key, to_pfx
from tests.fixtures.identity_provider import (
    SALES_MAILBOX,
    App,
    IdentityProvider,
    NeverAnswers,
    Tenant,
    client_assertion,
    sign_jwt,
)

PASSWORD = "pfx-Passw0rd"
ACCOUNT = SALES_MAILBOX
STAGES = ["certificate", "token", "mailbox", "send_permission"]


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-graph-app", key=rsa_key(20))


@pytest.fixture(scope="module")
def other_cert() -> CertAndKey:
    return make_cert("someone-else", key=rsa_key(21))


@pytest.fixture
def app(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey) -> App:
    return idp.add_app(tenant, certificates=[cert.cert], roles=["Mail.Send", "User.Read.All"])


def graph_settings(
    tenant: Tenant | str,
    app: App | str,
    certificate: bytes,
    *,
    password: str | None = PASSWORD,
    alias: str | None = None,
    account: str = ACCOUNT,
) -> GraphSettings:
    return GraphSettings.model_validate(
        {
            "account": account,
            "tenant_id": tenant.id if isinstance(tenant, Tenant) else tenant,
            "client_id": app.client_id if isinstance(app, App) else app,
            "certificate": certificate,
            "certificate_alias": alias,
            "certificate_password": password,
        }
    )


def run(idp: IdentityProvider, settings: GraphSettings, **kwargs: object) -> ConnectionTestResult:
    options: dict[str, object] = {
        "authority_host": idp.url,
        "graph_base_url": idp.graph_base_url,
        "ca_bundle": idp.ca_bundle,
        "budget_s": 10.0,
    }
    options.update(kwargs)
    return test_graph(settings, **options)  # type: ignore[arg-type]


def failed(result: ConnectionTestResult) -> Stage:
    assert not result.ok
    stage = result.failed_stage
    assert stage is not None
    return stage


def all_text(result: ConnectionTestResult) -> str:
    return " ".join(f"{s.detail} {s.hint or ''}" for s in result.stages)


# ---------------------------------------------------------------- passing


def test_success(idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey) -> None:
    seen: list[Stage] = []
    settings = graph_settings(tenant, app, to_pfx(cert, password=PASSWORD))
    result = run(idp, settings, progress=seen.append)
    assert result.ok, result.stages
    assert result.server_type == "microsoft_graph"
    assert [s.name for s in result.stages] == STAGES
    assert seen == result.stages
    assert result.test_token is None  # the service adds it
    certificate, token, mailbox, permission = result.stages
    assert "CN=elegere-graph-app" in certificate.detail
    assert app.client_id in token.detail
    assert mailbox.detail == f"Sales <{ACCOUNT}>"
    assert "Mail.Send" in permission.detail
    assert PASSWORD not in all_text(result)
    # What Entra ID expects of a certificate credential: PS256, named by its SHA-256 thumbprint.
    header = idp.assertion_headers[-1]
    assert header["alg"] == "PS256"
    assert header["x5t#S256"].rstrip("=") == idp_thumbprint(cert)


def idp_thumbprint(item: CertAndKey) -> str:
    digest = item.cert.fingerprint(hashes.SHA256())
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_success_with_tenant_domain_and_pem(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    settings = graph_settings(tenant.domains[0], app, cert.key_pem + cert.cert_pem, password=None)
    assert run(idp, settings).ok


def test_app_that_may_not_read_users_passes_with_mailbox_unchecked(
    idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    send_only = idp.add_app(tenant, certificates=[cert.cert], roles=["Mail.Send"])
    result = run(idp, graph_settings(tenant, send_only, to_pfx(cert, password=PASSWORD)))
    assert result.ok
    assert result.stages[2].detail.startswith("Not checked")


# ---------------------------------------------------------------- the identity provider says no


def test_unknown_tenant(idp: IdentityProvider, app: App, cert: CertAndKey) -> None:
    unknown = str(uuid.uuid4())
    stage = failed(run(idp, graph_settings(unknown, app, to_pfx(cert, password=PASSWORD))))
    assert stage.name == "token"
    assert stage.code == "AADSTS90002"
    assert unknown in stage.detail
    assert stage.hint is not None and "Tenant ID" in stage.hint


def test_unknown_client(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey) -> None:
    settings = graph_settings(tenant, str(uuid.uuid4()), to_pfx(cert, password=PASSWORD))
    stage = failed(run(idp, settings))
    assert (stage.name, stage.code) == ("token", "AADSTS700016")
    assert stage.hint is not None and "Client ID" in stage.hint


def test_certificate_not_registered_for_the_app(
    idp: IdentityProvider, tenant: Tenant, app: App, other_cert: CertAndKey
) -> None:
    result = run(idp, graph_settings(tenant, app, to_pfx(other_cert, password=PASSWORD)))
    stage = failed(result)
    assert (stage.name, stage.code) == ("token", "AADSTS700027")
    assert stage.hint is not None
    assert "Certificates & secrets" in stage.hint
    sha1 = result.stages[0].detail.split("thumbprint ")[1].split(",")[0]
    assert sha1 in stage.hint  # the thumbprint to look for in the portal


# ---------------------------------------------------------------- the certificate says no


def test_expired_certificate_fails_before_asking_for_a_token(
    idp: IdentityProvider, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    old = make_cert(
        "expired-app",
        key=rsa_key(22),
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    expired_app = idp.add_app(tenant, certificates=[old.cert])
    before = idp.token_requests
    stage = failed(run(idp, graph_settings(tenant, expired_app, to_pfx(old, password=PASSWORD))))
    assert stage.name == "certificate"
    assert "expired" in stage.hint  # type: ignore[operator]
    assert idp.token_requests == before


def test_wrong_pfx_password(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    settings = graph_settings(tenant, app, to_pfx(cert, password=PASSWORD), password="guess-1")
    result = run(idp, settings)
    stage = failed(result)
    assert stage.name == "certificate"
    assert "Certificate Password" in (stage.hint or "")
    assert "guess-1" not in all_text(result) and PASSWORD not in all_text(result)


def test_multi_key_pfx_with_alias(
    idp: IdentityProvider, tenant: Tenant, cert: CertAndKey, other_cert: CertAndKey
) -> None:
    second_app = idp.add_app(tenant, certificates=[other_cert.cert])
    data = multi_key_pfx([("old-key", cert), ("graph-2026", other_cert)], password=PASSWORD)
    result = run(idp, graph_settings(tenant, second_app, data, alias="graph-2026"))
    assert result.ok, result.stages
    assert "graph-2026" in result.stages[0].detail


def test_multi_key_pfx_without_alias(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey, other_cert: CertAndKey
) -> None:
    data = multi_key_pfx([("old-key", cert), ("graph-2026", other_cert)], password=PASSWORD)
    stage = failed(run(idp, graph_settings(tenant, app, data)))
    assert stage.name == "certificate"
    assert "'old-key', 'graph-2026'" in (stage.hint or "")


def test_no_certificate(idp: IdentityProvider, tenant: Tenant, app: App) -> None:
    settings = GraphSettings.model_validate(
        {"account": ACCOUNT, "tenant_id": tenant.id, "client_id": app.client_id}
    )
    assert failed(run(idp, settings)).name == "certificate"


# ---------------------------------------------------------------- Graph says no


def test_mailbox_missing(idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey) -> None:
    settings = graph_settings(
        tenant, app, to_pfx(cert, password=PASSWORD), account="nobody@contoso.example"
    )
    stage = failed(run(idp, settings))
    assert (stage.name, stage.code) == ("mailbox", "Request_ResourceNotFound")
    assert "Account" in (stage.hint or "")


def test_token_without_mail_send_passes_and_says_only_a_send_can_tell(
    idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    # RBAC for Applications (Microsoft's advice) grants sending in Exchange, not in the token:
    # refusing such a token would refuse the least-privilege setup.
    reader = idp.add_app(tenant, certificates=[cert.cert], roles=["User.Read.All"])
    result = run(idp, graph_settings(tenant, reader, to_pfx(cert, password=PASSWORD)))
    assert result.ok, result
    stage = result.stages[-1]
    assert stage.name == "send_permission"
    assert stage.detail == (
        "Not granted for the whole tenant (the token's application permissions: User.Read.All): "
        f"sending as {ACCOUNT} needs Application Mail.Send for this app in Exchange's RBAC for "
        "Applications; Send test email checks it"
    )


def test_app_scoped_to_the_mailbox_with_rbac_for_applications_sends(
    idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    scoped = idp.add_app(tenant, certificates=[cert.cert], roles=[])
    idp.add_mailbox(tenant, "shop@contoso.example", rbac_mail_send=[scoped.client_id])
    settings = graph_settings(
        tenant, scoped, to_pfx(cert, password=PASSWORD), account="shop@contoso.example"
    )
    assert run(idp, settings).ok
    seen: list[Stage] = []
    outcome = send_graph(
        settings,
        to="someone@example.net",
        subject="s",
        body="b",
        authority_host=idp.url,
        graph_base_url=idp.graph_base_url,
        ca_bundle=idp.ca_bundle,
        progress=seen.append,
    )
    assert outcome.ok, outcome.detail
    # Stage by stage as they end, as a test's: the sign-in, then the message.
    assert [s.name for s in seen] == ["certificate", "token", "send"]
    assert seen == outcome.stages and seen[-1].code == "202"
    assert outcome.detail == seen[-1].detail


# ---------------------------------------------------------------- time and trust


@pytest.mark.slow
def test_identity_provider_that_never_answers_fails_within_budget(
    tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    with NeverAnswers() as silent:
        started = time.monotonic()
        result = test_graph(
            graph_settings(tenant, app, to_pfx(cert, password=PASSWORD)),
            authority_host=silent.url,
            graph_base_url=f"{silent.url}/v1.0",
            budget_s=3,
        )
        took = time.monotonic() - started
    stage = failed(result)
    assert stage.name == "token"
    assert "No answer" in stage.detail and "3 s" in stage.detail
    assert 2.5 < took < 4.0


def test_certificate_stage_runs_inside_the_budget(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    # Allowed, but slow to open: 200,000 derivation rounds for the key, the certificates and
    # the MAC. With a budget far shorter than that, the certificate stage is what runs out.
    slow = pkcs12.serialize_key_and_certificates(
        None,
        cert.key,
        cert.cert,
        None,
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(200_000)
        .build(PASSWORD.encode()),
    )
    before = idp.token_requests
    stage = failed(run(idp, graph_settings(tenant, app, slow), budget_s=0.01))
    assert stage.name == "certificate"
    assert "within the time budget (0.01 s)" in stage.detail
    assert idp.token_requests == before


def test_ca_bundle_wins_over_the_environment(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # REQUESTS_CA_BUNDLE would replace msal's verify= if the session trusted the environment
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    assert run(idp, graph_settings(tenant, app, to_pfx(cert, password=PASSWORD))).ok


def test_untrusted_identity_provider_certificate(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", idp.ca_bundle)  # not trusted: env is ignored
    result = run(idp, graph_settings(tenant, app, to_pfx(cert, password=PASSWORD)), ca_bundle=None)
    stage = failed(result)
    assert stage.name == "token"
    assert stage.detail.startswith("TLS with 127.0.0.1")


# ---------------------------------------------------------------- sending


def test_send_graph_is_accepted_and_recorded(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    outcome = send_graph(
        graph_settings(tenant, app, to_pfx(cert, password=PASSWORD)),
        to="someone@example.net",
        subject="Elegere test message",
        body="It works.",
        authority_host=idp.url,
        graph_base_url=idp.graph_base_url,
        ca_bundle=idp.ca_bundle,
    )
    assert outcome.ok, outcome.detail
    assert "HTTP 202" in outcome.detail and "not yet delivered" in outcome.detail
    mail = next(m for m in idp.sent if m.subject == "Elegere test message")
    assert (mail.tenant_id, mail.mailbox, mail.client_id) == (tenant.id, ACCOUNT, app.client_id)
    assert mail.to == ["someone@example.net"]
    assert (mail.body, mail.content_type) == ("It works.", "Text")


#: What a 403 to sendMail advises: the app scoped to the mailbox with RBAC for Applications.
SCOPE_TO_MAILBOX = (
    "Exchange does not let this app send as {account}. Give the app this mailbox with RBAC for "
    "Applications (Application Access Policies are deprecated) rather than Mail.Send for the "
    "whole tenant: in Exchange Online PowerShell run New-ManagementScope -Name "
    '"elegere {account}" -RecipientRestrictionFilter "PrimarySmtpAddress -eq \'{account}\'", '
    'then New-ManagementRoleAssignment -Role "Application Mail.Send" -App {client_id} '
    '-CustomResourceScope "elegere {account}" (once New-ServicePrincipal -AppId {client_id} '
    "has registered the app in Exchange); if an application access policy still names this "
    "app, add {account} to it or remove it."
)
#: Graph's words when Exchange does not let the app send as the mailbox.
SEND_AS_DENIED = (
    "HTTP 403: The user account which was used to submit this request does not have the right "
    "to send mail on behalf of the specified sending account., Cannot submit message."
)
ACCESS_POLICY_DENIED = (
    "HTTP 403: Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
    "AccessPolicy settings."
)


@pytest.mark.parametrize(
    ("refusal", "graph_says"),
    [("send_as_denied", SEND_AS_DENIED), ("blocked_apps", ACCESS_POLICY_DENIED)],
)
def test_send_graph_refused_the_mailbox_says_how_to_scope_the_app_to_it(
    refusal: str, graph_says: str, idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    idp.add_mailbox(tenant, "ceo@contoso.example", **{refusal: [app.client_id]})
    outcome = send_graph(
        graph_settings(tenant, app, to_pfx(cert, password=PASSWORD), account="ceo@contoso.example"),
        to="someone@example.net",
        subject="s",
        body="b",
        authority_host=idp.url,
        graph_base_url=idp.graph_base_url,
        ca_bundle=idp.ca_bundle,
    )
    assert not outcome.ok
    hint = SCOPE_TO_MAILBOX.format(account="ceo@contoso.example", client_id=app.client_id)
    assert outcome.detail == f"Failed at send: {graph_says} {hint}"
    assert [(s.name, s.ok) for s in outcome.stages] == [
        ("certificate", True),
        ("token", True),
        ("send", False),
    ]
    assert (outcome.stages[-1].detail, outcome.stages[-1].hint) == (graph_says, hint)


def test_send_graph_without_mail_send(
    idp: IdentityProvider, tenant: Tenant, cert: CertAndKey
) -> None:
    reader = idp.add_app(tenant, certificates=[cert.cert], roles=["User.Read.All"])
    outcome = send_graph(
        graph_settings(tenant, reader, to_pfx(cert, password=PASSWORD)),
        to="someone@example.net",
        subject="s",
        body="b",
        authority_host=idp.url,
        graph_base_url=idp.graph_base_url,
        ca_bundle=idp.ca_bundle,
    )
    assert not outcome.ok
    assert outcome.detail == (
        "Failed at send: HTTP 403: Access is denied. Check credentials and try again. "
        f"Give the app sending as {ACCOUNT}: best scoped to that mailbox with RBAC for "
        f'Applications (New-ManagementRoleAssignment -Role "Application Mail.Send" -App '
        f"{reader.client_id} with a management scope), or for every mailbox of the tenant: in "
        "the app registration open API permissions → Add a permission → Microsoft Graph → "
        "Application permissions → Mail.Send, then Grant admin consent."
    )


def test_send_graph_never_raises_on_network_trouble(
    tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    with NeverAnswers() as silent:
        outcome = send_graph(
            graph_settings(tenant, app, to_pfx(cert, password=PASSWORD)),
            to="someone@example.net",
            subject="s",
            body="b",
            authority_host=silent.url,
            graph_base_url=f"{silent.url}/v1.0",
            budget_s=1,
        )
    assert not outcome.ok
    assert outcome.detail.startswith("Failed at token: No answer")


# ---------------------------------------------------------------- the fake really checks


def post_token(
    idp: IdentityProvider, tenant: Tenant, app: App, assertion: str
) -> dict[str, object]:
    response = requests.post(
        f"{idp.url}/{tenant.id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
            "scope": GRAPH_SCOPE,
        },
        verify=idp.ca_bundle,
        timeout=5,
    )
    body = response.json()
    assert isinstance(body, dict)
    return body


def token_endpoint(idp: IdentityProvider, tenant: Tenant) -> str:
    return f"{idp.url}/{tenant.id}/oauth2/v2.0/token"


def test_fake_accepts_rs256_with_sha1_thumbprint(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    assertion = client_assertion(
        cert,
        client_id=app.client_id,
        alg="RS256",
        x5t=True,
        x5t_s256=False,
        audience=token_endpoint(idp, tenant),
    )
    assert "access_token" in post_token(idp, tenant, app, assertion)


def aadsts(body: dict[str, object]) -> int:
    codes = body.get("error_codes")
    assert isinstance(codes, list)
    return int(codes[0])


def test_fake_rejects_a_tampered_signature(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    good = client_assertion(cert, client_id=app.client_id, audience=token_endpoint(idp, tenant))
    head, claims, signature = good.split(".")
    tampered = f"{head}.{claims}.{signature[:-6]}AAAAAA"
    assert aadsts(post_token(idp, tenant, app, tampered)) == 700027


def test_fake_rejects_a_key_posing_as_the_registered_certificate(
    idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey, other_cert: CertAndKey
) -> None:
    impostor = CertAndKey(cert.cert, other_cert.key)  # registered thumbprint, someone else's key
    assertion = client_assertion(
        impostor, client_id=app.client_id, audience=token_endpoint(idp, tenant)
    )
    body = post_token(idp, tenant, app, assertion)
    assert aadsts(body) == 700027
    assert "invalid signature" in str(body["error_description"])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"lifetime_s": -60}, 700024),
        ({"audience": "https://login.microsoftonline.com/x/oauth2/v2.0/token"}, 700212),
        ({"claims": {"iss": "00000000-0000-0000-0000-000000000000"}}, 700021),
    ],
    ids=["expired", "audience", "issuer"],
)
def test_fake_checks_the_claims(
    idp: IdentityProvider,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    change: dict[str, object],
    code: int,
) -> None:
    options: dict[str, object] = {
        "client_id": app.client_id,
        "audience": token_endpoint(idp, tenant),
    }
    options.update(change)
    assertion = client_assertion(cert, **options)  # type: ignore[arg-type]
    assert aadsts(post_token(idp, tenant, app, assertion)) == code


def test_fake_refuses_an_expired_registered_certificate(
    idp: IdentityProvider, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    old = make_cert(
        "lapsed",
        key=rsa_key(22),
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    lapsed = idp.add_app(tenant, certificates=[old.cert])
    assertion = client_assertion(
        old, client_id=lapsed.client_id, audience=token_endpoint(idp, tenant)
    )
    body = post_token(idp, tenant, lapsed, assertion)
    assert aadsts(body) == 700027 and "expired" in str(body["error_description"])


def test_fake_graph_refuses_a_token_it_did_not_issue(idp: IdentityProvider, tenant: Tenant) -> None:
    forged = sign_jwt(
        {
            "aud": "https://graph.microsoft.com",
            "tid": tenant.id,
            "roles": ["Mail.Send", "User.Read.All"],
            "exp": time.time() + 600,
        },
        rsa_key(21),  # other_cert's key: a key the provider never issued with
    )
    response = requests.get(
        f"{idp.graph_base_url}/users/{ACCOUNT}",
        verify=idp.ca_bundle,
        headers={"Authorization": f"Bearer {forged}"},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
