"""The dashboard page in Chromium: the demo servers with a token, and the sign-in form without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import Browse, Site
from tests.browser.support import row_names, sign_in


@pytest.fixture(scope="module")
def urls(site: Site) -> Iterator[dict[str, str]]:
    # Both Voilà servers of this module start together: their cold starts overlap.
    yield {"token": site.voila(token=True), "sign_in": site.voila(token=False)}


def test_the_dashboard_shows_the_demo_servers(urls: dict[str, str], browse: Browse) -> None:
    seconds = browse.open(urls["token"], ".elegere-row")
    print(f"page opened to a visible table in {seconds:.2f} s")
    page = browse.page
    page.locator(".elegere-row").nth(1).wait_for()
    assert row_names(browse) == ["Acme Relay", "Sales Mailer"]
    assert "Acme" in page.locator(".elegere-organization").inner_text()
    assert "admin@acme.example" in page.locator(".elegere-user").inner_text()
    assert page.locator(".elegere-workspace-picker select").input_value() == "Sales"
    assert "Inherited from Organization" in page.locator(".elegere-row").first.inner_text()
    # Voilà shows neither the code nor the notebook's how-to notes.
    body = page.locator("body").inner_text()
    assert "Dashboard.from_env" not in body and "Connect to the service" not in body
    assert page.locator(".elegere-sign-in-form").count() == 0 or not (
        page.locator(".elegere-sign-in-form").is_visible()
    )
    browse.shot("dashboard")
    browse.assert_clean()


def test_sign_in_through_the_form(urls: dict[str, str], browse: Browse) -> None:
    browse.open(urls["sign_in"], ".elegere-sign-in-email input")
    page = browse.page
    assert page.locator(".elegere-row").count() == 0
    browse.shot("sign-in-form")

    email = page.locator(".elegere-sign-in-email input")
    password = page.locator(".elegere-sign-in-password input")
    email.click()
    email.press_sequentially("admin@acme.example")
    password.click()
    password.press_sequentially("wrong password")
    page.locator("button.elegere-sign-in").click()
    status = page.locator(".elegere-sign-in-status")
    status.get_by_text("Wrong email or password").wait_for()
    browse.shot("wrong-password")

    password.fill("")
    password.press_sequentially("demo")
    password.press("Enter")  # this time as many people do: Enter, not the button
    page.locator(".elegere-row").nth(1).wait_for()
    assert row_names(browse) == ["Acme Relay", "Sales Mailer"]
    assert not page.locator(".elegere-sign-in-form").is_visible()
    assert page.locator("button.elegere-sign-out").is_visible()
    browse.shot("signed-in")
    browse.assert_clean()


def test_a_delegate_picks_the_organization_scope(urls: dict[str, str], browse: Browse) -> None:
    sign_in(browse, urls["sign_in"], "delegate@acme.example")
    page = browse.page
    picker = page.locator(".elegere-workspace-picker select")
    picker.wait_for()
    picker.select_option(label="Acme (organization)")  # its name, from /me
    row = page.locator(".elegere-row", has_text="Acme Relay")
    row.wait_for()
    assert row_names(browse) == ["Acme Relay"]
    # Its own server here, not an inherited one: Settings and Delete are enabled.
    assert row.locator(".elegere-cell-scope").inner_text().strip() == "This organization"
    assert "Inherited" not in row.inner_text()
    assert row.locator("button.elegere-settings").is_enabled()
    assert "Organization Settings" in page.locator(".elegere-organization").inner_text()
    browse.shot("organization-scope")
    browse.assert_clean()
