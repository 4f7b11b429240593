"""Update Email Server: Settings on a row, Save, a stale version and Reload, a test with the
stored secrets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch
from elegere_widgets.widgets import EmailServersPanel, UpdateServerView
from tests.fixtures.smtp import SmtpPeer
from tests.widgets.support import shown

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


def open_settings(panel: EmailServersPanel, name: str) -> UpdateServerView:
    row = next(r for r in panel.table.rows if r.cells[0] == name)
    row.settings_button.click()
    view = panel.update_view
    assert view is not None and shown(panel, view)
    return view


def test_settings_opens_the_form_filled_and_save_changes_only_the_port(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    fields = view.form.fields
    assert fields["name"].value == "Sales Mailer"
    assert fields["server"].value == "mail.acme.example"
    assert (fields["port"].value, fields["use_ssl"].value) == (465, True)
    assert fields["account"].value == "sales"
    assert fields["sender_address"].value == "sales@acme.example"
    assert fields["password"].value == ""  # empty means "keep the stored one"
    assert "leave empty to keep" in view.form.rows["password"].note.value
    assert view.form.errors == {}

    fields["port"].value = 2465
    assert view.form.patch() == EmailServerPatch(settings={"port": 2465})
    # A stored password goes only to the server it was entered for: the form says so, and
    # the service's refusal shows on the same field.
    assert "Enter the Password again: Port changed" in view.form.rows["password"].note.value
    view.save_button.click()
    assert panel.update_view is view
    assert "Enter the Password again" in view.form.error_for("password")
    assert admin.email_servers.get(SALES, "srv_sales_mailer").version == 1
    fields["password"].value = "sales-demo-password"
    assert view.form.error_for("password") == ""
    view.save_button.click()

    assert panel.update_view is None, (view.status.text, view.form.errors)
    assert panel.status.kind == "ok" and "Saved 'Sales Mailer'" in panel.status.text
    row = next(r for r in panel.table.rows if r.cells[0] == "Sales Mailer")
    assert row.cells[2] == "mail.acme.example:2465"
    stored = admin.email_servers.get(SALES, "srv_sales_mailer")
    assert stored.key_setting == "mail.acme.example:2465" and stored.version == 2
    assert stored.secrets_set == {"password": True}  # the stored password was kept


def test_nothing_changed_saves_nothing(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    view.save_button.click()
    assert panel.update_view is view and "Nothing to save" in view.status.text
    assert admin.email_servers.get(SALES, "srv_sales_mailer").version == 1


def test_an_invalid_field_is_shown_and_nothing_is_saved(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    view.form.fields["sender_address"].value = "not an address"
    assert "valid email address" in view.form.error_for("sender_address")
    view.save_button.click()
    assert panel.update_view is view and view.status.kind == "error"
    assert admin.email_servers.get(SALES, "srv_sales_mailer").version == 1


def test_someone_else_saved_first_says_so_and_reload_shows_their_change(
    admin: Client, client_for: Callable[[str], Client], make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    assert not shown(panel, view.reload_button)

    # Another admin (the same account in another browser tab) saves first.
    other = client_for("admin@acme.example")
    other.email_servers.update(
        SALES,
        "srv_sales_mailer",
        EmailServerPatch(settings={"sender_address": "deals@acme.example"}),
        version=1,
    )

    view.form.fields["name"].value = "Sales Mailer (EU)"
    view.save_button.click()
    assert panel.update_view is view
    assert view.status.kind == "error"
    assert "Someone else saved 'Sales Mailer' first" in view.status.text
    assert shown(panel, view.reload_button)

    view.reload_button.click()
    assert not shown(panel, view.reload_button)
    assert view.form.fields["sender_address"].value == "deals@acme.example"  # their change
    assert view.form.fields["name"].value == "Sales Mailer"
    assert view.server.version == 2 and "version 2" in view.title.value

    view.form.fields["name"].value = "Sales Mailer (EU)"
    view.save_button.click()
    assert panel.update_view is None
    stored = admin.email_servers.get(SALES, "srv_sales_mailer")
    assert (stored.name, stored.settings.sender_address, stored.version) == (  # type: ignore[union-attr]
        "Sales Mailer (EU)",
        "deals@acme.example",
        3,
    )


def test_a_test_from_the_update_form_reuses_the_stored_password_and_a_new_one_is_emptied(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    spec = peer.spec("Peer relay")
    token = admin.email_servers.test(SALES, spec).test_token
    assert token
    admin.email_servers.create(SALES, spec, test_token=token)

    panel = make_panel(admin)
    view = open_settings(panel, "Peer relay")
    assert view.test_button is not None
    view.test_button.click()  # the password field is empty: the stored one is used
    assert view.tester is not None and view.tester.status.kind == "ok", view.tester.status.text
    assert "<b>Authenticate</b>" in view.tester.stages.value

    password = view.form.fields["password"]
    password.value = "a-new-password"
    view.save_button.click()
    assert panel.update_view is None and password.value == ""
    assert "a-new-password" not in repr(panel)


@pytest.mark.parametrize("action", ["cancel", "reopen"])
def test_cancel_or_another_view_closes_the_form_without_saving(
    admin: Client, make_panel: MakePanel, action: str
) -> None:
    panel = make_panel(admin)
    view = open_settings(panel, "Sales Mailer")
    view.form.fields["port"].value = 2525
    view.form.fields["password"].value = "typed-but-not-saved"
    if action == "cancel":
        view.cancel_button.click()
        assert panel.view is None
    else:
        panel.add_button.click()
        assert panel.view is panel.wizard
    assert view.form.fields["password"].value == ""
    assert view.comm is None  # closed
    assert admin.email_servers.get(SALES, "srv_sales_mailer").version == 1
