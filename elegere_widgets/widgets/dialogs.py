"""The Delete confirmation: Delete and Cancel, and a replacement when the server is in use.

``DeleteDialog(server, usages, candidates, on_confirm=…, on_cancel=…)`` does not know what
deleting means: ``on_confirm(replacement_id)`` does (``None`` when nothing uses the server).

An organization's server used by several workspaces gets one choice per place instead: given
``places`` (``client.organization_email_servers.replacements(org, id)``: each workspace that
uses it, and the organization's own usages) and ``on_confirm_each``, the dialog shows one
replacement per place, from that workspace's own servers or another organization server, and
calls ``on_confirm_each(ServerReplacements(...))``, the body of the delete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets

from ..errors import BadReplacement, ElegereError, ServerInUse
from ..models import (
    EmailServer,
    ReplacementCandidate,
    ReplacementChoice,
    ServerReplacements,
    Usage,
)
from .common import StatusLine, button, close_tree, css, esc, handles_errors, set_visible
from .formatting import KIND_LABELS, candidate_label
from .palette import var

CHOOSE = "Choose a replacement…"
# The placeholder's value: a Dropdown whose value is None shows an empty box in the browser.
NOT_CHOSEN = ""


def place_candidate_label(candidate: ReplacementCandidate, place: ReplacementChoice) -> str:
    # In a workspace, say which candidates are the organization's (every workspace has them).
    where = (
        " — organization server"
        if candidate.scope == "organization" and place.workspace_id is not None
        else ""
    )
    return f"{candidate.name} ({candidate.type_label}, {candidate.key_setting}){where}"


def usage_items(usages: Sequence[Usage]) -> str:
    return "".join(
        f'<li class="elegere-usage">{esc(KIND_LABELS.get(u.kind, u.kind))}: '
        f"<b>{esc(u.name)}</b></li>"
        for u in usages
    )


class PlaceChoice(ipywidgets.VBox):
    """One place that uses the server (a workspace, or the organization's own usages): what
    uses it there, and the server that takes over there."""

    def __init__(self, place: ReplacementChoice) -> None:
        self.place = place
        where = (
            f"Workspace <b>{esc(place.name)}</b>"
            if place.workspace_id is not None
            else f"Organization <b>{esc(place.name)}</b> (needs an organization server)"
        )
        self.title = css(ipywidgets.HTML(where), "elegere-place-title")
        self.usages_list = css(
            ipywidgets.HTML(f"<ul>{usage_items(place.usages)}</ul>"), "elegere-usages"
        )
        self.replacement = css(
            ipywidgets.Dropdown(
                options=[(CHOOSE, NOT_CHOSEN)]
                + [(place_candidate_label(c, place), c.id) for c in place.candidates],
                value=NOT_CHOSEN,
                description="Replacement",
                style={"description_width": "100px"},
                layout=ipywidgets.Layout(width="620px"),
            ),
            "elegere-place-replacement",
        )
        self.error = css(ipywidgets.HTML(), "elegere-replacement-error")
        super().__init__([self.title, self.usages_list, self.replacement, self.error])
        css(self, "elegere-place")
        if not place.candidates:
            self.show_message(
                f"No server can take over in {place.name}: add one first, then delete this one."
            )

    @property
    def workspace_id(self) -> str | None:
        return self.place.workspace_id

    def show_message(self, message: str) -> None:
        self.error.value = (
            f'<span class="elegere-tone-error">{esc(message)}</span>' if message else ""
        )


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
        places: Sequence[ReplacementChoice] = (),
        on_confirm_each: Callable[[ServerReplacements], None] | None = None,
    ) -> None:
        self.server = server
        self.usages: list[Usage] = list(usages)
        # Never the server itself: it cannot take over its own usages.
        self.candidates = [c for c in candidates if c.id != server.id]
        self._on_confirm = on_confirm
        self._on_cancel = on_cancel
        self._on_confirm_each = on_confirm_each
        # One choice per place: for an organization's server, when the caller can delete
        # with a replacement per workspace.
        self.places: list[PlaceChoice] = (
            [PlaceChoice(p) for p in places]
            if places and on_confirm_each is not None and server.scope == "organization"
            else []
        )
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
        for choice in self.places:
            choice.replacement.observe(self._on_replacement, names="value")
        self.place_box = css(ipywidgets.VBox(list(self.places)), "elegere-places")
        self.delete_button.on_click(self._on_delete_click)
        self.cancel_button.on_click(self._on_cancel_click)
        super().__init__(
            [
                css(ipywidgets.HTML(f"<h4>Delete {esc(server.name)}</h4>"), "elegere-dialog-title"),
                self.question,
                self.usages_list,
                self.replacement,
                self.place_box,
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

    @property
    def per_place(self) -> bool:
        """One replacement per place (workspace, organization) rather than one for all."""
        return bool(self.places)

    def place(self, workspace_id: str | None) -> PlaceChoice:
        """The choice for one workspace (by id), or for the organization's usages (None)."""
        return next(p for p in self.places if p.workspace_id == workspace_id)

    def _show_usages(self) -> None:
        name = esc(self.server.name)
        if not self.in_use:
            self.question.value = (
                f"Delete <b>{name}</b>? Nothing sends through it. This cannot be undone."
            )
        elif self.per_place:
            self.question.value = (
                f"<b>{name}</b> is in use in {len(self.places)} places. For each, choose the "
                "server that takes over there (the workspace's own or another organization "
                "server), then delete it. This cannot be undone."
            )
        else:
            self.question.value = (
                f"<b>{name}</b> is in use. Choose the server that takes over what sends through "
                "it, then delete it. This cannot be undone."
            )
        items = usage_items(self.usages)
        self.usages_list.value = f"Used by:<ul>{items}</ul>" if items else ""
        # Per place, each place lists its own usages.
        set_visible(self.usages_list, self.in_use and not self.per_place)
        set_visible(self.replacement, self.in_use and not self.per_place)
        set_visible(self.place_box, self.in_use and self.per_place)
        if self.in_use and not self.per_place and not self.candidates:
            self._replacement_message(
                "No other server can take over: add one first, then delete this one."
            )
        self._refresh()

    def _refresh(self) -> None:
        if self.per_place:
            chosen = all(p.replacement.value for p in self.places)
        else:
            chosen = bool(self.replacement.value)
        self.delete_button.disabled = self.in_use and not chosen

    def _replacement_message(self, message: str) -> None:
        self.replacement_error.value = (
            f'<span class="elegere-tone-error">{esc(message)}</span>' if message else ""
        )

    # ------------------------------------------------------------ handlers

    @handles_errors
    def _on_replacement(self, change: dict[str, object] | None = None) -> None:
        self._replacement_message("")
        owner = change.get("owner") if change else None
        for p in self.places:
            if p.replacement is owner:
                p.show_message("")
        self._refresh()

    @handles_errors
    def _on_delete_click(self, _button: object = None) -> None:
        if self.in_use and self.per_place:
            self._confirm_per_place()
            return
        replacement = (self.replacement.value or None) if self.in_use else None
        if self.in_use and replacement is None:
            self._replacement_message("Choose the server that takes over first.")
            return
        self._confirm(lambda: self._on_confirm(replacement))

    def _confirm_per_place(self) -> None:
        missing = [p for p in self.places if not p.replacement.value]
        for p in missing:
            p.show_message(f"Choose the server that takes over in {p.place.name} first.")
        if missing or self._on_confirm_each is None:
            return
        on_confirm_each = self._on_confirm_each
        chosen = ServerReplacements(
            replacement_id=next(
                (p.replacement.value for p in self.places if p.workspace_id is None), None
            ),
            replacements={
                p.workspace_id: p.replacement.value
                for p in self.places
                if p.workspace_id is not None
            },
        )
        self._confirm(lambda: on_confirm_each(chosen))

    def _confirm(self, delete: Callable[[], None]) -> None:
        self.delete_button.disabled = True
        self.status.busy("Deleting…")
        try:
            delete()
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
        elif isinstance(exc, BadReplacement) and self.per_place:
            for p in self.places:
                field = (
                    "replacement_id" if p.workspace_id is None else f"replacements.{p.workspace_id}"
                )
                p.show_message(exc.for_field(field) or "")
            self.status.error(f"{exc} Choose another replacement.")
        elif isinstance(exc, BadReplacement):
            self._replacement_message(exc.for_field("replacement_id") or str(exc))
            self.status.error("Choose another replacement.")
        else:
            self.status.error(str(exc))

    def close(self) -> None:
        close_tree(self)
