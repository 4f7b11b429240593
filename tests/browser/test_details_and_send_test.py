"""Issue 14 in Chromium: a server's details open from its name, then Send test email delivers a
real message to an aiosmtpd peer, stage by stage in one session, and the details count the
delivery."""

from __future__ import annotations

import pytest

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site
from tests.browser.support import stage_rows, trusting_peer
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import PASSWORD, SmtpPeer

NAME = "Sales relay (peer)"
TO = "someone@example.com"


@pytest.fixture(scope="module")
def service_extra(pki: Pki, peer: SmtpPeer) -> tuple[dict[str, str], list[str]]:
    return trusting_peer(pki, peer)


@pytest.fixture(scope="module")
def server_id(site: Site, peer: SmtpPeer) -> str:
    """A server of Sales that sends through the peer, added through the API."""
    with Client(site.service_url, site.token) as client:
        spec = peer.spec(NAME)
        token = client.email_servers.test("ws_sales", spec).test_token or ""
        return client.email_servers.create("ws_sales", spec, test_token=token).id


@pytest.fixture(scope="module")
def dashboard_url(site: Site, server_id: str) -> str:
    return site.voila(token=True)


def test_details_then_send_test_email_to_the_peer(
    dashboard_url: str, browse: Browse, peer: SmtpPeer, server_id: str
) -> None:
    page = browse.page
    browse.open(dashboard_url, f".elegere-row-{server_id}")
    page.locator(f".elegere-row-{server_id} .elegere-cell-name").click()
    details = page.locator(".elegere-details")
    details.wait_for()
    # Loaded: the sections replace the progress line.
    details.locator(".elegere-details-audit", has_text="Added").wait_for()
    settings = details.locator(".elegere-details-settings").inner_text()
    assert str(peer.port) in settings and "set (never shown)" in settings
    assert PASSWORD not in settings
    assert "Healthy" in details.locator(".elegere-details-health").inner_text()
    assert details.locator(".elegere-check-strip li").count() == 1  # the test that added it
    assert details.locator(".elegere-count-sent").inner_text().strip() == "0 sent"
    browse.shot("details")

    details.locator("button.elegere-details-send-test").click()
    to = details.locator(".elegere-send-to input")
    to.wait_for()
    assert to.input_value() == "admin@acme.example"  # the signed-in admin's address
    to.fill(TO)
    to.press("Tab")
    details.locator("button.elegere-send").click()
    status = details.locator(".elegere-send-test-view .elegere-test-status")
    status.locator(".elegere-tone-ok").wait_for(timeout=30_000)
    assert status.inner_text().strip().startswith(f"✓ Test email sent to {TO}: 250 ")
    stages = details.locator(".elegere-send-test-view .elegere-stages")
    # One session, stage by stage, the message last.
    assert stage_rows(stages) == [
        ("Resolve", True),
        ("Connect", True),
        ("TLS", True),
        ("EHLO", True),
        ("Authenticate", True),
        ("Sender", True),
        ("Recipient", True),
        ("Data", True),
    ]
    [received] = peer.messages
    assert received.rcpt_tos == [TO]
    # The details are read again: the delivery and the test email's trail.
    details.locator(".elegere-details-audit", has_text="Test email").wait_for()
    assert details.locator(".elegere-count-sent").inner_text().strip() == "1 sent"
    browse.shot("sent")

    details.locator("button.elegere-details-back").click()
    details.wait_for(state="detached")
    browse.assert_clean()
