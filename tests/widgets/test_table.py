"""The table: columns, inherited rows, and 200 servers a page at a time without 200 rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServer, SmtpSettings
from elegere_widgets.widgets import EmailServersPanel, ServersTable
from tests.fixtures.service import RunningService
from tests.widgets.support import live_widgets, shown

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]
NOW = datetime.now(UTC)


def make_server(i: int, *, inherited: bool = False, tested_ok: bool | None = True) -> EmailServer:
    return EmailServer.model_validate(
        {
            "id": f"srv_{i:03d}",
            "workspace_id": None if inherited else SALES,
            "organization_id": "org_acme",
            "scope": "organization" if inherited else "workspace",
            "inherited": inherited,
            "type": "smtp",
            "name": f"Relay {i:03d}",
            "version": 1,
            "settings": {
                "server": f"smtp{i}.example.com",
                "port": 587,
                "use_ssl": True,
                "account": "a",
                "sender_address": "a@example.com",
            },
            "usage": {"custom_actions": i % 3, "scheduler_jobs": i % 2},
            "created_at": NOW,
            "updated_at": NOW,
            "last_test": None
            if tested_ok is None
            else {"ok": tested_ok, "at": NOW - timedelta(hours=3), "elapsed_ms": 50},
        }
    )


def insert_servers(service: RunningService, names: Sequence[str]) -> list[str]:
    """Own servers of Sales, written to the store directly (as the seed does)."""
    from elegere_widgets.server.store.tables import EmailServerRow

    settings = SmtpSettings(
        server="smtp.example.com",
        port=587,
        use_ssl=True,
        account="bulk",
        sender_address="bulk@acme.example",
        password="bulk-password",
    )
    ids = [f"srv_bulk_{i:04d}" for i in range(len(names))]
    with service.ctx.sessions() as session:
        for server_id, name in zip(ids, names, strict=True):
            session.add(
                EmailServerRow(
                    id=server_id,
                    organization_id="org_acme",
                    workspace_id=SALES,
                    scope_key=SALES,
                    type="smtp",
                    name=name,
                    name_key=name.casefold(),
                    settings=settings.public(),
                    secrets_sealed=service.ctx.box.seal(settings.secrets()),
                    secrets_set={"password": True},
                )
            )
        session.commit()
    return ids


def test_columns_and_the_inherited_mark(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    relay, mailer = panel.table.rows
    assert relay.cells[:5] == [
        "Acme Relay",
        "SMTP",
        "smtp.acme.example:587",
        "Inherited from Organization",
        "1 custom action",
    ] or relay.cells[:4] == [
        "Acme Relay",
        "SMTP",
        "smtp.acme.example:587",
        "Inherited from Organization",
    ]
    assert "Inherited from Organization" in relay.scope_label.value
    assert relay.cells[5] == "✓ 2 days ago"
    # Inherited: Settings and Delete are disabled, and the tooltip says why.
    for control in (relay.settings_button, relay.delete_button):
        assert control.disabled
        assert "Inherited from the Organization" in control.tooltip
        assert "Admin or IT Delegates" in control.tooltip
    assert mailer.cells == [
        "Sales Mailer",
        "SMTP",
        "mail.acme.example:465",
        "This workspace",
        "1 custom action, 1 scheduler job",
        "✓ 40 days ago",
        "Healthy: No check has failed.",
        "—",  # signs in with a password: no certificate
    ]
    assert not mailer.settings_button.disabled and not mailer.delete_button.disabled
    assert not shown(panel, panel.table.pager)  # two servers need no paging


def test_200_servers_page_by_25_and_paging_builds_no_widgets() -> None:
    opened: list[str] = []
    start = live_widgets()
    table = ServersTable(on_settings=lambda s: opened.append(s.id), on_delete=lambda s: None)
    servers = [make_server(i) for i in range(200)]
    before = live_widgets()
    table.show(servers)
    built = live_widgets() - before
    print(f"one page of 25 rows: {built} widget models")
    assert len(table.rows) == 25 and table.page_label.value == "1–25 of 200"
    assert built < 25 * 30  # one page of rows, not 200
    assert table.prev_page_button.disabled and not table.next_page_button.disabled

    table.next_page_button.click()
    assert table.page_label.value == "26–50 of 200"
    assert table.rows[0].cells[0] == "Relay 025"
    table.rows[0].settings_button.click()
    assert opened == ["srv_025"]
    table.go_to_page(7)
    assert table.page_label.value == "176–200 of 200" and table.next_page_button.disabled
    table.show(servers[:30])  # a refresh with fewer servers keeps the page in range
    assert table.page_label.value == "26–30 of 30" and len(table.rows) == 5
    table.show(servers, focus="srv_130")
    assert table.page_label.value == "126–150 of 200"
    assert "elegere-row-highlight" in table.row_for("srv_130")._dom_classes  # type: ignore[union-attr]
    assert live_widgets() - before == built  # paging and refreshing reuse the rows
    table.close()
    assert live_widgets() == start  # and closing the table releases every one


def test_the_cells_say_what_happened() -> None:
    table = ServersTable(on_settings=lambda s: None, on_delete=lambda s: None)
    table.show(
        [
            make_server(0, tested_ok=None),
            make_server(1, tested_ok=False),
            make_server(5, inherited=True),
        ]
    )
    never, failed, inherited = table.rows
    assert never.cells[4:6] == ["Not used", "— never"]
    assert failed.cells[4:6] == ["1 custom action, 1 scheduler job", "✗ 3 h ago"]
    assert inherited.cells[3] == "Inherited from Organization"
    table.show([])
    assert table.rows == [] and table.empty_message.layout.display is None
    table.close()


def test_a_workspace_with_200_servers_pages_and_refreshes_without_growing(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    insert_servers(service, [f"Bulk relay {i:03d}" for i in range(198)])
    panel = make_panel(admin)
    assert len(panel.servers) == 200
    assert len(panel.table.rows) == 25
    assert panel.table.page_label.value == "1–25 of 200"
    assert shown(panel, panel.table.pager)
    before = live_widgets()
    panel.refresh_button.click()
    panel.table.next_page_button.click()
    panel.refresh_button.click()
    assert panel.table.page_label.value == "26–50 of 200"
    assert live_widgets() == before


def test_the_header_shares_the_rows_column_layout() -> None:
    """On a page narrower than the table, flexbox shrinks a line's cells in proportion to
    their widths: the header must have the rows' cells (the same layouts, the button columns
    too), or its titles drift off their columns (by up to ~50 px at a 1300 px page)."""
    table = ServersTable(on_settings=lambda s: None, on_delete=lambda s: None)
    table.show([make_server(0), make_server(1)], focus="srv_1")
    header = list(table.header.children)
    for row in table.rows:
        assert [c.layout for c in row.children] == [c.layout for c in header]
    *cells, actions = (c.layout for c in header)
    for layout in cells:
        assert layout.min_width == "0"  # no cell's content holds its column wider
    # The actions shrink to their widest button, the same on the header and on every row.
    assert actions.min_width == "150px" and actions is table.rows[0].actions.layout
    plain, highlighted = (r.layout for r in table.rows)
    # The highlight's frame takes no more width than every row's (and the header's) sides.
    sides = ("border_left", "border_right")
    widths = {
        getattr(lay, s).split()[0]
        for lay in (plain, highlighted, table.header.layout)
        for s in sides
    }
    assert widths == {"2px"}
    assert highlighted.border is None and plain.border is None  # sides only, no shorthand
    table.show([make_server(0), make_server(1)])
    assert table.rows[1].layout.border_top is None
    assert table.rows[1].layout.border_left == table.rows[0].layout.border_left
    table.close()
