"""Which server sends notifications: a workspace's notifications server, or the organization's
default server (the one that sends for every workspace that names none).

:class:`MailSettingsView` shows the setting and lets one choose another server, or none (a
workspace then uses the organization's default); it takes a :class:`MailSetting` and
callbacks, and never calls the client. Save calls ``on_save(chosen, expected)`` with the
server chosen (None: unset) and the setting the view was opened with, so the owner can refuse
with a StaleVersion when someone changed it since; the view then offers Reload, which calls
``on_reload()``: the owner reads the setting again and hands it to :meth:`load`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import ipywidgets

from ..errors import ElegereError, InvalidSettings, StaleVersion
from ..models import EmailServer
from .common import StatusLine, button, close_tree, css, esc, handles_errors, set_visible
from .formatting import candidate_label
from .palette import var

# The Dropdown's value for "no server of its own": None shows an empty box in the browser.
UNSET = ""


@dataclass(frozen=True)
class MailSetting:
    """The setting as stored, and what one may choose.

    ``organization`` is None for a workspace's notifications server; for the organization's
    default server it is the organization's name. ``organization_default`` is, for a
    workspace, the server that sends when ``server_id`` is None (None: the organization has
    no default server).
    """

    place: str  # the workspace's or the organization's name
    server_id: str | None
    choices: Sequence[EmailServer] = field(default_factory=tuple)
    organization: str | None = None
    organization_default: EmailServer | None = None

    @property
    def for_organization(self) -> bool:
        return self.organization is not None

    def name_of(self, server_id: str | None) -> str:
        """A server's name among the choices (its id when it is not one of them)."""
        return next((s.name for s in self.choices if s.id == server_id), server_id or "")

    def unset_label(self) -> str:
        """What the "none" choice says: who sends then."""
        if self.for_organization:
            return "No default server"
        default = self.organization_default
        return f"Organization default ({default.name})" if default else "Organization default"

    def sentence(self) -> str:
        """Who sends now, as HTML."""
        place = esc(self.place)
        if self.for_organization:
            if self.server_id is None:
                return (
                    f"<b>{place}</b> has no default server: a workspace that names no "
                    "notifications server cannot send its notifications."
                )
            return (
                f"Workspaces of <b>{place}</b> that name no notifications server send them "
                f"through <b>{esc(self.name_of(self.server_id))}</b>."
            )
        if self.server_id is not None:
            return (
                f"The notifications of <b>{place}</b> are sent by its notifications server "
                f"<b>{esc(self.name_of(self.server_id))}</b>."
            )
        if self.organization_default is not None:
            return (
                f"The notifications of <b>{place}</b> are sent by the organization's default: "
                f"<b>{esc(self.organization_default.name)}</b>."
            )
        return (
            f"No server sends the notifications of <b>{place}</b>: choose one here, or ask a "
            "Delegate of your organization to set its default server."
        )

    def said(self, server_id: str | None) -> str:
        """What the status says once ``server_id`` is saved (plain text)."""
        if self.for_organization:
            if server_id is None:
                return f"{self.place} has no default server now."
            return f"'{self.name_of(server_id)}' is now the default server of {self.place}."
        if server_id is not None:
            return f"The notifications of {self.place} now go through '{self.name_of(server_id)}'."
        default = self.organization_default
        through = f": '{default.name}'" if default else " (none is set yet)"
        return (
            f"The notifications of {self.place} now go through the organization's default{through}."
        )


class MailSettingsView(ipywidgets.VBox):
    """The notifications server of a workspace, or the organization's default server."""

    def __init__(
        self,
        setting: MailSetting,
        *,
        on_save: Callable[[str | None, str | None], None],
        on_cancel: Callable[[], None],
        on_reload: Callable[[], None],
    ) -> None:
        self.setting = setting
        self._on_save = on_save
        self._on_cancel = on_cancel
        self._on_reload = on_reload
        heading = "Default server" if setting.for_organization else "Notifications"
        self.title = css(ipywidgets.HTML(f"<h4>{heading}</h4>"), "elegere-mail-settings-title")
        self.current = css(ipywidgets.HTML(), "elegere-mail-settings-current")
        self.server = css(
            ipywidgets.Dropdown(
                description="Default server" if setting.for_organization else "Sent by",
                style={"description_width": "120px"},
                layout=ipywidgets.Layout(width="620px"),
            ),
            "elegere-mail-settings-server",
        )
        self.save_button = button(
            "Save", "elegere-save-mail-settings", icon="save", button_style="primary"
        )
        self.cancel_button = button("Cancel", "elegere-cancel-mail-settings")
        self.reload_button = button("Reload", "elegere-reload-mail-settings", icon="refresh")
        set_visible(self.reload_button, False)
        self.status = StatusLine("elegere-mail-settings-status")
        self.save_button.on_click(self._on_save_click)
        self.cancel_button.on_click(self._on_cancel_click)
        self.reload_button.on_click(self._on_reload_click)
        super().__init__(
            [
                self.title,
                self.current,
                self.server,
                ipywidgets.HBox([self.save_button, self.cancel_button, self.reload_button]),
                self.status,
            ],
            layout=ipywidgets.Layout(border=f"1px solid {var('frame')}", padding="4px 12px"),
        )
        css(self, "elegere-mail-settings")
        self.load(setting)

    def load(self, setting: MailSetting) -> None:
        """Show the setting as stored now (at first, and after Reload)."""
        self.setting = setting
        self.current.value = f'<span class="elegere-note">{setting.sentence()}</span>'
        self.server.options = [(setting.unset_label(), UNSET)] + [
            (candidate_label(s), s.id) for s in setting.choices
        ]
        self.server.value = setting.server_id or UNSET
        set_visible(self.reload_button, False)
        self.status.clear()

    @property
    def chosen(self) -> str | None:
        """The server chosen in the list; None for the "none" choice."""
        return self.server.value or None

    # ------------------------------------------------------------ handlers

    @handles_errors
    def _on_save_click(self, _button: object = None) -> None:
        if self.chosen == self.setting.server_id:
            self.status.info("Nothing to save: choose another server first.")
            return
        self.status.busy("Saving…")
        self._on_save(self.chosen, self.setting.server_id)

    @handles_errors
    def _on_cancel_click(self, _button: object = None) -> None:
        self._on_cancel()

    @handles_errors
    def _on_reload_click(self, _button: object = None) -> None:
        self._on_reload()

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, StaleVersion):
            self.status.error(str(exc))
            set_visible(self.reload_button, True)
        elif isinstance(exc, InvalidSettings) and exc.field_errors:
            self.status.error(" ".join(e.message for e in exc.field_errors))
        else:
            self.status.error(str(exc))

    def close(self) -> None:
        close_tree(self)
