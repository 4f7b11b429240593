"""axe-core in Chromium: the dashboard, the open wizard, a server's details (with Send test
email open in them) and the delete dialog have no serious or critical violation (WCAG 2 A and
AA rules among them: contrast, names, roles), and all the content sits inside landmarks (axe's
``region``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site


@pytest.fixture(scope="module")
def dashboard_url(site: Site) -> str:
    # A failed check (the demo's host does not resolve here): a degraded badge in the table
    # and a strip of checks in the details, both in axe's view.
    with Client(site.service_url, site.token) as client:
        assert not client.email_servers.test_stored("ws_sales", "srv_sales_mailer").ok
    return site.voila(token=True)


def test_the_dashboard_the_wizard_the_details_and_the_delete_dialog_pass_axe(
    dashboard_url: str, browse: Browse, axe_script: Path
) -> None:
    page = browse.page
    browse.open(dashboard_url, ".elegere-row")
    page.locator(".elegere-row").nth(1).wait_for()
    # The landmarks a screen reader lists: the header, the main content, the panel.
    assert "Acme" in page.get_by_role("banner").inner_text()
    main = page.get_by_role("main")
    assert main.get_by_role("region", name="Email Servers").locator(".elegere-row").count() == 2
    assert page.get_by_role("heading", level=1).inner_text() == "Acme"
    found = {"dashboard": browse.axe(axe_script)}

    page.locator("button.elegere-add").click()
    page.locator(".elegere-wizard").wait_for()
    page.locator(".elegere-type label", has_text="SMTP").click()
    found["wizard, Type step"] = browse.axe(axe_script)
    page.locator("button.elegere-next").click()
    page.locator(".elegere-field-name input").wait_for()
    found["wizard, Settings step"] = browse.axe(axe_script)
    browse.shot("wizard")
    page.locator("button.elegere-cancel-wizard").click()
    page.locator(".elegere-wizard").wait_for(state="detached")

    # The details of the server with the most to show: usages, history, a trail.
    page.locator(".elegere-row-srv_sales_mailer .elegere-cell-name").click()
    details = page.locator(".elegere-details")
    details.locator(".elegere-details-usages", has_text="Send quote").wait_for()
    assert details.locator(".elegere-check-strip li").count() == 1
    assert (
        "Degraded"
        in page.locator(".elegere-row-srv_sales_mailer .elegere-cell-health").inner_text()
    )
    found["details"] = browse.axe(axe_script)
    browse.shot("details")
    details.locator("button.elegere-details-send-test").click()
    details.locator(".elegere-send-to input").wait_for()
    found["details, Send test email"] = browse.axe(axe_script)
    details.locator("button.elegere-details-back").click()
    details.wait_for(state="detached")

    page.locator(".elegere-row", has_text="Sales Mailer").locator("button.elegere-delete").click()
    page.locator(".elegere-delete-dialog").wait_for()
    found["delete dialog"] = browse.axe(axe_script)
    browse.shot("delete-dialog")

    assert {view: lines for view, lines in found.items() if lines} == {}
    browse.assert_clean()
