"""Issue 14 in Chromium: the demo Workspace Admin opens Notifications in the dashboard, sees
that the organization's default (Acme Relay) sends Sales' notifications, chooses Sales Mailer
and saves; the service then reports it, and axe-core finds nothing serious in the view."""

from __future__ import annotations

from pathlib import Path

import pytest

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site

SALES, MAILER = "ws_sales", "srv_sales_mailer"


@pytest.fixture(scope="module")
def dashboard_url(site: Site) -> str:
    return site.voila(token=True)


def test_a_workspace_admin_chooses_the_notifications_server(
    dashboard_url: str, browse: Browse, site: Site, axe_script: Path
) -> None:
    page = browse.page
    browse.open(dashboard_url, ".elegere-row")
    page.locator("button.elegere-mail-settings-open").click()
    view = page.locator(".elegere-mail-settings")
    view.wait_for()
    current = view.locator(".elegere-mail-settings-current").inner_text()
    assert "sent by the organization's default: Acme Relay" in current, current
    select = view.locator(".elegere-mail-settings-server select")
    # The control is named for a screen reader by its visible label.
    assert page.get_by_label("Sent by").count() == 1
    label = select.locator("option", has_text="Sales Mailer").first.text_content() or ""
    select.select_option(label=label)
    violations = browse.axe(axe_script)
    browse.shot("notifications")
    assert violations == []

    view.locator("button.elegere-save-mail-settings").click()
    page.locator(
        ".elegere-status", has_text="The notifications of Sales now go through 'Sales Mailer'."
    ).wait_for()
    view.wait_for(state="detached")
    with Client(site.service_url, site.token) as admin:
        assert admin.mail_settings.get(SALES).notifications_server_id == MAILER
    browse.assert_clean()
