"""Use SSL on a port other than 465, 587 and 25: the test finds out whether the server greets
first (STARTTLS) or waits for TLS (implicit TLS), says which, and a stored mode is used as is.
The peers listen on high ports, none of them standard."""

from __future__ import annotations

from elegere_widgets.connectivity import EgressPolicy
from elegere_widgets.connectivity.smtp import send_smtp, test_smtp
from elegere_widgets.models import ConnectionTestResult, SmtpSettings
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SmtpPeer


def stage_detail(result: ConnectionTestResult, name: str) -> str:
    return next(s.detail for s in result.stages if s.name == name)


def run(peer: SmtpPeer, pki: Pki, egress: EgressPolicy, **settings: object):  # type: ignore[no-untyped-def]
    found: list[str] = []
    values = peer.spec().settings.model_copy(update=settings)
    result = test_smtp(
        values,
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
        on_tls_mode=found.append,
    )
    return result, found


def test_implicit_tls_on_another_port_is_detected(
    tls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    assert tls_peer.port not in (25, 465, 587)
    result, found = run(tls_peer, pki, egress)
    assert result.ok, result.stages
    assert "implicit TLS (detected)" in stage_detail(result, "connect")
    assert "detected: the server speaks TLS first" in stage_detail(result, "tls")
    assert found == ["implicit"]
    assert tls_peer.auth_attempts  # it signed in over the detected TLS


def test_starttls_on_another_port_is_detected(
    starttls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result, found = run(starttls_peer, pki, egress)
    assert result.ok, result.stages
    assert "detected: the server greets first" in stage_detail(result, "tls")
    assert found == ["starttls"]


def test_a_stored_mode_is_used_without_probing(
    tls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result, found = run(tls_peer, pki, egress, tls_mode="implicit")
    assert result.ok, result.stages
    assert stage_detail(result, "connect") == f"Connected to 127.0.0.1:{tls_peer.port}"
    assert "detected" not in stage_detail(result, "tls")
    assert found == []
    outcome = send_smtp(
        tls_peer.spec().settings.model_copy(update={"tls_mode": "implicit"}),
        to="someone@example.com",
        subject="Hi",
        body="Hi",
        egress=egress,
        budget_s=10.0,
        ssl_context=pki.client_context(),
    )
    assert outcome.ok, outcome.detail
    assert [m.subject for m in tls_peer.messages] == ["Hi"]


def test_without_use_ssl_nothing_is_detected(
    tls_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result, found = run(tls_peer, pki, egress, use_ssl=False, password=None)
    assert not result.ok
    failed = result.failed_stage
    assert failed is not None and failed.name == "connect"
    assert "answered a TLS handshake" in failed.detail
    assert found == []


def test_a_plain_server_on_another_port_with_use_ssl_still_needs_starttls(
    plain_peer: SmtpPeer, pki: Pki, egress: EgressPolicy
) -> None:
    result, found = run(plain_peer, pki, egress, password=None)
    failed = result.failed_stage
    assert failed is not None and failed.name == "tls"
    assert "STARTTLS not offered" in failed.detail
    assert found == []


def test_settings_keep_the_mode_out_of_what_is_typed() -> None:
    settings = SmtpSettings(
        server="smtp.example.com", port=8465, use_ssl=True, account="a", sender_address="a@b.co"
    )
    assert "tls_mode" not in settings.public()
    assert settings.model_copy(update={"tls_mode": "implicit"}).public()["tls_mode"] == "implicit"
