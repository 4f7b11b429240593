"""Delete with confirmation, and a replacement when the server is in use."""

from __future__ import annotations

from collections.abc import Callable

from elegere_widgets.client import Client
from elegere_widgets.server.store.tables import CustomActionRow
from elegere_widgets.widgets import DeleteDialog, EmailServersPanel
from tests.fixtures.service import RunningService
from tests.widgets.support import shown

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


def open_delete(panel: EmailServersPanel, name: str) -> DeleteDialog:
    row = next(r for r in panel.table.rows if r.cells[0] == name)
    row.delete_button.click()
    dialog = panel.delete_dialog
    assert dialog is not None and shown(panel, dialog), panel.status.text
    return dialog


def add_unused_server(admin: Client, service: RunningService, name: str) -> str:
    """A second own server, straight into the store (no SMTP peer needed to delete it)."""
    from tests.widgets.test_table import insert_servers

    [server_id] = insert_servers(service, [name])
    assert name in [s.name for s in admin.email_servers.list(SALES)]
    return server_id


def test_delete_a_server_in_use_after_choosing_its_replacement(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    dialog = open_delete(panel, "Sales Mailer")
    assert dialog.usage_names == ["Send quote", "Weekly digest"]
    assert "Custom action: <b>Send quote</b>" in dialog.usages_list.value
    assert "Scheduler job: <b>Weekly digest</b>" in dialog.usages_list.value
    assert shown(panel, dialog.usages_list) and shown(panel, dialog.replacement)
    # The other servers the workspace can use, inherited included; never the server itself.
    assert dialog.replacement.options[0] == ("Choose a replacement…", "")
    assert [value for _, value in dialog.replacement.options[1:]] == ["srv_acme_relay"]
    assert "inherited from Organization" in dialog.replacement.options[1][0]
    assert dialog.delete_button.disabled

    dialog.replacement.value = "srv_acme_relay"
    assert not dialog.delete_button.disabled
    dialog.delete_button.click()

    assert panel.delete_dialog is None
    assert panel.status.kind == "ok"
    assert "Deleted 'Sales Mailer'. 2 usages now send through 'Acme Relay'." in panel.status.text
    assert [row.cells[0] for row in panel.table.rows] == ["Acme Relay"]
    assert panel.table.rows[0].cells[4] == "1 custom action, 1 scheduler job"
    assert [s.id for s in admin.email_servers.list(SALES)] == ["srv_acme_relay"]
    actions = admin.custom_actions.list(SALES)
    jobs = admin.scheduler_jobs.list(SALES)
    assert [(a.name, a.email_server_id) for a in actions] == [("Send quote", "srv_acme_relay")]
    assert [(j.name, j.email_server_id) for j in jobs] == [("Weekly digest", "srv_acme_relay")]


def test_delete_an_unused_server_needs_no_replacement(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    add_unused_server(admin, service, "Spare relay")
    panel = make_panel(admin)
    dialog = open_delete(panel, "Spare relay")
    assert not dialog.in_use
    assert not shown(panel, dialog.replacement) and not shown(panel, dialog.usages_list)
    assert "Nothing sends through it" in dialog.question.value
    assert not dialog.delete_button.disabled
    dialog.delete_button.click()
    assert panel.delete_dialog is None and "Deleted 'Spare relay'." in panel.status.text
    assert [s.name for s in admin.email_servers.list(SALES)] == ["Acme Relay", "Sales Mailer"]


def test_cancel_deletes_nothing(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    dialog = open_delete(panel, "Sales Mailer")
    dialog.replacement.value = "srv_acme_relay"
    dialog.cancel_button.click()
    assert panel.view is None and dialog.comm is None
    assert [s.name for s in admin.email_servers.list(SALES)] == ["Acme Relay", "Sales Mailer"]


def test_a_usage_added_meanwhile_turns_the_dialog_into_a_replacement_choice(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    spare = add_unused_server(admin, service, "Spare relay")
    panel = make_panel(admin)
    dialog = open_delete(panel, "Spare relay")
    assert not dialog.in_use
    with service.ctx.sessions() as session:  # someone points a custom action at it
        session.add(
            CustomActionRow(
                id="ca_new", workspace_id=SALES, name="Notify buyer", email_server_id=spare
            )
        )
        session.commit()
    dialog.delete_button.click()
    assert panel.delete_dialog is dialog  # not deleted: 409, with the usages
    assert dialog.usage_names == ["Notify buyer"] and shown(panel, dialog.replacement)
    assert dialog.status.kind == "error" and "choose a replacement" in dialog.status.text
    assert dialog.delete_button.disabled
    dialog.replacement.value = "srv_sales_mailer"
    dialog.delete_button.click()
    assert panel.delete_dialog is None
    assert "1 usage now sends through 'Sales Mailer'" in panel.status.text
    assert {a.name: a.email_server_id for a in admin.custom_actions.list(SALES)}[
        "Notify buyer"
    ] == "srv_sales_mailer"


def test_the_dialog_alone_never_offers_the_server_itself_and_waits_for_a_choice() -> None:
    from tests.widgets.test_table import make_server

    server, other = make_server(1), make_server(2, inherited=True)
    from elegere_widgets.models import Usage

    confirmed: list[str | None] = []
    dialog = DeleteDialog(
        server,
        [Usage(kind="custom_action", id="ca", name="Send quote")],
        [server, other],
        on_confirm=confirmed.append,
        on_cancel=lambda: None,
    )
    assert [v for _, v in dialog.replacement.options] == ["", other.id]
    assert dialog.delete_button.disabled
    dialog.replacement.value = other.id
    dialog.delete_button.click()
    assert confirmed == [other.id]
    lonely = DeleteDialog(
        server,
        [Usage(kind="scheduler_job", id="j", name="Digest")],
        [server],
        on_confirm=confirmed.append,
        on_cancel=lambda: None,
    )
    assert lonely.delete_button.disabled
    assert "No other server can take over" in lonely.replacement_error.value
    dialog.close()
    lonely.close()
