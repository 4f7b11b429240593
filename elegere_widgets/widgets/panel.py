"""``EmailServersPanel``: the Workspace Settings → Email Servers tab.

::

    from elegere_widgets import Client, EmailServersPanel
    panel = EmailServersPanel(Client.from_env(), workspace="Sales")
    panel            # or display(panel): it is an ipywidgets.VBox
    EmailServersPanel(client, organization="Acme")   # the servers every workspace inherits

Only the panel calls the client; the table, the wizard, the update form, the delete dialog,
a server's details and its Test now / Send test email, and the server of notifications
(Notifications; Default server for an organization) take data and callbacks. Quick calls
(list, get, usages, create, update, delete) run inline; connection tests, test emails and the
reading of a server's details run in a worker thread. Every error of the client shows as a
message — in the status line, in the open view, or next to a field — never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import ipywidgets

from ..client import Client, EmailServers
from ..errors import ElegereError, NotFound, PermissionDenied, ReadOnlyServer, StaleVersion
from ..models import (
    ConnectionTestResult,
    EmailServer,
    EmailServerPatch,
    ReplacementChoice,
    SendTestResult,
    ServerReplacements,
    Workspace,
)
from .common import Runner, StatusLine, button, close_tree, css, esc, handles_errors
from .connection_test import StageCallback
from .details import DELIVERY_DAYS, ServerDetailsView, ServerStory
from .details_html import STRIP_CHECKS
from .dialogs import DeleteDialog
from .formatting import plural
from .mail_settings import MailSetting, MailSettingsView
from .rollover import RolloverCalls
from .server_actions import SendTestView, TestNowView
from .state import Spec
from .table import PAGE_SIZE, ServersTable
from .theme import stylesheet
from .update import UpdateServerView
from .wizard import AddServerWizard

NO_RIGHT = (
    "You need the Workspace Admin right on '{workspace}' to see or manage its email servers. "
    "A Delegate of your organization or a Workspace Admin of this workspace can grant it."
)

NO_ORG_RIGHT = (
    "You need the Admin Delegate or IT Delegate role of '{organization}' to manage the email "
    "servers its workspaces inherit. An Admin Delegate of your organization can grant it."
)

NO_RIGHT_ANY = (
    "You need the Workspace Admin right on a workspace to see or manage its email servers. "
    "A Delegate of your organization or a Workspace Admin of that workspace can grant it."
)

View = (
    AddServerWizard
    | UpdateServerView
    | DeleteDialog
    | ServerDetailsView
    | TestNowView
    | SendTestView
    | MailSettingsView
)
ActionView = TestNowView | SendTestView
# The attribute of each kind of view, in the order ``view`` looks for the open one: an action
# opened from the details shows inside them, so the details come last.
_VIEW_ATTRIBUTES: tuple[tuple[type[View], str], ...] = (
    (AddServerWizard, "wizard"),
    (UpdateServerView, "update_view"),
    (DeleteDialog, "delete_dialog"),
    (TestNowView, "test_now_view"),
    (SendTestView, "send_test_view"),
    (MailSettingsView, "mail_settings_view"),
    (ServerDetailsView, "details_view"),
)
#: The audit events a server's details show, newest first.
AUDIT_EVENTS = 20


@dataclass(frozen=True)
class Organization:
    """The organization whose own servers a panel manages."""

    id: str
    name: str


class EmailServersPanel(ipywidgets.VBox):
    """The Email Servers tab of one workspace, by name or id (``workspace="Sales"``), or of
    an organization's own servers (``organization="Acme"``, for its Admin and IT Delegates).

    Without either, the one workspace the caller administers. ``run_in_thread`` runs a
    connection test in the background (a new thread by default; tests pass a runner that
    runs it at once).
    """

    def __init__(
        self,
        client: Client,
        workspace: str | None = None,
        *,
        organization: str | None = None,
        page_size: int = PAGE_SIZE,
        run_in_thread: Runner | None = None,
    ) -> None:
        if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
            raise ValueError(f"workspace must be a workspace's name or id, not {workspace!r}.")
        if organization is not None and (
            not isinstance(organization, str) or not organization.strip()
        ):
            raise ValueError(
                f"organization must be an organization's name or id, not {organization!r}."
            )
        if workspace is not None and organization is not None:
            raise ValueError("Pass a workspace or an organization, not both.")
        self.client = client
        self.workspace_ref = workspace.strip() if workspace else None
        self.organization_ref = organization.strip() if organization else None
        self.workspace: Workspace | None = None
        self.organization: Organization | None = None
        self.servers: list[EmailServer] = []
        self._run_in_thread = run_in_thread
        self.denied = False
        self.access_text = ""

        self.stylesheet = stylesheet()  # first among the children, whatever the panel shows
        self.title = css(ipywidgets.HTML("<h3>Email Servers</h3>"), "elegere-title")
        self.subtitle = css(ipywidgets.HTML(), "elegere-subtitle")
        self.refresh_button = button("Refresh", "elegere-refresh", icon="refresh")
        self.add_button = button(
            "Add Email Server", "elegere-add", icon="plus", button_style="primary"
        )
        # Which server sends notifications: the workspace's, or the organization's default.
        self.mail_settings_button = button(
            "Default server" if organization is not None else "Notifications",
            "elegere-mail-settings-open",
            icon="envelope",
            tooltip="Which server sends notifications",
        )
        self.status = StatusLine("elegere-status")
        self.table = ServersTable(
            on_settings=self._open_update,
            on_delete=self._open_delete,
            on_details=self._open_details,
            on_test_now=self._open_test_now,
            on_send_test=self._open_send_test,
            page_size=page_size,
        )
        self.view_area = css(
            ipywidgets.VBox(layout=ipywidgets.Layout(margin="12px 0 0 0")), "elegere-view-area"
        )
        self.access_message = css(ipywidgets.HTML(), "elegere-access-denied")
        self.wizard: AddServerWizard | None = None
        self.update_view: UpdateServerView | None = None
        self.delete_dialog: DeleteDialog | None = None
        self.details_view: ServerDetailsView | None = None
        self.test_now_view: TestNowView | None = None
        self.send_test_view: SendTestView | None = None
        self.mail_settings_view: MailSettingsView | None = None
        self._my_address: str | None = None

        self.refresh_button.on_click(self._on_refresh)
        self.add_button.on_click(self._on_add)
        self.mail_settings_button.on_click(self._open_mail_settings)
        self.toolbar = css(
            ipywidgets.HBox([self.refresh_button, self.add_button, self.mail_settings_button]),
            "elegere-toolbar",
        )
        # The table joins once the servers are read: "no servers yet" would be wrong before.
        super().__init__([self.stylesheet, self.title, self.subtitle, self.toolbar, self.status])
        css(self, "elegere-panel", "elegere-landmark-region")
        self._load()

    # ------------------------------------------------------------ loading

    @handles_errors
    def _load(self, focus: str | None = None) -> None:
        if self.organization_ref is not None and self.organization is None:
            self.add_button.disabled = self.mail_settings_button.disabled = True
            self.organization = self._resolve_organization(self.organization_ref)
            if self.organization is None:
                return
            self.subtitle.value = (
                f"Organization <b>{esc(self.organization.name)}</b> · the servers every "
                "workspace inherits"
            )
        elif self.organization_ref is None and self.workspace is None:
            self.add_button.disabled = self.mail_settings_button.disabled = True
            self.workspace = self._resolve_workspace()
            if self.workspace is None:
                return
            self.subtitle.value = (
                f"Workspace <b>{esc(self.workspace.name)}</b> · "
                f"{esc(self.workspace.organization_name)}"
            )
        self.servers = self._api.list(self._owner())
        self.table.show(self.servers, focus=focus)
        self.add_button.disabled = self.mail_settings_button.disabled = False
        self.children = self._main_children()

    def _resolve_workspace(self) -> Workspace | None:
        """The workspace by id or name; None (and the plain message) without the right."""
        if self.workspace_ref is None:
            return self._only_workspace()
        try:
            return self.client.workspaces.get(self.workspace_ref)
        except NotFound as exc:
            # The service lists only the workspaces one administers. Ask for it by id: 403
            # says "no right" in the service's words; 404 leaves us unable to tell.
            try:
                self.client.email_servers.list(self.workspace_ref)
            except NotFound:
                self._deny(NO_RIGHT.format(workspace=self.workspace_ref), detail=str(exc))
                return None
            raise exc from None

    def _resolve_organization(self, wanted: str) -> Organization | None:
        """The caller's organization by id or name; None (and the plain message) otherwise.

        A user belongs to one organization, the one ``me`` names. The service has no list of
        organizations: the name comes from the workspaces the caller administers, and a
        Delegate who administers none is taken at their word (the id shows beside it).
        """
        org_id = self.client.me().organization_id
        names = {w.organization_id: w.organization_name for w in self.client.workspaces.list()}
        known = names.get(org_id)
        key = wanted.casefold()
        if key != org_id.casefold() and known is not None and key != known.casefold():
            self._deny(NO_ORG_RIGHT.format(organization=wanted))
            return None
        name = known or (wanted if key != org_id.casefold() else org_id)
        try:
            self.client.organization_email_servers.list(org_id)
        except PermissionDenied:
            self._deny(NO_ORG_RIGHT.format(organization=name))
            return None
        return Organization(org_id, name)

    def _only_workspace(self) -> Workspace | None:
        """No workspace named: the one the caller administers, if there is exactly one."""
        workspaces = self.client.workspaces.list()
        if len(workspaces) == 1:
            return workspaces[0]
        if not workspaces:
            self._deny(NO_RIGHT_ANY)
            return None
        names = ", ".join(f"{w.name} ({w.id})" for w in workspaces)
        raise NotFound(
            f"You administer several workspaces: {names}. Choose one with "
            "EmailServersPanel(client, workspace=...)."
        )

    def _main_children(self) -> list[ipywidgets.Widget]:
        return [
            self.stylesheet,
            self.title,
            self.subtitle,
            self.toolbar,
            self.status,
            self.table,
            self.view_area,
        ]

    def _deny(self, message: str, *, detail: str = "") -> None:
        """The plain message for a user without the right, and nothing else."""
        self.denied = True
        self._close_view()
        extra = f'<div class="elegere-notice-detail">{esc(detail)}</div>' if detail else ""
        self.access_message.value = f'<div class="elegere-notice-box">{esc(message)}{extra}</div>'
        self.access_text = message
        self.children = [self.stylesheet, self.title, self.access_message]

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, PermissionDenied) and not isinstance(exc, ReadOnlyServer):
            self._deny(str(exc))
        else:
            self.status.error(str(exc))

    # ------------------------------------------------------------ views

    def _open(self, view: View) -> None:
        self._close_view()
        setattr(self, _attribute_of(view), view)
        self.view_area.children = [view]

    def _close_view(self) -> None:
        for _kind, name in _VIEW_ATTRIBUTES:
            view = getattr(self, name, None)  # close() also runs from Widget.__del__
            if view is not None:
                view.close()
            if name in self.__dict__:
                setattr(self, name, None)
        if "view_area" in self.__dict__:
            self.view_area.children = []

    @property
    def view(self) -> View | None:
        """The open view: the wizard, the update form, the delete dialog, Test now or Send
        test email, the notifications' server, or a server's details (which may hold one of the last two)."""
        for _kind, name in _VIEW_ATTRIBUTES:
            view: View | None = getattr(self, name)
            if view is not None:
                return view
        return None

    @property
    def _api(self) -> EmailServers:
        """The calls of this panel's scope: a workspace's servers or the organization's own."""
        if self.organization_ref is None:
            return self.client.email_servers
        return self.client.organization_email_servers

    def _owner(self) -> str:
        """The id of the workspace or the organization whose servers these are."""
        if self.organization is not None:
            return self.organization.id
        if self.workspace is None:
            raise RuntimeError("The workspace is not loaded yet.")
        return self.workspace.id

    def _test(self, spec: Spec, on_stage: StageCallback) -> ConnectionTestResult:
        """Runs in the test's worker thread; ``on_stage`` gets each stage as it ends."""
        return self._api.test(self._owner(), spec, on_stage=on_stage)

    # ------------------------------------------------------------ add

    @handles_errors
    def _on_add(self, _button: object = None) -> None:
        self._owner()
        self.status.clear()
        self._open(
            AddServerWizard(
                on_test=self._test,
                on_complete=self._complete_add,
                on_cancel=self._close_view,
                run_in_thread=self._run_in_thread,
            )
        )

    def _complete_add(self, spec: Spec, test_token: str) -> None:
        server = self._api.create(self._owner(), spec, test_token=test_token)
        self._close_view()
        self.status.ok(f"Added '{server.name}' ({server.type_label}, {server.key_setting}).")
        self._reload(focus=server.id, then=self.status.text)

    # ------------------------------------------------------------ update

    @handles_errors
    def _open_update(self, server: EmailServer) -> None:
        fresh = self._api.get(self._owner(), server.id)  # the version to save against
        self.status.clear()
        view = UpdateServerView(
            fresh,
            on_save=lambda patch, version: self._save(fresh.id, patch, version),
            on_cancel=self._close_view,
            on_reload=lambda: self._reload_update(fresh.id),
            on_test=self._test,
            run_in_thread=self._run_in_thread,
            choices=self.servers,
            rollover=RolloverCalls.bound(self._api, self._owner(), fresh.id),
        )
        self._open(view)

    def _save(self, server_id: str, patch: EmailServerPatch, version: int) -> None:
        server = self._api.update(self._owner(), server_id, patch, version=version)
        self._close_view()
        self.status.ok(f"Saved '{server.name}'.")
        self._reload(focus=server.id, then=self.status.text)

    def _reload_update(self, server_id: str) -> None:
        server = self._api.get(self._owner(), server_id)
        if self.update_view is not None:
            self.update_view.load(server)

    # ------------------------------------------------------------ delete

    @handles_errors
    def _open_delete(self, server: EmailServer) -> None:
        owner = self._owner()
        usages = self._api.usages(owner, server.id)
        # An organization's server: each workspace that uses it chooses its own replacement
        # (its own servers or another organization server), so the places and their choices.
        places = (
            self._api.replacements(owner, server.id)
            if self.organization is not None and usages
            else []
        )
        self.status.clear()
        self._open(
            DeleteDialog(
                server,
                usages,
                [s for s in self.servers if s.id != server.id],
                on_confirm=lambda replacement: self._delete(server, replacement),
                on_cancel=self._close_view,
                places=places,
                on_confirm_each=lambda chosen: self._delete_each(server, places, chosen),
            )
        )

    def _delete(self, server: EmailServer, replacement_id: str | None) -> None:
        self._api.delete(self._owner(), server.id, replacement_id=replacement_id)
        moved = ""
        if replacement_id is not None and self.delete_dialog is not None:
            n = len(self.delete_dialog.usages)
            target = next((s.name for s in self.servers if s.id == replacement_id), "")
            verb = "sends" if n == 1 else "send"
            moved = f" {plural(n, 'usage')} now {verb} through '{target}'."
        self._close_view()
        self.status.ok(f"Deleted '{server.name}'.{moved}")
        self._reload(focus=replacement_id, then=self.status.text)

    def _delete_each(
        self,
        server: EmailServer,
        places: list[ReplacementChoice],
        chosen: ServerReplacements,
    ) -> None:
        """Delete an organization's server with a replacement per place (the dialog's
        choices): the status says where each place's usages went."""
        self._api.delete(
            self._owner(),
            server.id,
            replacement_id=chosen.replacement_id,
            replacements=chosen.replacements,
        )
        names = ((place.name, _chosen_name(place, chosen)) for place in places)
        moved = ", ".join(f"{where} → '{name}'" for where, name in names if name)
        self._close_view()
        self.status.ok(f"Deleted '{server.name}'. Its usages now send through: {moved}.")
        self._reload(focus=chosen.replacement_id, then=self.status.text)

    # ------------------------------------------------------------ details

    @handles_errors
    def _open_details(self, server: EmailServer) -> None:
        self._owner()
        self.status.clear()
        view = ServerDetailsView(
            server,
            on_load=lambda: self._story(server.id),
            on_close=self._close_view,
            on_test_now=lambda: self._open_test_now(view.server, inside=view),
            on_send_test=lambda: self._open_send_test(view.server, inside=view),
            run_in_thread=self._run_in_thread,
        )
        self._open(view)
        view.load()

    def _story(self, server_id: str) -> ServerStory:
        """Everything the details show (in the view's worker thread)."""
        owner, api = self._owner(), self._api
        server = api.get(owner, server_id)
        since = datetime.now(UTC) - timedelta(days=DELIVERY_DAYS)
        fallback = server.fallback_server_id
        return ServerStory(
            server=server,
            checks=api.checks_page(owner, server_id, page_size=STRIP_CHECKS).items,
            deliveries=api.delivery_summary(owner, server_id, since=since),
            usages=api.usages(owner, server_id),
            audit=api.audit_events_page(owner, server_id, page_size=AUDIT_EVENTS).items,
            fallback=next((s for s in self.servers if s.id == fallback), None),
        )

    # ------------------------------------------------------------ Test now, Send test email

    @handles_errors
    def _open_test_now(self, server: EmailServer, inside: ServerDetailsView | None = None) -> None:
        owner = self._owner()
        self.status.clear()

        def test(on_stage: StageCallback) -> ConnectionTestResult:
            return self._api.test_stored(owner, server.id, on_stage=on_stage)

        view = TestNowView(
            server,
            on_test=test,
            on_close=lambda: self._close_action(view, inside),
            on_result=self._after_action(server, inside),
            run_in_thread=self._run_in_thread,
        )
        self._show_action(view, inside)
        view.start()

    @handles_errors
    def _open_send_test(self, server: EmailServer, inside: ServerDetailsView | None = None) -> None:
        owner = self._owner()
        if self._my_address is None:
            self._my_address = self.client.me().email
        self.status.clear()

        def send(address: str, on_stage: StageCallback) -> SendTestResult:
            return self._api.send_test(owner, server.id, to=address, on_stage=on_stage)

        view = SendTestView(
            server,
            self._my_address,
            on_send=send,
            on_close=lambda: self._close_action(view, inside),
            on_result=self._after_action(server, inside),
            run_in_thread=self._run_in_thread,
        )
        self._show_action(view, inside)

    def _show_action(self, view: ActionView, inside: ServerDetailsView | None) -> None:
        """In the details it was opened from, while they are open; else as the panel's view."""
        if inside is None or inside is not self.details_view:
            self._open(view)
            return
        for name in ("test_now_view", "send_test_view"):
            setattr(self, name, None)
        inside.show_action(view)
        setattr(self, _attribute_of(view), view)

    def _close_action(self, view: ActionView, inside: ServerDetailsView | None) -> None:
        if inside is not None and inside is self.details_view:
            inside.clear_action()
            setattr(self, _attribute_of(view), None)
        else:
            self._close_view()

    def _after_action(
        self, server: EmailServer, inside: ServerDetailsView | None
    ) -> Callable[[ConnectionTestResult], None]:
        """After a test or a test email (in its worker thread): the row shows the new health
        and last test; open details read their checks, deliveries and trail again."""

        def done(_result: ConnectionTestResult) -> None:
            self._reload(focus=server.id, then="The outcome shows in its view.")
            if inside is not None and inside is self.details_view:
                inside.load()

        return done

    # ------------------------------------------------------------ notifications' server

    @handles_errors
    def _open_mail_settings(self, _button: object = None) -> None:
        setting = self._mail_setting()
        self.status.clear()
        self._open(
            MailSettingsView(
                setting,
                on_save=self._save_mail_setting,
                on_cancel=self._close_view,
                on_reload=self._reload_mail_setting,
            )
        )

    def _mail_setting(self) -> MailSetting:
        """The stored setting of this scope, and the servers one may choose (the table's:
        a workspace's own and inherited servers, or the organization's own)."""
        owner = self._owner()
        if self.organization is not None:
            org = self.client.mail_settings.get_organization(owner)
            return MailSetting(
                self.organization.name,
                org.default_server_id,
                self.servers,
                organization=self.organization.name,
            )
        ws = self.client.mail_settings.get(owner)
        default_id = ws.organization_default_server_id
        return MailSetting(
            self.workspace.name if self.workspace else owner,
            ws.notifications_server_id,
            self.servers,
            organization_default=next((s for s in self.servers if s.id == default_id), None),
        )

    def _save_mail_setting(self, server_id: str | None, expected: str | None) -> None:
        # The setting has no version: read it again and refuse, as Update does on a stale
        # version, when someone else changed it since the view was opened.
        stored = self._mail_setting()
        if stored.server_id != expected:
            now = stored.name_of(stored.server_id) if stored.server_id else "none"
            raise StaleVersion(
                f"Someone else changed this setting since you opened it (now: {now}), so your "
                "choice was not saved. Reload to see it, then choose again."
            )
        owner = self._owner()
        if self.organization is not None:
            self.client.mail_settings.set_default_server(owner, server_id)
        else:
            self.client.mail_settings.set_notifications_server(owner, server_id)
        self._close_view()
        self.status.ok(stored.said(server_id))
        self._reload(focus=server_id, then=self.status.text)

    def _reload_mail_setting(self) -> None:
        setting = self._mail_setting()
        if self.mail_settings_view is not None:
            self.mail_settings_view.load(setting)

    # ------------------------------------------------------------ refresh

    @handles_errors
    def _on_refresh(self, _button: object = None) -> None:
        self.status.clear()
        self._load()
        if self.status.kind != "error" and not self.denied:
            n = len(self.servers)
            self.status.info(f"{plural(n, 'email server')} — refreshed.")

    def refresh(self) -> None:
        """Read the servers again (what the Refresh button does)."""
        self._on_refresh()

    def _reload(self, *, focus: str | None, then: str) -> None:
        """After a change: list again; a failure here must not hide that the change was made."""
        try:
            self._load(focus=focus)
        finally:
            if self.status.kind == "error":
                self.status.error(
                    f"{then} But the list could not be read again: {self.status.text}"
                )

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close every widget of the panel (the client stays the caller's)."""
        self._close_view()
        # The parts that may not be children right now (the table before a load, the toolbar
        # after a refusal); close() also runs from Widget.__del__ on a half-built panel.
        for name in ("table", "toolbar", "access_message", "subtitle", "view_area", "status"):
            part = getattr(self, name, None)
            if part is not None:
                part.close() if isinstance(part, ServersTable) else close_tree(part)
        close_tree(self)

    def _repr_keys(self) -> Any:  # a short repr, not every child's
        return iter(())


def _chosen_name(place: ReplacementChoice, chosen: ServerReplacements) -> str:
    """The name of the server chosen to take over in ``place`` ("" if none was)."""
    wanted = (
        chosen.replacement_id
        if place.workspace_id is None
        else chosen.replacements.get(place.workspace_id, chosen.replacement_id)
    )
    return next((c.name for c in place.candidates if c.id == wanted), "")


def _attribute_of(view: View) -> str:
    return next(name for kind, name in _VIEW_ATTRIBUTES if isinstance(view, kind))
