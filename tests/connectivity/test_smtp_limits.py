"""SMTP tests at the edges: time budget, refused connections, certificates."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

from elegere_widgets.connectivity import EgressPolicy, test_smtp
from tests.connectivity.smtp_helpers import failed, settings
from tests.fixtures.certs import Pki, client_context, make_ca, make_server_certificate
from tests.fixtures.smtp import DripListener, SilentListener, SmtpPeer, closed_port


@pytest.mark.slow
def test_silent_listener_fails_within_budget(egress: EgressPolicy) -> None:
    with SilentListener() as silent:
        started = time.monotonic()
        result = test_smtp(settings(silent.port, use_ssl=False), egress=egress, budget_s=2)
        elapsed = time.monotonic() - started
    stage = failed(result)
    assert stage.name == "connect"
    assert stage.hint == (
        "The server did not answer within 2 s: check Server and Port and that a firewall "
        "allows the connection"
    )
    assert elapsed < 2 + 1


@pytest.mark.slow
def test_silent_listener_during_tls_handshake_fails_within_budget(egress: EgressPolicy) -> None:
    with SilentListener() as silent:
        started = time.monotonic()
        result = test_smtp(
            settings(silent.port, use_ssl=True),
            egress=egress,
            budget_s=1.5,
            implicit_tls_ports={silent.port},
        )
        elapsed = time.monotonic() - started
    stage = failed(result)
    assert stage.name == "tls" and stage.hint is not None
    assert stage.hint.startswith("The server did not answer within 1.5 s")
    assert elapsed < 1.5 + 1


@pytest.mark.slow
def test_server_that_drips_bytes_is_cut_off_at_the_deadline(egress: EgressPolicy) -> None:
    # Every read gets a byte in time, so only the watchdog can end this.
    with DripListener(interval=0.05) as drip:
        started = time.monotonic()
        result = test_smtp(settings(drip.port, use_ssl=False), egress=egress, budget_s=1.5)
        elapsed = time.monotonic() - started
    stage = failed(result)
    assert stage.name == "connect" and "did not answer within 1.5 s" in (stage.hint or "")
    assert elapsed < 1.5 + 1


def test_closed_port_fails_at_connect_quickly(egress: EgressPolicy) -> None:
    port = closed_port()
    started = time.monotonic()
    result = test_smtp(settings(port, use_ssl=False), egress=egress)
    stage = failed(result)
    assert stage.name == "connect"
    # The same words as for an unreachable host: a test must not map internal hosts.
    assert stage.detail == f"Could not connect to 127.0.0.1 on port {port}"
    assert stage.hint is not None and stage.hint.startswith("Check Server and Port")
    assert time.monotonic() - started < 1


def test_untrusted_certificate_fails_at_tls(tls_peer: SmtpPeer, egress: EgressPolicy) -> None:
    result = test_smtp(
        settings(tls_peer.port, use_ssl=True),
        egress=egress,
        ssl_context=ssl.create_default_context(),
        implicit_tls_ports={tls_peer.port},
    )
    stage = failed(result)
    assert stage.name == "tls"
    assert stage.detail.startswith("Certificate not accepted: ")
    assert stage.hint is not None and "certificate is not trusted" in stage.hint


def test_certificate_for_another_name_fails_at_tls(pki: Pki, egress: EgressPolicy) -> None:
    other = make_server_certificate(pki.ca, ["mail.example.com"])
    with SmtpPeer("starttls", pki=pki.with_server(other)) as peer:
        result = test_smtp(
            settings(peer.port, use_ssl=True), egress=egress, ssl_context=pki.client_context()
        )
    stage = failed(result)
    assert stage.name == "tls"
    assert stage.hint == (
        "The server's certificate is not valid for 127.0.0.1: enter in Server the host name the "
        "certificate was issued for"
    )


def test_expired_certificate_fails_at_tls(pki: Pki, egress: EgressPolicy) -> None:
    expired = make_server_certificate(pki.ca, expired=True)
    with SmtpPeer("implicit_tls", pki=pki.with_server(expired)) as peer:
        result = test_smtp(
            settings(peer.port, use_ssl=True),
            egress=egress,
            ssl_context=pki.client_context(),
            implicit_tls_ports={peer.port},
        )
    stage = failed(result)
    assert stage.name == "tls" and "expired" in (stage.hint or "")


def test_certificate_from_another_ca_is_not_trusted(
    tls_peer: SmtpPeer, egress: EgressPolicy, tmp_path: Path
) -> None:
    stranger = make_ca(tmp_path / "stranger")
    result = test_smtp(
        settings(tls_peer.port, use_ssl=True),
        egress=egress,
        ssl_context=client_context(stranger),
        implicit_tls_ports={tls_peer.port},
    )
    assert failed(result).name == "tls"
