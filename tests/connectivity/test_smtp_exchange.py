"""Exchange Online's replies, word for word as tenants answer them, and the advice each gets.

The peers are aiosmtpd (tests/fixtures/smtp.py) answering with Exchange's exact texts at the
stage Exchange answers them, or a raw socket for a greeting (tests/hostile/smtp_servers.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from elegere_widgets.connectivity import EgressPolicy
from elegere_widgets.connectivity.smtp import send_smtp, test_smtp
from elegere_widgets.connectivity.smtp_hints import (
    BASIC_AUTH_OFF,
    exchange_password_note,
    is_exchange_online,
)
from elegere_widgets.models import ConnectionTestResult, SmtpSettings, Stage
from tests.fixtures.certs import Pki, make_server_certificate
from tests.fixtures.graph_certs import CertAndKey
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import oauth_endpoints, oauth_settings, xoauth2_peer
from tests.fixtures.smtp import SmtpPeer
from tests.hostile.smtp_servers import HostileServer, garbage_banner

# Exchange Online's replies, as tenants answer them (the bracketed server names vary).
BASIC_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
    "[PN0PR01CA0024.INDPRD01.PROD.OUTLOOK.COM 2025-01-26T18:54:30.055Z 08DD3DD7D75D7743]"
)
SMTP_AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
    "[MN2PR05CA0004.namprd05.prod.outlook.com 2023-09-12T20:59:57.214Z 08DBB276B7E699C4]"
)
NOT_SUPPORTED = "550 5.7.30 Basic authentication is not supported for Client Submission."
UNSUCCESSFUL = "535 5.7.3 Authentication unsuccessful [BN3PR03CA0067.namprd03.prod.outlook.com]"
NOT_AUTHENTICATED = (
    "530 5.7.57 Client not authenticated to send mail. "
    "[US22278CA0034.US7P278.PROD.OUTLOOK.COM 2024-10-24T09:08:15.000Z 08DCF3C7E1A2B3C4]"
)
NO_SEND_AS = (
    "550 5.7.60 SMTP; Client does not have permissions to send as this sender "
    "[AM0PR02MB5523.eurprd02.prod.outlook.com]"
)
SEND_AS_DENIED = (
    "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; "
    "Failed to process message due to a permanent exception with message Cannot submit message."
)
QUOTA = (
    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
    "process message due to a permanent exception with message Cannot submit message."
)
OLD_TLS = (
    "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
    "support TLS 1.2. Visit https://aka.ms/smtp_auth_tls. [BN6PR11CA0047.namprd11.prod.outlook.com]"
)
THREAD_LIMIT = (
    "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=BY5PR04MB6964]"
)
CONCURRENT = (
    "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
    "for more information. [Hostname=DM4PR18MB4126.namprd18.prod.outlook.com]"
)


def failed(result: ConnectionTestResult) -> Stage:
    assert not result.ok, result.stages
    stage = result.failed_stage
    assert stage is not None
    return stage


def password_test(peer: SmtpPeer, pki: Pki, egress: EgressPolicy) -> ConnectionTestResult:
    return test_smtp(
        peer.spec().settings, egress=egress, budget_s=10.0, ssl_context=pki.client_context()
    )


# ---------------------------------------------------------------- the password path


@pytest.mark.parametrize("reply", [BASIC_DISABLED, SMTP_AUTH_DISABLED, NOT_SUPPORTED])
def test_password_refused_as_basic_auth_says_so_and_offers_the_way_out(
    reply: str, pki: Pki, egress: EgressPolicy
) -> None:
    with SmtpPeer("starttls", pki=pki, auth_reply=reply) as peer:
        stage = failed(password_test(peer, pki, egress))
    assert stage.name == "authenticate"
    assert stage.detail == reply
    assert stage.hint == BASIC_AUTH_OFF
    assert "turned off password sign-in" in stage.hint
    assert "OAuth 2.0 (Microsoft 365)" in stage.hint and "Microsoft Graph" in stage.hint


def test_password_refused_with_5_7_3_names_the_mailbox_switch(
    pki: Pki, egress: EgressPolicy
) -> None:
    with SmtpPeer("starttls", pki=pki, auth_reply=UNSUCCESSFUL) as peer:
        stage = failed(password_test(peer, pki, egress))
    assert (stage.name, stage.detail, stage.code) == ("authenticate", UNSUCCESSFUL, "535")
    assert stage.hint is not None
    assert stage.hint.startswith("Check Account and Password")
    assert "-SmtpClientAuthenticationDisabled $false" in stage.hint


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (NOT_AUTHENTICATED, "Exchange requires a login to send"),
        (NO_SEND_AS, "Exchange does not let sales send as sales@acme.example"),
        (THREAD_LIMIT, "Exchange Online is throttling this mailbox"),
        (CONCURRENT, "Exchange Online is throttling this mailbox"),
    ],
)
def test_exchange_refusals_at_mail_from(
    reply: str, expected: str, pki: Pki, egress: EgressPolicy
) -> None:
    with SmtpPeer(
        "starttls", pki=pki, refuse_senders=("sales@acme.example",), refuse_reply=reply
    ) as peer:
        stage = failed(password_test(peer, pki, egress))
    assert (stage.name, stage.detail) == ("sender", reply)
    assert stage.hint is not None and stage.hint.startswith(expected), stage.hint


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (SEND_AS_DENIED, "Exchange does not let sales send as sales@acme.example"),
        (QUOTA, "Exchange could not submit the message from the mailbox (STOREDRV)"),
    ],
)
def test_exchange_refusals_at_data(
    reply: str, expected: str, pki: Pki, egress: EgressPolicy
) -> None:
    with SmtpPeer("starttls", pki=pki, data_reply=reply) as peer:
        outcome = send_smtp(
            peer.spec().settings,
            to="someone@example.com",
            subject="Hi",
            body="Hi",
            egress=egress,
            budget_s=10.0,
            ssl_context=pki.client_context(),
        )
    assert not outcome.ok
    assert outcome.detail.startswith(f"Failed at data: {reply.rstrip('.')}.")
    assert expected in outcome.detail


def test_old_tls_refusal_at_the_greeting(egress: EgressPolicy) -> None:
    with HostileServer(garbage_banner(f"{OLD_TLS}\r\n".encode())) as server:
        settings = SmtpSettings(
            server=server.host,
            port=server.port,
            use_ssl=True,
            account="sales",
            sender_address="sales@acme.example",
        )
        stage = failed(test_smtp(settings, egress=egress, budget_s=5.0))
    assert (stage.name, stage.detail, stage.code) == ("connect", OLD_TLS, "421")
    assert stage.hint is not None and "only TLS 1.2 or later" in stage.hint


# ---------------------------------------------------------------- Exchange Online hosts


@pytest.mark.parametrize(
    ("host", "exchange"),
    [
        ("smtp.office365.com", True),
        ("SMTP.Office365.com.", True),
        ("contoso-com.mail.protection.outlook.com", True),
        ("smtp-mail.outlook.com", True),
        ("smtp.gmail.com", False),
        ("mail.protection.outlook.com.evil.example", False),
        ("notoffice365.com", False),
    ],
)
def test_is_exchange_online(host: str, exchange: bool) -> None:
    assert is_exchange_online(host) is exchange
    assert (exchange_password_note(host) is not None) is exchange


@dataclass(frozen=True)
class _Hosts(EgressPolicy):
    """A resolver override for one test: Exchange's host name answers with the peer's
    loopback address (no DNS trick needed); everything else as the policy decides."""

    mapped: str = ""

    def resolve(self, host: str, port: int, *, timeout: float | None = None) -> str:
        return self.mapped if host == "smtp.office365.com" else super().resolve(host, port)


def test_exchange_online_basic_auth_passes_with_a_note_that_it_will_stop(
    pki: Pki, egress: EgressPolicy
) -> None:
    office = pki.with_server(make_server_certificate(pki.ca, ["smtp.office365.com", "127.0.0.1"]))
    with SmtpPeer("starttls", pki=office) as peer:
        settings = peer.spec().settings.model_copy(update={"server": "smtp.office365.com"})
        hosts = _Hosts(allow=egress.allow, ports=egress.ports, mapped=peer.host)
        result = test_smtp(settings, egress=hosts, budget_s=10.0, ssl_context=pki.client_context())
        plain = password_test(peer, office, egress)  # the same peer by its IP: no note
    assert result.ok, result.stages
    auth = next(s for s in result.stages if s.name == "authenticate")
    assert auth.detail.startswith("235")
    assert "turns off password sign-in for SMTP" in auth.detail
    assert "end of December 2026" in auth.detail
    assert "OAuth 2.0 (Microsoft 365)" in auth.detail
    plain_auth = next(s for s in plain.stages if s.name == "authenticate")
    assert "password sign-in" not in plain_auth.detail


# ---------------------------------------------------------------- the OAuth path


def oauth_test(
    peer: SmtpPeer, idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey, pki: Pki
) -> ConnectionTestResult:
    return test_smtp(
        oauth_settings(peer, tenant, app, cert),
        egress=EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1024-65535"]),
        budget_s=10.0,
        ssl_context=pki.client_context(),
        oauth=oauth_endpoints(idp),
    )


def test_oauth_refused_as_smtp_auth_disabled_names_set_casmailbox(
    pki: Pki, idp: IdentityProvider, tenant: Tenant, oauth_app: App, oauth_cert: CertAndKey
) -> None:
    with xoauth2_peer(pki, idp, tenant, auth_reply=SMTP_AUTH_DISABLED) as peer:
        stage = failed(oauth_test(peer, idp, tenant, oauth_app, oauth_cert, pki))
    assert (stage.name, stage.detail) == ("authenticate", SMTP_AUTH_DISABLED)
    assert stage.hint is not None
    assert f"Set-CASMailbox -Identity {SALES_MAILBOX} -SmtpClientAuthenticationDisabled $false" in (
        stage.hint
    )
    assert "Password" not in stage.hint  # no advice to go back to what Microsoft turned off


def test_oauth_refused_with_5_7_3_names_every_azure_and_exchange_step(
    pki: Pki, idp: IdentityProvider, tenant: Tenant, oauth_app: App, oauth_cert: CertAndKey
) -> None:
    with xoauth2_peer(pki, idp, tenant, auth_reply=UNSUCCESSFUL) as peer:
        stage = failed(oauth_test(peer, idp, tenant, oauth_app, oauth_cert, pki))
    assert (stage.name, stage.detail) == ("authenticate", UNSUCCESSFUL)
    assert stage.hint is not None
    for step in (
        "SMTP.SendAsApp",
        "admin consent",
        f"New-ServicePrincipal -AppId {oauth_app.client_id}",
        f"Add-MailboxPermission -Identity {SALES_MAILBOX}",
        "Set-CASMailbox",
    ):
        assert step in stage.hint, step


def test_oauth_not_authenticated_at_mail_from_names_the_setup(
    pki: Pki, idp: IdentityProvider, tenant: Tenant, oauth_app: App, oauth_cert: CertAndKey
) -> None:
    with xoauth2_peer(
        pki, idp, tenant, refuse_senders=(SALES_MAILBOX,), refuse_reply=NOT_AUTHENTICATED
    ) as peer:
        stage = failed(oauth_test(peer, idp, tenant, oauth_app, oauth_cert, pki))
    assert (stage.name, stage.detail) == ("sender", NOT_AUTHENTICATED)
    assert stage.hint is not None and "New-ServicePrincipal" in stage.hint
