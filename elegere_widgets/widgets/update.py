"""Update Email Server: the settings form filled with the stored server, Save and Cancel, and an
optional Test Connection that reuses the stored secrets (``server_id``).

Below the settings, how the worker routes the server's mail: the fallback server (one of
``choices``, the scope's servers, never the server itself; or None) and an optional pace
(max per minute).

A server that signs in with a certificate (Microsoft Graph, SMTP with OAuth 2.0) also gets the
certificate rollover (``rollover``: the calls bound to this server, see ``widgets.rollover``):
upload the next certificate, test it, promote it or drop it; each change reloads the form.

Save calls ``on_save(patch, version)`` with only what changed; a StaleVersion (someone else
saved first) says so and shows Reload, which calls ``on_reload()``: the owner fetches the
server again and hands it to :meth:`UpdateServerView.load`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets

from ..errors import ElegereError, InvalidSettings, NameTaken, StaleVersion
from ..models import EmailServer, EmailServerPatch
from .common import (
    Runner,
    StatusLine,
    button,
    close_tree,
    css,
    esc,
    handles_errors,
    logger,
    set_visible,
)
from .connection_test import ConnectionTestView, TestCall
from .formatting import uses_certificate
from .forms import ServerForm, form_for
from .palette import var
from .rollover import CertificateRolloverView, RolloverCalls
from .state import Spec, TestTracker, fingerprint

ROUTING_FIELDS = ("fallback_server_id", "max_per_minute")
NO_FALLBACK = ""  # the Fallback dropdown's value for "None"


class UpdateServerView(ipywidgets.VBox):
    """The Update Email Server form; every control is an attribute a test can click."""

    def __init__(
        self,
        server: EmailServer,
        *,
        on_save: Callable[[EmailServerPatch, int], None],
        on_cancel: Callable[[], None],
        on_reload: Callable[[], None],
        on_test: TestCall | None = None,
        run_in_thread: Runner | None = None,
        choices: Sequence[EmailServer] = (),
        rollover: RolloverCalls | None = None,
    ) -> None:
        self.server = server
        self.choices = list(choices)
        self._on_save = on_save
        self._on_cancel = on_cancel
        self._on_reload = on_reload
        self.title = css(ipywidgets.HTML(), "elegere-update-title")
        self.form: ServerForm = form_for(server.type, server)
        self.tracker = TestTracker()
        self.tester: ConnectionTestView | None = None
        if on_test is not None:
            self.tester = ConnectionTestView(
                tracker=self.tracker,
                get_spec=self._spec_to_test,
                on_test=on_test,
                on_error=self._test_error,
                on_update=self._refresh,
                run_in_thread=run_in_thread,
            )
        self.test_button = self.tester.test_button if self.tester else None
        # A server that signs in with a certificate rolls it over here (as stored: an SMTP
        # server switched to OAuth 2.0 gets it once saved).
        self.rollover: CertificateRolloverView | None = None
        if rollover is not None and uses_certificate(server):
            self.rollover = CertificateRolloverView(
                server, rollover, on_changed=self._server_changed, run_in_thread=run_in_thread
            )
        self.save_button = button("Save", "elegere-save", icon="save", button_style="primary")
        self.cancel_button = button("Cancel", "elegere-cancel-update")
        self.reload_button = button("Reload", "elegere-reload", icon="refresh")
        set_visible(self.reload_button, False)
        self.status = StatusLine("elegere-update-status")
        wide = {"description_width": "initial"}
        self.fallback = css(
            ipywidgets.Dropdown(description="Fallback server", style=wide), "elegere-fallback"
        )
        self.pace = css(
            ipywidgets.Text(description="Max per minute", placeholder="no limit", style=wide),
            "elegere-pace",
        )
        self.routing_note = ipywidgets.HTML(
            '<span class="elegere-note">After this server\'s second failed attempt, a message '
            "goes to the fallback server. Max per minute paces the sending (empty: no limit)."
            "</span>"
        )
        self._show_routing()
        self.form.on_change(self._on_settings_changed)
        self.save_button.on_click(self._on_save_click)
        self.cancel_button.on_click(self._on_cancel_click)
        self.reload_button.on_click(self._on_reload_click)
        children: list[ipywidgets.Widget] = [
            self.title,
            self.form,
            ipywidgets.VBox([self.fallback, self.pace, self.routing_note]),
        ]
        if self.tester is not None:
            children.append(self.tester)
        if self.rollover is not None:
            children.append(self.rollover)
        children += [
            ipywidgets.HBox([self.save_button, self.cancel_button, self.reload_button]),
            self.status,
        ]
        super().__init__(
            children,
            layout=ipywidgets.Layout(border=f"1px solid {var('frame')}", padding="4px 12px"),
        )
        css(self, "elegere-update")
        self._show_title()
        self._refresh()

    def _show_title(self) -> None:
        self.title.value = (
            f"<h4>Update Email Server — {esc(self.server.name)} "
            f'<span class="elegere-title-detail">({esc(self.server.type_label)}, '
            f"version {self.server.version})</span></h4>"
        )

    def load(self, server: EmailServer) -> None:
        """Show the server as stored now (after Reload); the user makes the change again."""
        self.server = server
        self.form.load(server)
        self._show_routing()
        self.tracker.reset()
        if self.tester is not None:
            self.tester.result = None
            self.tester.stages.value = ""
            self.tester.status.clear()
        set_visible(self.reload_button, False)
        self._show_title()
        if self.rollover is not None:
            self.rollover.load(server)
        self.status.info(f"Reloaded '{server.name}' (version {server.version}).")
        self._refresh()

    def _server_changed(self, server: EmailServer, message: str) -> None:
        """The rollover changed the server (a new version): the form shows it as stored now,
        so that Save works on it; what was typed in the settings and not saved is lost."""
        self.server = server
        self.form.load(server)
        self._show_title()
        if self.rollover is not None:
            self.rollover.load(server)
        set_visible(self.reload_button, False)
        self.status.ok(message)

    def _show_routing(self) -> None:
        """The fallback choices (the scope's servers but this one) and the stored values."""
        # A Dropdown shows nothing at all for the value None, so "no fallback" is "".
        options: list[tuple[str, str]] = [("None", NO_FALLBACK)]
        for other in self.choices:
            if other.id != self.server.id:
                where = " (organization)" if other.inherited else ""
                options.append((f"{other.name}{where}", other.id))
        current = self.server.fallback_server_id
        if current is not None and current not in {ident for _, ident in options}:
            options.append((current, current))  # not in the list the panel has: kept, shown
        self.fallback.options = options
        self.fallback.value = current or NO_FALLBACK
        pace = self.server.max_per_minute
        self.pace.value = "" if pace is None else str(pace)

    def _routing_changes(self) -> dict[str, Any]:
        """The fallback and pace when they differ from the stored ones (ValueError: the pace
        is not a whole number)."""
        changes: dict[str, Any] = {}
        chosen = self.fallback.value or None
        if chosen != self.server.fallback_server_id:
            changes["fallback_server_id"] = chosen
        text = self.pace.value.strip()
        if text and not text.isdigit():
            raise ValueError(
                "Max per minute must be a whole number from 1 to 100000; leave it empty for "
                "no limit."
            )
        pace = int(text) if text else None
        if pace != self.server.max_per_minute:
            changes["max_per_minute"] = pace
        return changes

    def _refresh(self) -> None:
        running = self.tracker.running
        self.save_button.disabled = running
        if self.tester is not None:
            self.tester.test_button.disabled = running
            self.tester.cancel_test_button.disabled = not running

    # ------------------------------------------------------------ test

    def _spec_to_test(self) -> tuple[Spec, str]:
        spec = self.form.spec(server_id=self.server.id)  # stored secrets fill the empty ones
        return spec, fingerprint(spec)

    def _on_settings_changed(self) -> None:
        if self.tester is None:
            return
        try:
            fp = self.form.fingerprint(server_id=self.server.id)
            self.tester.mark_stale(self.tracker.status(fp))
        except Exception:  # the form calls this from its observer: never let it escape
            logger.exception("Bug after a settings change")

    def _test_error(self, exc: ElegereError) -> None:
        if isinstance(exc, InvalidSettings):
            self.form.show_errors(exc.field_errors)

    # ------------------------------------------------------------ handlers

    @handles_errors
    def _on_save_click(self, _button: object = None) -> None:
        patch = self.form.patch()
        try:
            routing = self._routing_changes()
        except ValueError as exc:
            self.status.error(str(exc))
            return
        if routing:
            patch = patch.model_copy(update=routing)  # given, so sent (None clears)
        if patch.name is None and not patch.settings and not routing:
            self.status.info("Nothing to save: no field changed.")
            return
        self.save_button.disabled = True
        self.status.busy("Saving…")
        try:
            self._on_save(patch, self.server.version)
        finally:
            if self.comm is not None:
                self._refresh()
        # Saved: nothing secret stays in a widget, even if the owner keeps the view open.
        self.form.clear_secrets()

    @handles_errors
    def _on_cancel_click(self, _button: object = None) -> None:
        self._on_cancel()

    @handles_errors
    def _on_reload_click(self, _button: object = None) -> None:
        self._on_reload()

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, StaleVersion):
            self.status.error(
                f"Someone else saved '{self.server.name}' first, so your change was not saved. "
                "Reload to see the current settings, then make your change again."
            )
            set_visible(self.reload_button, True)
        elif isinstance(exc, InvalidSettings) and exc.field_errors:
            routing = [e.message for e in exc.field_errors if e.field in ROUTING_FIELDS]
            if len(routing) == len(exc.field_errors):  # not on the settings form: say it here
                self.status.error(" ".join(routing))
                return
            elsewhere = self.form.show_errors(exc.field_errors)
            self.status.error(f"Fix the fields marked in red. {' '.join(elsewhere.values())}")
        elif isinstance(exc, NameTaken):
            self.form.show_errors({"name": str(exc)})
            self.status.error(str(exc))
        else:
            self.status.error(str(exc))

    def close(self) -> None:
        tracker = getattr(self, "tracker", None)  # close() also runs from Widget.__del__
        if tracker is not None:
            tracker.cancel()
        form = getattr(self, "form", None)
        if form is not None:
            form.clear_secrets()
        rollover = getattr(self, "rollover", None)
        if rollover is not None:
            rollover.close()
        close_tree(self)
