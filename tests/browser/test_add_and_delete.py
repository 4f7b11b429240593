"""Issue 4 in Chromium: add an SMTP server by clicking and typing, against a real aiosmtpd peer
that the service trusts, down to the new row; then delete "Sales Mailer", which is in use,
choosing a replacement from the drop-down."""

from __future__ import annotations

import pytest

from elegere_widgets.client import Client
from tests.browser.conftest import Browse, Site
from tests.browser.support import (
    expect_row_names,
    row_names,
    trusting_peer,
    type_into,
    type_smtp_server,
)
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import ACCOUNT, PASSWORD, SmtpPeer

NEW_NAME = "Sales relay (browser)"


@pytest.fixture(scope="module")
def service_extra(pki: Pki, peer: SmtpPeer) -> tuple[dict[str, str], list[str]]:
    return trusting_peer(pki, peer)


@pytest.fixture(scope="module")
def dashboard_url(site: Site) -> str:
    return site.voila(token=True)


def test_add_an_smtp_server_then_delete_one_in_use(
    dashboard_url: str, browse: Browse, peer: SmtpPeer, site: Site
) -> None:
    page = browse.page
    browse.open(dashboard_url, ".elegere-row")
    page.locator(".elegere-row").nth(1).wait_for()
    assert row_names(browse) == ["Acme Relay", "Sales Mailer"]
    browse.shot("table")

    # 1 Type
    page.locator("button.elegere-add").click()
    page.locator(".elegere-wizard").wait_for()
    assert page.locator("button.elegere-next").is_disabled()  # no type chosen yet
    page.locator(".elegere-type label", has_text="SMTP").click()
    browse.shot("type")
    page.locator("button.elegere-next").click()

    # 2 Settings
    type_smtp_server(browse, NEW_NAME, peer, ACCOUNT, "sales@acme.example")
    type_into(browse, "password", PASSWORD)
    assert page.locator(".elegere-field-port input").input_value() == str(peer.port)
    assert page.locator(".elegere-field-error:visible").count() == 0
    browse.shot("settings")
    page.locator("button.elegere-next").click()

    # 3 Test: Next waits for a passing test of exactly these settings.
    test_button = page.locator("button.elegere-test")
    test_button.wait_for()
    next_button = page.locator("button.elegere-next")
    assert next_button.is_disabled()
    test_button.click()
    page.wait_for_function(
        "() => !document.querySelector('button.elegere-next').disabled", timeout=30_000
    )
    stages = page.locator(".elegere-stages").inner_text()
    assert "✓" in stages and "✗" not in stages, stages
    assert peer.auth_attempts, "the test logged in to the peer for real"
    browse.shot("test-passed")
    next_button.click()

    # 4 Summary, then Complete
    summary = page.locator(".elegere-summary")
    summary.wait_for()
    text = summary.inner_text()
    assert NEW_NAME in text and PASSWORD not in text  # secrets only as "set"
    browse.shot("summary")
    page.locator("button.elegere-complete").click()
    page.locator(".elegere-row", has_text=NEW_NAME).wait_for()
    assert page.locator(".elegere-wizard").count() == 0
    assert f"Added '{NEW_NAME}'" in page.locator(".elegere-status").inner_text()
    expect_row_names(browse, ["Acme Relay", "Sales Mailer", NEW_NAME])
    browse.shot("added")

    # Delete "Sales Mailer": in use, so Delete waits for a replacement.
    page.locator(".elegere-row-srv_sales_mailer button.elegere-delete").click()
    dialog = page.locator(".elegere-delete-dialog")
    dialog.wait_for()
    usages = dialog.locator(".elegere-usages").inner_text()
    assert "Send quote" in usages and "Weekly digest" in usages
    confirm = page.locator("button.elegere-confirm-delete")
    assert confirm.is_disabled()
    browse.shot("delete-dialog")
    select = page.locator(".elegere-replacement select")
    # ipywidgets writes the options' spaces as no-break spaces.
    labels = [t.replace("\xa0", " ") for t in select.locator("option").all_text_contents()]
    choice = next((i for i, label in enumerate(labels) if label.startswith(NEW_NAME)), None)
    assert choice is not None, labels
    assert any("inherited from Organization" in label for label in labels)  # inherited too
    select.select_option(index=choice)
    page.wait_for_function(
        "() => !document.querySelector('button.elegere-confirm-delete').disabled"
    )
    browse.shot("replacement-chosen")
    confirm.click()
    page.locator(".elegere-row-srv_sales_mailer").wait_for(state="detached")
    page.locator(".elegere-status", has_text="Deleted 'Sales Mailer'").wait_for()
    expect_row_names(browse, ["Acme Relay", NEW_NAME])
    new_row = page.locator(".elegere-row", has_text=NEW_NAME)
    assert "1 custom action, 1 scheduler job" in new_row.inner_text()
    browse.shot("deleted")
    browse.assert_clean()

    # What the service stored: the new server, and the usages moved to it.
    with Client(site.service_url, site.token) as client:
        servers = {s.name: s for s in client.email_servers.list("ws_sales")}
        assert set(servers) == {"Acme Relay", NEW_NAME}
        added = servers[NEW_NAME]
        assert added.settings.model_dump()["port"] == peer.port
        assert added.secrets_set == {"password": True}
        actions = client.custom_actions.list("ws_sales")
        jobs = client.scheduler_jobs.list("ws_sales")
        assert {a.email_server_id for a in actions} == {added.id}
        assert {j.email_server_id for j in jobs} == {added.id}
