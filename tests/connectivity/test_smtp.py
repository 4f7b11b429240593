"""The SMTP connection test and sending, against real aiosmtpd peers on 127.0.0.1."""

from __future__ import annotations

import logging
import time

import pytest

from elegere_widgets.connectivity import EgressPolicy, send_smtp, test_smtp
from elegere_widgets.models import ConnectionTestResult, Stage
from tests.connectivity.smtp_helpers import SENDER, WITH_AUTH, WITHOUT_AUTH, failed, names, settings
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import (
    ACCOUNT,
    PASSWORD,
    SmtpPeer,
    closed_port,
)

# ------------------------------------------------------------------ passing


def test_implicit_tls_with_auth_passes(tls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy) -> None:
    result = test_smtp(
        settings(tls_peer.port, use_ssl=True),
        egress=egress,
        ssl_context=pki.client_context(),
        implicit_tls_ports={tls_peer.port},
    )
    assert result.ok, result
    assert names(result) == WITH_AUTH
    assert result.server_type == "smtp" and result.test_token is None
    by_name = {s.name: s for s in result.stages}
    assert by_name["resolve"].detail == "127.0.0.1 (an IP address)"
    assert by_name["tls"].detail.startswith("Encrypted from the first byte (TLSv1.")
    assert by_name["authenticate"].code == "235"
    assert by_name["sender"].code == "250" and by_name["recipient"].code == "250"
    assert all(s.hint is None for s in result.stages)
    assert result.elapsed_ms >= sum(s.elapsed_ms for s in result.stages)
    assert tls_peer.messages == [], "a test never sends DATA"


def test_starttls_with_auth_passes(starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy) -> None:
    result = test_smtp(
        settings(starttls_peer.port, use_ssl=True), egress=egress, ssl_context=pki.client_context()
    )
    assert result.ok, result
    assert names(result) == WITH_AUTH
    tls = result.stages[2]
    assert tls.detail.startswith("upgraded with STARTTLS (TLSv1.") and tls.code == "220"
    assert starttls_peer.auth_attempts == ["PLAIN"]


