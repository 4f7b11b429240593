"""Issue 13 in Chromium: an admin adds an SMTP server with Authentication = OAuth 2.0
(Microsoft 365), uploading the app's certificate, tests it (certificate → token at the local
identity provider → … → AUTH XOAUTH2 at a peer that verifies the token), tests it again from
Update with the stored certificate, renames it, sends a test email through it from its row
(certificate → token → … → data in one session, the message at the peer), and deletes it.

The service is started as an operator would start it for a tenant: ELEGERE_GRAPH_AUTHORITY_HOST
and ELEGERE_GRAPH_CA_FILE name the identity provider and its CA, ELEGERE_SMTP_CA_FILE the SMTP
peer's CA. Each step is a function of its own, so that a step (sending a test message from the
row, say) fits in between without touching the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site
from tests.browser.support import (
    expect_row_names,
    stage_rows,
    type_into,
    type_smtp_server,
)
from tests.fixtures.certs import Pki
from tests.fixtures.graph_certs import CertAndKey, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import (
    OAUTH_CERT_CN,
    PFX_PASSWORD,
    add_oauth_app,
    service_environment,
    xoauth2_peer,
)
from tests.fixtures.smtp import SmtpPeer

NAME = "Sales 365 (browser)"
RENAMED = "Sales 365 via OAuth"
TO = "buyer@example.org"
SEEDED = ["Acme Relay", "Sales Mailer"]


@pytest.fixture(scope="module")
def oauth_tenant(idp: IdentityProvider) -> Tenant:
    tenant = idp.add_tenant(domains=["browser-tenant.onmicrosoft.com"])
    idp.add_mailbox(tenant, SALES_MAILBOX, display_name="Sales")
    return tenant


@pytest.fixture(scope="module")
def app(idp: IdentityProvider, oauth_tenant: Tenant, oauth_cert: CertAndKey) -> App:
    return add_oauth_app(idp, oauth_tenant, oauth_cert)


@pytest.fixture(scope="module")
def peer(pki: Pki, idp: IdentityProvider, oauth_tenant: Tenant) -> Iterator[SmtpPeer]:
    with xoauth2_peer(pki, idp, oauth_tenant) as running:
        yield running


@pytest.fixture(scope="module")
def service_extra(
    pki: Pki, idp: IdentityProvider, peer: SmtpPeer
) -> tuple[dict[str, str], list[str]]:
    return service_environment(idp, pki), ["--egress-allow-port", str(peer.port)]


@pytest.fixture(scope="module")
def dashboard_url(site: Site) -> str:
    return site.voila(token=True)


@pytest.fixture
def pfx_file(tmp_path: Path, oauth_cert: CertAndKey) -> Path:
    """The .pfx an admin exported for the app registration."""
    path = tmp_path / "sales-365-app.pfx"
    path.write_bytes(to_pfx(oauth_cert, password=PFX_PASSWORD))
    return path


def stages_passed(browse: Browse, scope: str) -> str:
    """Wait for the test under ``scope`` to end; its stages, every one passed."""
    page = browse.page
    status = page.locator(f"{scope} .elegere-test-status", has_text="Connection test")
    status.wait_for(timeout=30_000)
    # The test's own stage table: Settings also holds the certificate rollover's.
    passed_here = page.locator(".elegere-test-status", has_text="Connection test")
    tester = page.locator(f"{scope} .elegere-connection-test").filter(has=passed_here)
    stages = tester.locator(".elegere-stages").inner_text()
    assert "Connection test passed" in status.inner_text(), stages
    assert "✗" not in stages, stages
    for title in ("Certificate", "Token", "Authenticate"):
        assert title in stages, stages
    return stages


def add_in_the_wizard(
    browse: Browse, peer: SmtpPeer, tenant: Tenant, app: App, pfx_file: Path
) -> None:
    """Type → Settings (OAuth 2.0, the certificate uploaded) → Test → Summary → Complete."""
    page = browse.page
    page.locator("button.elegere-add").click()
    page.locator(".elegere-type label", has_text="SMTP").click()
    page.locator("button.elegere-next").click()

    type_smtp_server(browse, NAME, peer, SALES_MAILBOX, SALES_MAILBOX)
    page.locator(".elegere-field-authentication select").select_option(
        label="OAuth 2.0 (Microsoft 365)"
    )
    page.locator(".elegere-field-tenant_id input").wait_for()
    expect(page.locator(".elegere-field-password")).to_be_hidden()
    type_into(browse, "tenant_id", tenant.id)
    type_into(browse, "client_id", app.client_id)
    with page.expect_file_chooser() as chooser:  # "Choose file…" opens the system's dialog
        page.locator(".elegere-field-certificate").click()
    chooser.value.set_files(str(pfx_file))
    page.locator(".elegere-file-name-certificate", has_text=pfx_file.name).wait_for()
    type_into(browse, "certificate_password", PFX_PASSWORD)
    assert page.locator(".elegere-field-error:visible").count() == 0
    browse.shot("oauth-settings")
    page.locator("button.elegere-next").click()

    page.locator("button.elegere-test").click()
    stages_passed(browse, ".elegere-wizard")
    page.wait_for_function("() => !document.querySelector('button.elegere-next').disabled")
    browse.shot("oauth-test-passed")
    page.locator("button.elegere-next").click()

    summary = page.locator(".elegere-summary")
    summary.wait_for()
    text = summary.inner_text()
    assert "OAuth 2.0 (Microsoft 365)" in text and PFX_PASSWORD not in text
    page.locator("button.elegere-complete").click()
    page.locator(".elegere-row", has_text=NAME).wait_for()
    assert f"Added '{NAME}'" in page.locator(".elegere-status").inner_text()
    expect_row_names(browse, sorted([*SEEDED, NAME]))
    browse.shot("oauth-added")


def retest_and_rename_in_update(browse: Browse) -> None:
    """Settings: the stored certificate passes the test again; then the name changes."""
    page = browse.page
    page.locator(".elegere-row", has_text=NAME).locator("button.elegere-settings").click()
    update = page.locator(".elegere-update")
    update.wait_for()
    note = update.locator(".elegere-note-certificate").inner_text()
    assert f"CN={OAUTH_CERT_CN}" in note, note
    update.locator("button.elegere-test").click()
    stages_passed(browse, ".elegere-update")
    browse.shot("oauth-update-tested")
    type_into(browse, "name", RENAMED, within=".elegere-update")
    update.locator("button.elegere-save").click()
    page.locator(".elegere-status", has_text=f"Saved '{RENAMED}'").wait_for()
    page.locator(".elegere-row", has_text=RENAMED).wait_for()
    expect_row_names(browse, sorted([*SEEDED, RENAMED]))
    browse.shot("oauth-renamed")


def send_test_email(browse: Browse, peer: SmtpPeer) -> None:
    """Send test email from the row: the app signs in, then one SMTP session authenticates
    with XOAUTH2 and hands the message over, each stage showing as it ends."""
    page = browse.page
    page.locator(".elegere-row", has_text=RENAMED).locator("button.elegere-send-test").click()
    view = page.locator(".elegere-send-test-view")
    to = view.locator(".elegere-send-to input")
    to.wait_for()
    to.fill(TO)
    to.press("Tab")
    view.locator("button.elegere-send").click()
    view.locator(".elegere-test-status .elegere-tone-ok").wait_for(timeout=30_000)
    status = view.locator(".elegere-test-status").inner_text().strip()
    assert status == f"✓ Test email sent to {TO}: 250 2.0.0 Message accepted for delivery"
    stages = view.locator(".elegere-stages")
    assert stage_rows(stages) == [
        (title, True)
        for title in (
            "Certificate",
            "Token",
            "Resolve",
            "Connect",
            "TLS",
            "EHLO",
            "Authenticate",
            "Sender",
            "Recipient",
            "Data",
        )
    ]
    assert "XOAUTH2: 235" in stages.locator(".elegere-stage-authenticate").inner_text()
    # The peer's sink got the message, from the mailbox the token signed in as.
    [received] = peer.messages
    assert (received.rcpt_tos, received.login) == ([TO], SALES_MAILBOX)
    assert received.subject == "eLegere test message"
    browse.shot("oauth-test-email-sent")
    view.locator("button.elegere-close-send-test").click()
    view.wait_for(state="detached")


def delete_it(browse: Browse) -> None:
    """Delete: nothing uses the server, so no replacement is asked for."""
    page = browse.page
    page.locator(".elegere-row", has_text=RENAMED).locator("button.elegere-delete").click()
    dialog = page.locator(".elegere-delete-dialog")
    dialog.wait_for()
    confirm = page.locator("button.elegere-confirm-delete")
    assert confirm.is_enabled()
    confirm.click()
    page.locator(".elegere-status", has_text=f"Deleted '{RENAMED}'").wait_for()
    page.locator(".elegere-row", has_text=RENAMED).wait_for(state="detached")
    expect_row_names(browse, SEEDED)
    browse.shot("oauth-deleted")


def test_add_test_rename_and_delete_an_oauth_smtp_server(
    dashboard_url: str,
    browse: Browse,
    site: Site,
    peer: SmtpPeer,
    oauth_tenant: Tenant,
    app: App,
    pfx_file: Path,
    idp: IdentityProvider,
) -> None:
    browse.open(dashboard_url, ".elegere-row")
    page = browse.page
    page.locator(".elegere-row").nth(1).wait_for()
    signed_in = idp.token_requests

    add_in_the_wizard(browse, peer, oauth_tenant, app, pfx_file)
    with Client(site.service_url, site.token) as client:
        [stored] = [s for s in client.email_servers.list("ws_sales") if s.name == NAME]
        assert stored.settings.authentication == "oauth2"  # type: ignore[union-attr]
        assert stored.secrets_set == {"certificate": True, "certificate_password": True}
    retest_and_rename_in_update(browse)
    send_test_email(browse, peer)
    delete_it(browse)

    browse.assert_clean()
    # Each test signed in afresh at the identity provider, and the test email once (a test's
    # token is not cached for sending); each with XOAUTH2 at the peer.
    assert idp.token_requests == signed_in + 3
    assert peer.auth_attempts == ["XOAUTH2", "XOAUTH2", "XOAUTH2"]
    assert peer.xoauth2_refusals == []
    with Client(site.service_url, site.token) as client:
        assert [s.name for s in client.email_servers.list("ws_sales")] == SEEDED
