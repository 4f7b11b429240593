"""Issue 14 in Chromium: a Delegate signs in, picks the organization in the dashboard's scope
picker and deletes "Acme Relay", which the organization and two workspaces use, choosing in
the dialog a different replacement for each place (``.elegere-place``): the organization's
own usages go to another organization server, Sales' to one of its own, Support's to the
organization's backup. The service moves each as chosen, and axe-core finds nothing serious
in the dialog."""

from __future__ import annotations

from pathlib import Path

import pytest

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site
from tests.browser.support import sign_in, spaced, trusting_peer
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SmtpPeer

ORG, SALES, SUPPORT = "org_acme", "ws_sales", "ws_support"
RELAY, MAILER = "srv_acme_relay", "srv_sales_mailer"
DELEGATE = "delegate@acme.example"
BACKUP = "Acme Backup"


@pytest.fixture(scope="module")
def service_extra(pki: Pki, peer: SmtpPeer) -> tuple[dict[str, str], list[str]]:
    return trusting_peer(pki, peer)


@pytest.fixture(scope="module")
def backup_id(site: Site, peer: SmtpPeer) -> str:
    """A second organization server (added by the Delegate through the API, tested against
    the peer), and the relay in use in three places: the organization's default server,
    Support's "Reply to ticket" (as seeded) and Sales' "Send quote"."""
    with Client.sign_in(site.service_url, DELEGATE, "demo") as delegate:
        api = delegate.organization_email_servers
        spec = peer.spec(BACKUP)
        backup = api.create(ORG, spec, test_token=api.test(ORG, spec).test_token or "")
    with Client(site.service_url, site.token) as admin:
        admin.custom_actions.update(SALES, "ca_send_quote", email_server_id=RELAY)
    return backup.id


@pytest.fixture(scope="module")
def sign_in_url(site: Site, backup_id: str) -> str:
    return site.voila(token=False)


def choose(browse: Browse, place: int, server: str) -> None:
    """In the dialog's ``place``-th place, pick the replacement whose label starts with
    ``server`` (its name), as a person picks it from the drop-down."""
    select = (
        browse.page.locator(".elegere-place")
        .nth(place)
        .locator(".elegere-place-replacement select")
    )
    label = select.locator("option", has_text=server).first.text_content() or ""
    assert spaced(label).startswith(server), label
    select.select_option(label=label)


def test_a_delegate_deletes_an_organization_server_choosing_per_workspace(
    sign_in_url: str, browse: Browse, site: Site, backup_id: str, axe_script: Path
) -> None:
    page = browse.page
    sign_in(browse, sign_in_url, DELEGATE)
    picker = page.locator(".elegere-workspace-picker select")
    picker.wait_for()
    scope = picker.locator("option", has_text="(organization)").first.text_content() or ""
    assert spaced(scope).endswith("(organization)"), scope
    picker.select_option(label=scope)
    page.locator(".elegere-row", has_text=BACKUP).wait_for()

    page.locator(".elegere-row", has_text="Acme Relay").locator("button.elegere-delete").click()
    dialog = page.locator(".elegere-delete-dialog")
    dialog.wait_for()
    assert "in use in 3 places" in dialog.locator(".elegere-delete-question").inner_text()
    titles = dialog.locator(".elegere-place-title").all_inner_texts()
    assert [t.strip() for t in titles] == [
        "Organization Acme (needs an organization server)",
        "Workspace Sales",
        "Workspace Support",
    ]
    places = dialog.locator(".elegere-place")
    assert "Send quote" in places.nth(1).inner_text()
    assert "Reply to ticket" in places.nth(2).inner_text()
    # The organization's place offers organization servers only; a workspace's its own too.
    org_options = [spaced(o) for o in places.nth(0).locator("option").all_text_contents()]
    assert [o for o in org_options if o.startswith(BACKUP)] and not [
        o for o in org_options if o.startswith("Sales Mailer")
    ]
    confirm = dialog.locator("button.elegere-confirm-delete")
    assert confirm.is_disabled()  # nothing chosen yet

    choose(browse, 0, BACKUP)
    choose(browse, 1, "Sales Mailer")
    assert confirm.is_disabled()  # Support still has no choice
    choose(browse, 2, BACKUP)
    page.wait_for_function(
        "() => !document.querySelector('.elegere-delete-dialog button.elegere-confirm-delete')"
        ".disabled"
    )
    browse.shot("per-place-choices")
    violations = browse.axe(axe_script)
    assert violations == []

    confirm.click()
    status = page.locator(".elegere-status", has_text="Deleted 'Acme Relay'")
    status.wait_for()
    assert (
        status.inner_text()
        .strip()
        .endswith(
            f"Its usages now send through: Acme → '{BACKUP}', Sales → 'Sales Mailer', "
            f"Support → '{BACKUP}'."
        )
    )
    page.locator(".elegere-row", has_text="Acme Relay").wait_for(state="detached")
    dialog.wait_for(state="detached")
    browse.shot("deleted")
    browse.assert_clean()

    # Through the API: each place's usages went where its choice said.
    with Client.sign_in(site.service_url, DELEGATE, "demo") as delegate:
        assert [s.name for s in delegate.organization_email_servers.list(ORG)] == [BACKUP]
        assert delegate.mail_settings.get_organization(ORG).default_server_id == backup_id
        for ws in (SALES, SUPPORT):  # to read the workspaces' actions
            delegate.workspaces.grant_admin(ws, DELEGATE)
        actions = {
            a.id: a.email_server_id
            for ws in (SALES, SUPPORT)
            for a in delegate.custom_actions.list(ws)
        }
    assert actions == {"ca_send_quote": MAILER, "ca_ticket_reply": backup_id}