def test_plain_settings_upgrade_with_starttls_when_offered(
    starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result = test_smtp(
        settings(starttls_peer.port, use_ssl=False), egress=egress, ssl_context=pki.client_context()
    )
    assert result.ok, result
    assert result.stages[2].detail.startswith("upgraded with STARTTLS")


def test_plain_without_auth_passes(plain_peer: SmtpPeer, egress: EgressPolicy) -> None:
    seen: list[Stage] = []
    result = test_smtp(
        settings(plain_peer.port, use_ssl=False, password=None), egress=egress, progress=seen.append
    )
    assert result.ok, result
    assert names(result) == WITHOUT_AUTH
    assert result.stages[2].detail == "not offered; continuing unencrypted"
    assert result.stages[1].detail.startswith("220 peer.test") and result.stages[1].code == "220"
    assert seen == result.stages, "progress sees every stage as it ends"


def test_host_name_is_verified_while_the_socket_goes_to_the_pinned_address(
    tls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result = test_smtp(
        settings(tls_peer.port, use_ssl=True, server="localhost"),
        egress=egress,
        ssl_context=pki.client_context(),
        implicit_tls_ports={tls_peer.port},
    )
    assert result.ok, result
    assert result.stages[0].detail == "localhost → 127.0.0.1"


# ------------------------------------------------------------------ failing


def test_wrong_password_fails_at_authenticate(
    starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result = test_smtp(
        settings(starttls_peer.port, use_ssl=True, password="not-the-password"),
        egress=egress,
        ssl_context=pki.client_context(),
    )
    stage = failed(result)
    assert stage.name == "authenticate" and stage.code == "535"
    assert stage.detail.startswith("535 5.7.8")
    assert stage.hint == "Check Account and Password"


def test_plain_client_at_implicit_tls_port_says_check_use_ssl(
    tls_peer: SmtpPeer, egress: EgressPolicy
) -> None:
    started = time.monotonic()
    result = test_smtp(
        settings(tls_peer.port, use_ssl=False),
        egress=egress,
        budget_s=3,
        implicit_tls_ports={tls_peer.port},
    )
    stage = failed(result)
    assert stage.name == "connect"
    assert stage.hint == f"Port {tls_peer.port} expects TLS from the first byte: check Use SSL"
    assert time.monotonic() - started < 3 + 1


def test_tls_client_at_plain_port_says_uncheck_use_ssl(
    plain_peer: SmtpPeer, egress: EgressPolicy
) -> None:
    result = test_smtp(
        settings(plain_peer.port, use_ssl=True, password=None),
        egress=egress,
        implicit_tls_ports={plain_peer.port},
    )
    stage = failed(result)
    assert stage.name == "tls"
    assert "WRONG_VERSION_NUMBER" in stage.detail
    assert stage.hint == (
        f"The server at port {plain_peer.port} speaks plain SMTP first: uncheck Use SSL, or use "
        "port 587 with STARTTLS"
    )


def test_use_ssl_fails_when_starttls_is_not_offered(
    plain_peer: SmtpPeer, egress: EgressPolicy
) -> None:
    stage = failed(test_smtp(settings(plain_peer.port, use_ssl=True), egress=egress))
    assert stage.name == "tls" and stage.detail.startswith("STARTTLS not offered")
    assert stage.hint is not None and "does not offer STARTTLS" in stage.hint
    assert plain_peer.auth_attempts == []


def test_refused_sender_fails_at_sender(pki: Pki, egress: EgressPolicy) -> None:
    with SmtpPeer("starttls", pki=pki, refuse_senders=(SENDER,)) as peer:
        result = test_smtp(
            settings(peer.port, use_ssl=True), egress=egress, ssl_context=pki.client_context()
        )
    stage = failed(result)
    assert stage.name == "sender" and stage.code == "553"
    assert stage.hint == (
        f"The server does not let this account send as {SENDER}; use an address the account "
        "may send from"
    )


def test_password_is_never_sent_over_an_unencrypted_connection(egress: EgressPolicy) -> None:
    with SmtpPeer("plain", offer_auth_in_clear=True) as careless:
        result = test_smtp(settings(careless.port, use_ssl=False), egress=egress)
        attempts = careless.auth_attempts
    stage = failed(result)
    assert stage.name == "authenticate"
    assert stage.detail == "Password not sent: the connection is not encrypted"
    assert stage.hint is not None and "Use SSL" in stage.hint
    assert attempts == [], "no AUTH command may reach a server in clear"


def test_loopback_is_refused_without_an_egress_allow(plain_peer: SmtpPeer) -> None:
    any_port = EgressPolicy.from_strings([], ports=["1-65535"])
    result = test_smtp(settings(plain_peer.port, use_ssl=False), egress=any_port)
    stage = failed(result)
    assert names(result) == ["resolve"]
    assert "loopback" in stage.detail and "--egress-allow" in stage.detail


# ------------------------------------------------------------------ sending


def test_send_smtp_delivers_a_message(
    starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    outcome = send_smtp(
        settings(starttls_peer.port, use_ssl=True),
        to="ops@example.org",
        subject="Test from eLegere",
        body="It works.\n.\nA line with a lone dot.",
        egress=egress,
        ssl_context=pki.client_context(),
    )
    assert outcome.ok, outcome
    assert outcome.detail.startswith("Sent to ops@example.org: 250 2.0.0")
    [received] = starttls_peer.messages
    assert received.subject == "Test from eLegere" and received.to == "ops@example.org"
    assert received.mail_from == SENDER and received.rcpt_tos == ["ops@example.org"]
    assert received.login == ACCOUNT
    assert received.message["From"] == SENDER
    assert received.message["Date"] and received.message["Message-ID"].endswith("@example.com>")
    assert "A line with a lone dot." in received.message.get_content()
    assert received.message.get_content().splitlines()[1] == ".", "dot-stuffing undone"


def test_send_smtp_streams_its_stages_from_one_session(
    starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    seen: list[Stage] = []
    connections, quits = starttls_peer.connections, starttls_peer.quits
    outcome = send_smtp(
        settings(starttls_peer.port, use_ssl=True),
        to="ops@example.org",
        subject="s",
        body="b",
        egress=egress,
        ssl_context=pki.client_context(),
        progress=seen.append,
    )
    assert outcome.ok, outcome
    assert [s.name for s in seen] == [*WITH_AUTH, "data"]
    assert seen == outcome.stages and all(s.ok for s in seen)
    assert seen[-1].detail == "250 2.0.0 Message accepted for delivery"
    assert outcome.elapsed_ms >= sum(s.elapsed_ms for s in seen)
    # The test's stages and the message: one connection, left with one QUIT.
    assert starttls_peer.connections - connections == 1
    assert starttls_peer.quits - quits == 1
    assert len(starttls_peer.messages) == 1


def test_send_smtp_to_a_refused_recipient_stops_there_with_the_servers_reply(
    pki: Pki, egress: EgressPolicy
) -> None:
    seen: list[Stage] = []
    with SmtpPeer("starttls", pki=pki, refuse_recipients=("nobody@example.org",)) as peer:
        outcome = send_smtp(
            settings(peer.port, use_ssl=True),
            to="nobody@example.org",
            subject="s",
            body="b",
            egress=egress,
            ssl_context=pki.client_context(),
            progress=seen.append,
        )
        assert peer.messages == []
    assert not outcome.ok
    assert [s.name for s in seen] == WITH_AUTH and seen == outcome.stages
    refused = seen[-1]
    assert (refused.ok, refused.code) == (False, "550")
    assert refused.detail == (
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown"
    )
    assert outcome.detail.startswith(f"Failed at recipient: {refused.detail}.")


def test_send_smtp_keeps_non_ascii_text_intact(plain_peer: SmtpPeer, egress: EgressPolicy) -> None:
    outcome = send_smtp(
        settings(plain_peer.port, use_ssl=False, password=None),
        to="ops@example.org",
        subject="Prova di invio — è tutto a posto",
        body="Però funziona: ünïcödé.\n",
        egress=egress,
    )
    assert outcome.ok, outcome
    [received] = plain_peer.messages
    assert received.subject == "Prova di invio — è tutto a posto"
    assert received.message.get_content().splitlines() == ["Però funziona: ünïcödé."]
    assert received.message["Content-Transfer-Encoding"] == "quoted-printable"


def test_send_smtp_failure_is_an_outcome_not_an_exception(egress: EgressPolicy) -> None:
    outcome = send_smtp(
        settings(closed_port(), use_ssl=False),
        to="ops@example.org",
        subject="s",
        body="b",
        egress=egress,
    )
    assert not outcome.ok
    assert outcome.detail.startswith("Failed at connect: Could not connect to")


# ------------------------------------------------------------------ secrets


def test_password_never_appears_in_results_or_logs(
    pki: Pki, egress: EgressPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    results: list[ConnectionTestResult] = []
    with SmtpPeer("starttls", pki=pki, echo_password=True) as peer:
        ok = settings(peer.port, use_ssl=True)
        wrong = settings(peer.port, use_ssl=True, password="Wr0ng-but-secret")
        for s in (ok, wrong):
            results.append(test_smtp(s, egress=egress, ssl_context=pki.client_context()))
        sent = send_smtp(
            wrong,
            to="ops@example.org",
            subject="s",
            body="b",
            egress=egress,
            ssl_context=pki.client_context(),
        )
    with SmtpPeer("plain", offer_auth_in_clear=True) as careless:
        results.append(test_smtp(settings(careless.port, use_ssl=False), egress=egress))

    assert results[0].ok and not results[1].ok
    echoed = results[1].stages[-1]
    assert echoed.detail == "535 5.7.8 ********** rejected", "the server's echo is masked"
    # mail.log is the peer's own logging: in real life, another party's server.
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    texts = [logged, sent.detail, repr(sent), repr(ok), repr(wrong)]
    for result in results:
        texts += [repr(result), result.model_dump_json()]
        texts += [f"{s.detail} {s.hint}" for s in result.stages]
    for secret in (PASSWORD, "Wr0ng-but-secret"):
        assert not [t for t in texts if secret in t]
    assert "stage authenticate failed" in logged
