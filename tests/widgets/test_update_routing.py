"""Update Email Server: the fallback server (the workspace's own and inherited servers but
itself, or None) and the pace, shown as stored and saved with the PATCH."""

from __future__ import annotations

from collections.abc import Callable

from elegere_widgets.client import Client
from elegere_widgets.widgets import EmailServersPanel
from tests.fixtures.service import RunningService, add_server_row

from .test_update import SALES, open_settings

MakePanel = Callable[..., EmailServersPanel]


def test_the_fallback_and_pace_are_shown_and_saved(
    admin: Client, make_panel: MakePanel, service: RunningService
) -> None:
    add_server_row(service, "srv_sales_backup", "Sales Backup", SALES)
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    # Every server of the workspace but the one being changed, and None.
    assert sorted(label for label, _ in view.fallback.options) == [
        "Acme Relay (organization)",
        "None",
        "Sales Backup",
    ]
    # What the dropdown shows: "None", not an empty box.
    assert view.fallback.label == "None" and view.pace.value == ""

    view.fallback.value = "srv_acme_relay"
    view.pace.value = "30"
    view.save_button.click()

    assert panel.update_view is None, view.status.text
    assert "Saved 'Sales Mailer'" in panel.status.text
    stored = admin.email_servers.get(SALES, "srv_sales_mailer")
    assert (stored.fallback_server_id, stored.max_per_minute) == ("srv_acme_relay", 30)
    assert stored.settings.server == "mail.acme.example" and stored.version == 2

    # Opened again: as stored. Back to none and no pace.
    view = open_settings(panel, "Sales Mailer")
    assert (view.fallback.label, view.pace.value) == ("Acme Relay (organization)", "30")
    view.fallback.label = "None"
    view.pace.value = ""
    view.save_button.click()
    assert panel.update_view is None, view.status.text
    stored = admin.email_servers.get(SALES, "srv_sales_mailer")
    assert (stored.fallback_server_id, stored.max_per_minute) == (None, None)


def test_a_bad_pace_or_a_fallback_cycle_is_refused_with_what_to_fix(
    admin: Client, make_panel: MakePanel, service: RunningService
) -> None:
    add_server_row(service, "srv_sales_backup", "Sales Backup", SALES)
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    view.pace.value = "fast"
    view.save_button.click()
    assert panel.update_view is view
    assert "Max per minute must be a whole number" in view.status.text
    view.pace.value = ""
    view.save_button.click()
    assert "Nothing to save" in view.status.text

    view.fallback.value = "srv_sales_backup"
    view.save_button.click()
    assert panel.update_view is None, view.status.text
    # The backup falling back to the mailer would make a cycle: the service refuses it, and
    # the form says why.
    view = open_settings(panel, "Sales Backup")
    assert "Sales Mailer" in [label for label, _ in view.fallback.options]
    view.fallback.value = "srv_sales_mailer"
    view.save_button.click()
    assert panel.update_view is view
    assert view.status.kind == "error" and "cycle" in view.status.text.lower()
    assert admin.email_servers.get(SALES, "srv_sales_backup").fallback_server_id is None
