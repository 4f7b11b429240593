"""A server's details: its settings (no secrets), health with the last checks, the week's
deliveries, what uses it, its fallback and its audit trail; Test now and Send test email.

``ServerDetailsView(server, on_load=…, on_close=…)`` does not call the client: ``on_load``
(the panel's) reads everything in a worker thread and answers a :class:`ServerStory`; until
then the status line says what is being read. The row actions the view offers open inside it
(``show_action``), below its buttons, so the details stay in view.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets

from ..errors import ElegereError, NotFound
from ..models import AuditEvent, DeliverySummary, EmailServer, ServerCheck, Usage
from .common import (
    Runner,
    StatusLine,
    button,
    close_tree,
    css,
    esc,
    guard_callback,
    handles_errors,
    set_visible,
)
from .common import start_thread as default_runner
from .details_html import (
    audit_section,
    deliveries_section,
    fallback_section,
    health_section,
    settings_html,
    usages_section,
)
from .palette import var
from .table import INHERITED_TEST_TIP

#: The period of the deliveries shown.
DELIVERY_DAYS = 7


@dataclass(frozen=True)
class ServerStory:
    """All that the details view shows of one server, as the panel read it."""

    server: EmailServer
    checks: Sequence[ServerCheck]
    deliveries: DeliverySummary
    usages: Sequence[Usage]
    audit: Sequence[AuditEvent]
    fallback: EmailServer | None = None


SECTIONS = (
    ("settings", "Settings"),
    ("health", "Health"),
    ("deliveries", f"Deliveries of the last {DELIVERY_DAYS} days"),
    ("usages", "What sends through it"),
    ("fallback", "Fallback server"),
    ("audit", "Audit trail"),
)


class ServerDetailsView(ipywidgets.VBox):
    """The details of one server; every control is an attribute a test can click."""

    def __init__(
        self,
        server: EmailServer,
        *,
        on_load: Callable[[], ServerStory],
        on_close: Callable[[], None],
        on_test_now: Callable[[], None] | None = None,
        on_send_test: Callable[[], None] | None = None,
        run_in_thread: Runner | None = None,
    ) -> None:
        self.server = server
        self.story: ServerStory | None = None
        self._on_load = on_load
        self._on_close = on_close
        self._run = run_in_thread or default_runner
        self._lock = threading.Lock()
        self._ticket = 0
        self._loaded = threading.Event()
        self.title = css(ipywidgets.HTML(), "elegere-details-title")
        self.back_button = button("Back to the list", "elegere-details-back", icon="arrow-left")
        self.test_now_button = button("Test now", "elegere-details-test-now", icon="plug")
        self.send_test_button = button(
            "Send test email", "elegere-details-send-test", icon="envelope"
        )
        self.reload_button = button("Reload", "elegere-details-reload", icon="refresh")
        self.status = StatusLine("elegere-details-status")
        self.action_area = css(ipywidgets.VBox(), "elegere-details-action")
        self.sections: dict[str, ipywidgets.HTML] = {
            key: css(ipywidgets.HTML(), f"elegere-details-{key}") for key, _title in SECTIONS
        }
        self._on_test_now = on_test_now
        self._on_send_test = on_send_test
        self.back_button.on_click(self._on_back_click)
        self.reload_button.on_click(self._on_reload_click)
        self.test_now_button.on_click(self._on_test_now_click)
        self.send_test_button.on_click(self._on_send_test_click)
        set_visible(self.test_now_button, on_test_now is not None)
        set_visible(self.send_test_button, on_send_test is not None)
        self.body = css(ipywidgets.VBox(list(self.sections.values())), "elegere-details-body")
        super().__init__(
            [
                self.title,
                ipywidgets.HBox(
                    [
                        self.back_button,
                        self.test_now_button,
                        self.send_test_button,
                        self.reload_button,
                    ]
                ),
                self.action_area,
                self.status,
                self.body,
            ],
            layout=ipywidgets.Layout(border=f"1px solid {var('frame')}", padding="4px 12px"),
        )
        css(self, "elegere-details")
        self._show_server(server)
        set_visible(self.body, False)

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Read everything again in the background; the status line shows progress."""
        with self._lock:
            self._ticket += 1
            ticket = self._ticket
            self._loaded.clear()
        self.reload_button.disabled = True
        self.status.busy(f"Reading the details of '{self.server.name}'…")

        def work() -> None:
            try:
                story = self._on_load()
            except NotFound as exc:  # deleted meanwhile: reading again cannot help
                if self._current(ticket):
                    self.status.error(f"{exc} Go back to the list and refresh it.")
            except ElegereError as exc:
                if self._current(ticket):
                    self.status.error(f"{exc} Then click Reload.")
            else:
                if self._current(ticket):
                    self.show(story)
            finally:
                if self._current(ticket):
                    self.reload_button.disabled = False
                    self._loaded.set()

        self._run(guard_callback(work, self.show_error, self.status))

    def _current(self, ticket: int) -> bool:
        with self._lock:
            return ticket == self._ticket

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the latest load ended (for tests and scripts); False on timeout."""
        return self._loaded.wait(timeout)

    def show(self, story: ServerStory) -> None:
        self.story = story
        self._show_server(story.server)
        html = {
            "settings": settings_html(story.server),
            "health": health_section(story.server, story.checks),
            "deliveries": deliveries_section(story.deliveries, DELIVERY_DAYS),
            "usages": usages_section(story.usages),
            "fallback": fallback_section(story.server, story.fallback),
            "audit": audit_section(story.audit),
        }
        for key, title in SECTIONS:
            self.sections[key].value = f"<h5>{esc(title)}</h5>{html[key]}"
        set_visible(self.body, True)
        self.status.clear()

    def _show_server(self, server: EmailServer) -> None:
        self.server = server
        self.title.value = (
            f"<h4>{esc(server.name)} "
            f'<span class="elegere-title-detail">({esc(server.type_label)}, '
            f"{esc(server.key_setting)})</span></h4>"
        )
        self.test_now_button.disabled = server.inherited
        self.test_now_button.tooltip = (
            INHERITED_TEST_TIP if server.inherited else "Test the stored settings now"
        )

    def text(self, key: str) -> str:
        """A section as its HTML (for tests): one of settings, health, deliveries, usages,
        fallback, audit."""
        return str(self.sections[key].value)

    # ------------------------------------------------------------ actions inside the view

    def show_action(self, view: ipywidgets.Widget) -> None:
        """Show Test now or Send test email below the buttons (closing the one shown)."""
        self.clear_action()
        self.action_area.children = [view]

    def clear_action(self) -> None:
        for child in self.action_area.children:
            child.close()
        self.action_area.children = []

    # ------------------------------------------------------------ handlers

    def show_error(self, exc: ElegereError) -> None:
        self.status.error(str(exc))

    @handles_errors
    def _on_test_now_click(self, _button: object = None) -> None:
        if self._on_test_now is not None:
            self._on_test_now()

    @handles_errors
    def _on_send_test_click(self, _button: object = None) -> None:
        if self._on_send_test is not None:
            self._on_send_test()

    @handles_errors
    def _on_back_click(self, _button: object = None) -> None:
        self._on_close()

    @handles_errors
    def _on_reload_click(self, _button: object = None) -> None:
        self.load()

    def close(self) -> None:
        with getattr(self, "_lock", threading.Lock()):  # also from Widget.__del__
            self._ticket = getattr(self, "_ticket", 0) + 1  # a load still running is ignored
        if "action_area" in self.__dict__:
            self.clear_action()
        close_tree(self)
