"""Use SSL on a port other than 465/587/25 through the API: the passing test's detected mode
is stored with the server (sending then does not probe), and forgotten when settings change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SmtpPeer

SALES = "ws_sales"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


@pytest.fixture
def implicit_peer(pki: Pki) -> Iterator[SmtpPeer]:
    with SmtpPeer("implicit_tls", pki=pki) as peer:
        yield peer


def test_the_detected_mode_is_stored_used_and_forgotten_on_change(
    admin: Client, implicit_peer: SmtpPeer
) -> None:
    spec = implicit_peer.spec()
    result = admin.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    tls = next(s for s in result.stages if s.name == "tls")
    assert "detected: the server speaks TLS first" in tls.detail
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token or "")
    assert server.settings.tls_mode == "implicit"  # type: ignore[union-attr]

    sent = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert sent.ok, sent.detail
    assert len(implicit_peer.messages) == 1

    changed = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"sender_address": "other@acme.example"}),
        version=server.version,
    )
    assert changed.settings.tls_mode is None  # type: ignore[union-attr]
    # A test of the server as stored finds it out again and stores it.
    again = admin.email_servers.test(
        SALES,
        spec.model_copy(
            update={
                "server_id": server.id,
                "settings": spec.settings.model_copy(
                    update={"sender_address": "other@acme.example", "password": None}
                ),
            }
        ),
    )
    assert again.ok, again.stages
    assert admin.email_servers.get(SALES, server.id).settings.tls_mode == "implicit"  # type: ignore[union-attr]
