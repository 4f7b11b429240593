"""The Delete confirmation: Delete and Cancel, and a replacement when the server is in use.

``DeleteDialog(server, usages, candidates, on_confirm=…, on_cancel=…)`` does not know what
deleting means: ``on_confirm(replacement_id)`` does (``None`` when nothing uses the server).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets

from ..errors import BadReplacement, ElegereError, ServerInUse
from ..models import EmailServer, Usage
from .common import StatusLine, button, close_tree, css, esc, handles_errors, set_visible
from .palette import var

KIND_LABELS = {
    "custom_action": "Custom action",
    "scheduler_job": "Scheduler job",
    "notifications": "Notifications of workspace",
    "default_server": "Default server of organization",
    "fallback": "Fallback of server",
}
CHOOSE = "Choose a replacement…"
# The placeholder's value: a Dropdown whose value is None shows an empty box in the browser.
NOT_CHOSEN = ""


def candidate_label(server: EmailServer) -> str:
    where = " — inherited from Organization" if server.inherited else ""
    return f"{server.name} ({server.type_label}, {server.key_setting}){where}"


class DeleteDialog(ipywidgets.VBox):
    """Confirm a delete; when the server is in use, Delete waits for a replacement."""

    def __init__(
        self,
        server: EmailServer,
        usages: Sequence[Usage],
        candidates: Sequence[EmailServer],
        *,
        on_confirm: Callable[[str | None], None],
        on_cancel: Callable[[], None],
    ) -> None:
        self.server = server
        self.usages: list[Usage] = list(usages)
        # Never the server itself: it cannot take over its own usages.
        self.candidates = [c for c in candidates if c.id != server.id]
        self._on_confirm = on_confirm
        self._on_cancel = on_cancel
        self.question = css(ipywidgets.HTML(), "elegere-delete-question")
        self.usages_list = css(ipywidgets.HTML(), "elegere-usages")
        self.replacement = css(
            ipywidgets.Dropdown(
                options=[(CHOOSE, NOT_CHOSEN)]
                + [(candidate_label(c), c.id) for c in self.candidates],
                value=NOT_CHOSEN,
                description="Replacement",
                style={"description_width": "100px"},
                layout=ipywidgets.Layout(width="620px"),
            ),
            "elegere-replacement",
        )
        self.replacement_error = css(ipywidgets.HTML(), "elegere-replacement-error")
        self.delete_button = button(
            "Delete", "elegere-confirm-delete", icon="trash", button_style="danger"
        )
        self.cancel_button = button("Cancel", "elegere-cancel-delete")
        self.status = StatusLine("elegere-delete-status")
        self.replacement.observe(self._on_replacement, names="value")
        self.delete_button.on_click(self._on_delete_click)
        self.cancel_button.on_click(self._on_cancel_click)
        super().__init__(
            [
                css(ipywidgets.HTML(f"<h4>Delete {esc(server.name)}</h4>"), "elegere-dialog-title"),
                self.question,
                self.usages_list,
                self.replacement,
                self.replacement_error,
                ipywidgets.HBox([self.delete_button, self.cancel_button]),
                self.status,
            ],
            layout=ipywidgets.Layout(border=f"1px solid {var('danger-frame')}", padding="4px 12px"),
        )
        css(self, "elegere-delete-dialog")
        self._show_usages()

    @property
    def in_use(self) -> bool:
        return bool(self.usages)

    @property
    def usage_names(self) -> list[str]:
        return [u.name for u in self.usages]

    def _show_usages(self) -> None:
        name = esc(self.server.name)
        if not self.in_use:
            self.question.value = (
                f"Delete <b>{name}</b>? Nothing sends through it. This cannot be undone."
            )
        else:
            self.question.value = (
                f"<b>{name}</b> is in use. Choose the server that takes over what sends through "
                "it, then delete it. This cannot be undone."
            )
        items = "".join(
            f'<li class="elegere-usage">{esc(KIND_LABELS.get(u.kind, u.kind))}: '
            f"<b>{esc(u.name)}</b></li>"
            for u in self.usages
        )
        self.usages_list.value = f"Used by:<ul>{items}</ul>" if items else ""
        set_visible(self.usages_list, self.in_use)
        set_visible(self.replacement, self.in_use)
        if self.in_use and not self.candidates:
            self._replacement_message(
                "No other server can take over: add one first, then delete this one."
            )
        self._refresh()

    def _refresh(self) -> None:
        self.delete_button.disabled = self.in_use and not self.replacement.value

    def _replacement_message(self, message: str) -> None:
        self.replacement_error.value = (
            f'<span class="elegere-tone-error">{esc(message)}</span>' if message else ""
        )

    # ------------------------------------------------------------ handlers

    @handles_errors
    def _on_replacement(self, _change: object = None) -> None:
        self._replacement_message("")
        self._refresh()

    @handles_errors
    def _on_delete_click(self, _button: object = None) -> None:
        replacement = (self.replacement.value or None) if self.in_use else None
        if self.in_use and replacement is None:
            self._replacement_message("Choose the server that takes over first.")
            return
        self.delete_button.disabled = True
        self.status.busy("Deleting…")
        try:
            self._on_confirm(replacement)
        finally:
            if self.comm is not None:  # still open: the delete failed
                self._refresh()

    @handles_errors
    def _on_cancel_click(self, _button: object = None) -> None:
        self._on_cancel()

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, ServerInUse):
            # Something started to use it since the dialog opened: now it needs a replacement.
            self.usages = list(exc.usages) or self.usages
            self._show_usages()
            self.status.error(str(exc))
        elif isinstance(exc, BadReplacement):
            self._replacement_message(exc.for_field("replacement_id") or str(exc))
            self.status.error("Choose another replacement.")
        else:
            self.status.error(str(exc))

    def close(self) -> None:
        close_tree(self)
