"""The table of a workspace's email servers, one page at a time.

Columns: Name (a link to the server's details), Type, the key setting (server:port or the
mailbox), Scope, Used by, Last test, Health (a badge and its reason), Certificate (its end, for
Graph and OAuth 2.0 servers), and the row's actions: Test now, Send test email, Settings and
Delete. On inherited rows Send test email stays; the others are disabled, with a tooltip
saying why.

Rows are widgets that are built once and reused: a page shows at most ``page_size`` of them,
and neither paging nor a refresh builds new ones. Rows share their cells' layouts and styles,
so one is 14 widget models (a few dozen with its own; 200 rows of those would be thousands).
The header uses the same column layouts, so that its cells stay over the rows' cells at any
page width. The table only shows data and calls back:
``ServersTable(on_settings=…, on_delete=…, on_details=…, …).show(servers)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle

from ..models import EmailServer
from .common import button, close_tree, css, esc, set_visible
from .formatting import (
    INHERITED_MARK,
    OWN_MARK,
    certificate_cell,
    health_html,
    health_text,
    last_test,
    unreadable_secrets,
    used_by,
)
from .palette import var

COLUMNS: tuple[tuple[str, str], ...] = (
    ("Name", "170px"),
    ("Type", "95px"),
    ("Server / Account", "200px"),
    ("Scope", "150px"),
    ("Used by", "150px"),
    ("Last test", "105px"),
    ("Health", "200px"),
    ("Certificate", "150px"),  # its title keeps one line at a 900 px page
)
# The actions wrap onto two lines, or more on a narrow page, down to the widest button.
ACTIONS_WIDTH = "250px"
ACTIONS_MIN_WIDTH = "150px"
ROW_LINE = f"1px solid {var('row-line')}"
HIGHLIGHT_LINE = f"2px solid {var('highlight')}"
# A highlighted row has a 2px frame; every row and the header keep 2px sides (transparent) so
# that the frame does not push that row's cells off their columns.
SIDE = "2px solid transparent"
INHERITED_TIP = (
    "Inherited from the Organization: only the Organization's Admin or IT Delegates can "
    "change or delete it."
)
INHERITED_TEST_TIP = (
    "Inherited from the Organization: its checks are the Organization's (its Admin or IT "
    "Delegates test it, and the scheduled checks). Send test email works here."
)
PAGE_SIZE = 25
ORGANIZATION_MARK = "This organization"  # an organization's own server, in its own panel

Callback = Callable[[EmailServer], None]


def _cell_layout(width: str, *, min_width: str = "0") -> ipywidgets.Layout:
    # A narrow page shrinks a line's cells in proportion to these widths (their text wraps:
    # theme.py). With no minimum (and what does not fit clipped), a cell's content cannot
    # hold its column wider on one line than on another, so the header and every row shrink
    # alike and stay aligned. The actions' minimum is the widest button's, the same in the
    # header: their buttons wrap onto more lines instead of being cut.
    return ipywidgets.Layout(width=width, min_width=min_width, overflow="hidden", flex="0 1 auto")


class _Shared:
    """Layouts and styles that every row and the header share: a row is then 10 widget
    models, not 26, and one set of column layouts serves the header and the rows alike."""

    def __init__(self) -> None:
        self.layouts = [_cell_layout(w) for _, w in COLUMNS]
        self.label_style = LabelStyle()
        self.html_style = HTMLStyle()
        self.button_style = ipywidgets.ButtonStyle()
        self.actions_layout = _cell_layout(ACTIONS_WIDTH, min_width=ACTIONS_MIN_WIDTH)
        self.button_layout = ipywidgets.Layout(width="auto")  # as wide as its words

    def widgets(self) -> list[ipywidgets.Widget]:
        return [
            *self.layouts,
            self.label_style,
            self.html_style,
            self.button_style,
            self.actions_layout,
            self.button_layout,
        ]


@dataclass(frozen=True)
class RowActions:
    """What the row's controls call with their server; None hides Test now / Send test
    email, or leaves the name a plain link that does nothing."""

    on_settings: Callback
    on_delete: Callback
    on_details: Callback | None = None
    on_test_now: Callback | None = None
    on_send_test: Callback | None = None


class ServerRow(ipywidgets.HBox):
    """One row; ``show(server)`` fills it again, so the same widgets serve every page."""

    def __init__(self, actions: RowActions, shared: _Shared) -> None:
        self.server: EmailServer | None = None

        def cell(column: int, name: str) -> ipywidgets.Label:
            label = ipywidgets.Label("", layout=shared.layouts[column], style=shared.label_style)
            return css(label, f"elegere-cell-{name}")

        def html_cell(column: int, name: str) -> ipywidgets.HTML:
            widget = ipywidgets.HTML(layout=shared.layouts[column], style=shared.html_style)
            return css(widget, f"elegere-cell-{name}")

        def action(text: str, name: str, **kwargs: object) -> ipywidgets.Button:
            return button(
                text, name, layout=shared.button_layout, style=shared.button_style, **kwargs
            )

        self.name_button = css(
            ipywidgets.Button(layout=shared.layouts[0], style=shared.button_style),
            "elegere-cell-name",
            "elegere-name-link",
        )
        self.type_label = cell(1, "type")
        self.key_label = cell(2, "key")
        self.scope_label = html_cell(3, "scope")
        self.used_by_label = cell(4, "used-by")
        self.last_test_label = cell(5, "last-test")
        self.health_label = html_cell(6, "health")
        self.certificate_label = html_cell(7, "certificate")
        self.test_now_button = action("Test now", "elegere-test-now", icon="plug")
        self.send_test_button = action("Send test email", "elegere-send-test", icon="envelope")
        self.settings_button = action("Settings", "elegere-settings", icon="cog")
        self.delete_button = action("Delete", "elegere-delete", icon="trash", button_style="danger")
        for control, callback in (
            (self.name_button, actions.on_details),
            (self.test_now_button, actions.on_test_now),
            (self.send_test_button, actions.on_send_test),
            (self.settings_button, actions.on_settings),
            (self.delete_button, actions.on_delete),
        ):
            if callback is not None:
                control.on_click(self._calling(callback))
        for control, callback in (
            (self.test_now_button, actions.on_test_now),
            (self.send_test_button, actions.on_send_test),
        ):
            set_visible(control, callback is not None)
        self.actions = css(
            ipywidgets.HBox(
                [
                    self.test_now_button,
                    self.send_test_button,
                    self.settings_button,
                    self.delete_button,
                ],
                layout=shared.actions_layout,
            ),
            "elegere-row-actions",
        )
        self._id_class = ""
        super().__init__(
            [
                self.name_button,
                self.type_label,
                self.key_label,
                self.scope_label,
                self.used_by_label,
                self.last_test_label,
                self.health_label,
                self.certificate_label,
                self.actions,
            ]
        )
        self.layout.align_items = "center"
        self._frame(highlight=False)
        css(self, "elegere-row")

    def _calling(self, callback: Callback) -> Callable[[object], None]:
        def click(_button: object) -> None:
            if self.server is not None:
                callback(self.server)

        return click

    def _frame(self, *, highlight: bool) -> None:
        # Sides one by one, never the `border` shorthand: with both set, which one wins in the
        # browser depends on the order the properties happen to be applied in.
        layout = self.layout
        layout.border_top = HIGHLIGHT_LINE if highlight else None
        layout.border_bottom = HIGHLIGHT_LINE if highlight else ROW_LINE
        layout.border_left = layout.border_right = HIGHLIGHT_LINE if highlight else SIDE

    def show(self, server: EmailServer, *, highlight: bool = False) -> None:
        self.server = server
        # A class per server id lets a browser test find "the row of srv_…" on any page.
        if self._id_class:
            self.remove_class(self._id_class)
        self._id_class = f"elegere-row-{server.id}"
        self.add_class(self._id_class)
        self.name_button.description = server.name
        self.name_button.tooltip = f"Open the details of '{server.name}'"
        self.type_label.value = server.type_label
        self.key_label.value = server.key_setting
        self.key_label.tooltip = server.key_setting
        if server.inherited:
            self.scope_label.value = (
                f'<span class="elegere-inherited">⤓ {esc(INHERITED_MARK)}</span>'
            )
        else:
            self.scope_label.value = f'<span class="elegere-own">{esc(_own_mark(server))}</span>'
        self.used_by_label.value = used_by(server.usage)
        text, tip = last_test(server.last_test)
        if server.secrets_unreadable:  # what to do comes before how the last test went
            text = tip = unreadable_secrets(server.secrets_unreadable)
        self.last_test_label.value = text
        self.last_test_label.tooltip = tip
        self.health_label.value = health_html(server.health)
        certificate = certificate_cell(server)
        self.certificate_label.value = certificate.html()
        self.certificate_label.tooltip = certificate.tip or None
        if server.inherited:
            tips = (INHERITED_TEST_TIP, INHERITED_TIP, INHERITED_TIP)
        else:
            tips = (
                f"Test the stored settings of '{server.name}' now",
                f"Change the settings of '{server.name}'",
                f"Delete '{server.name}'",
            )
        managed = (self.test_now_button, self.settings_button, self.delete_button)
        for control, tip in zip(managed, tips, strict=True):
            control.disabled = server.inherited
            control.tooltip = tip
        self.send_test_button.tooltip = f"Send a test email through '{server.name}'"
        (self.add_class if highlight else self.remove_class)("elegere-row-highlight")
        self._frame(highlight=highlight)
        self.layout.display = None

    @property
    def cells(self) -> list[str]:
        """What the row shows, as text: for tests and for reading."""
        server = self.server
        scope = "" if server is None else INHERITED_MARK if server.inherited else _own_mark(server)
        return [
            self.name_button.description,
            self.type_label.value,
            self.key_label.value,
            scope,
            self.used_by_label.value,
            self.last_test_label.value,
            "" if server is None else health_text(server.health),
            "" if server is None else certificate_cell(server).text,
        ]


def _own_mark(server: EmailServer) -> str:
    return ORGANIZATION_MARK if server.scope == "organization" else OWN_MARK


class ServersTable(ipywidgets.VBox):
    """Header, the rows of the current page, and Prev / "1–25 of 200" / Next."""

    def __init__(
        self,
        *,
        on_settings: Callback,
        on_delete: Callback,
        on_details: Callback | None = None,
        on_test_now: Callback | None = None,
        on_send_test: Callback | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}.")
        self.page_size = page_size
        self.page = 0
        self.servers: list[EmailServer] = []
        self._actions = RowActions(on_settings, on_delete, on_details, on_test_now, on_send_test)
        self._pool: list[ServerRow] = []
        self._shared = _Shared()
        self._shown = 0
        shared = self._shared
        # The rows' column layouts, and an empty cell over the actions: with the same cells
        # the header shrinks as the rows do on a narrow page (with fewer it did not).
        self.header = css(
            ipywidgets.HBox(
                [
                    ipywidgets.HTML(f"<b>{esc(title)}</b>", layout=layout, style=shared.html_style)
                    for (title, _w), layout in zip(COLUMNS, shared.layouts, strict=True)
                ]
                + [ipywidgets.HTML(layout=shared.actions_layout, style=shared.html_style)],
                layout=ipywidgets.Layout(border_left=SIDE, border_right=SIDE),
            ),
            "elegere-table-header",
        )
        self.rows_box = css(ipywidgets.VBox(), "elegere-rows")
        self.empty_message = css(
            ipywidgets.HTML("<i>No email servers yet: add one with Add Email Server.</i>"),
            "elegere-empty",
        )
        self.prev_page_button = button("Prev", "elegere-prev-page", icon="chevron-left")
        self.next_page_button = button("Next", "elegere-next-page", icon="chevron-right")
        self.page_label = css(ipywidgets.Label(""), "elegere-page-label")
        self.prev_page_button.on_click(lambda _b: self.go_to_page(self.page - 1))
        self.next_page_button.on_click(lambda _b: self.go_to_page(self.page + 1))
        self.pager = css(
            ipywidgets.HBox([self.prev_page_button, self.page_label, self.next_page_button]),
            "elegere-pager",
        )
        super().__init__([self.header, self.rows_box, self.empty_message, self.pager])
        css(self, "elegere-table")
        self._render(None)

    @property
    def rows(self) -> list[ServerRow]:
        """The rows of the current page, top to bottom."""
        return self._pool[: self._shown]

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.servers) // self.page_size))

    def show(self, servers: Sequence[EmailServer], *, focus: str | None = None) -> None:
        """Show these servers; ``focus`` (a server id) opens its page and highlights its row."""
        self.servers = list(servers)
        index = next((i for i, s in enumerate(self.servers) if s.id == focus), None)
        if index is not None:
            self.page = index // self.page_size
        self.page = min(self.page, self.page_count - 1)
        self._render(focus)

    def go_to_page(self, page: int) -> None:
        self.page = max(0, min(page, self.page_count - 1))
        self._render(None)

    def row_for(self, server_id: str) -> ServerRow | None:
        """The row of a server on the current page."""
        return next((r for r in self.rows if r.server and r.server.id == server_id), None)

    def _render(self, focus: str | None) -> None:
        start = self.page * self.page_size
        page = self.servers[start : start + self.page_size]
        while len(self._pool) < len(page):  # grows to one page at most, never per refresh
            self._pool.append(ServerRow(self._actions, self._shared))
        for row, server in zip(self._pool, page, strict=False):
            row.show(server, highlight=server.id == focus)
        self._shown = len(page)
        if tuple(self.rows_box.children) != tuple(self.rows):
            self.rows_box.children = self.rows
        total = len(self.servers)
        set_visible(self.empty_message, total == 0)
        set_visible(self.header, total > 0)
        set_visible(self.pager, total > self.page_size)
        self.page_label.value = f"{start + 1}–{start + len(page)} of {total}" if total else "0 of 0"
        self.prev_page_button.disabled = self.page == 0
        self.next_page_button.disabled = self.page >= self.page_count - 1

    def close(self) -> None:
        # Also called by Widget.__del__, possibly on a half-built table.
        for row in getattr(self, "_pool", ()):  # rows off the page are alive too
            close_tree(row)
        shared = getattr(self, "_shared", None)
        for widget in shared.widgets() if shared else ():
            widget.close()
        close_tree(self)
