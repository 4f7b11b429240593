"""``EmailServersPanel``: the Workspace Settings → Email Servers tab.

::

    from elegere_widgets import Client, EmailServersPanel
    panel = EmailServersPanel(Client.from_env(), workspace="Sales")
    panel            # or display(panel): it is an ipywidgets.VBox
    EmailServersPanel(client, organization="Acme")   # the servers every workspace inherits

Only the panel calls the client; the table, the wizard, the update form and the delete dialog
take data and callbacks. Quick calls (list, get, usages, create, update, delete) run inline;
a connection test runs in a worker thread. Every error of the client shows as a message —
in the status line, in the open view, or next to a field — never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ipywidgets

from ..client import Client, EmailServers
from ..errors import ElegereError, NotFound, PermissionDenied, ReadOnlyServer
from ..models import ConnectionTestResult, EmailServer, EmailServerPatch, Workspace
from .common import Runner, StatusLine, button, close_tree, css, esc, handles_errors
from .connection_test import StageCallback
from .dialogs import DeleteDialog
from .formatting import plural
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

View = AddServerWizard | UpdateServerView | DeleteDialog


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
        self.status = StatusLine("elegere-status")
        self.table = ServersTable(
            on_settings=self._open_update, on_delete=self._open_delete, page_size=page_size
        )
        self.view_area = css(
            ipywidgets.VBox(layout=ipywidgets.Layout(margin="12px 0 0 0")), "elegere-view-area"
        )
        self.access_message = css(ipywidgets.HTML(), "elegere-access-denied")
        self.wizard: AddServerWizard | None = None
        self.update_view: UpdateServerView | None = None
        self.delete_dialog: DeleteDialog | None = None

        self.refresh_button.on_click(self._on_refresh)
        self.add_button.on_click(self._on_add)
        self.toolbar = css(
            ipywidgets.HBox([self.refresh_button, self.add_button]), "elegere-toolbar"
        )
        # The table joins once the servers are read: "no servers yet" would be wrong before.
        super().__init__([self.stylesheet, self.title, self.subtitle, self.toolbar, self.status])
        css(self, "elegere-panel", "elegere-landmark-region")
        self._load()

    # ------------------------------------------------------------ loading

    @handles_errors
    def _load(self, focus: str | None = None) -> None:
        if self.organization_ref is not None and self.organization is None:
            self.add_button.disabled = True
            self.organization = self._resolve_organization(self.organization_ref)
            if self.organization is None:
                return
            self.subtitle.value = (
                f"Organization <b>{esc(self.organization.name)}</b> · the servers every "
                "workspace inherits"
            )
        elif self.organization_ref is None and self.workspace is None:
            self.add_button.disabled = True
            self.workspace = self._resolve_workspace()
            if self.workspace is None:
                return
            self.subtitle.value = (
                f"Workspace <b>{esc(self.workspace.name)}</b> · "
                f"{esc(self.workspace.organization_name)}"
            )
        self.servers = self._api.list(self._owner())
        self.table.show(self.servers, focus=focus)
        self.add_button.disabled = False
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
        if isinstance(view, AddServerWizard):
            self.wizard = view
        elif isinstance(view, UpdateServerView):
            self.update_view = view
        else:
            self.delete_dialog = view
        self.view_area.children = [view]

    def _close_view(self) -> None:
        for name in ("wizard", "update_view", "delete_dialog"):
            view = getattr(self, name, None)  # close() also runs from Widget.__del__
            if view is not None:
                view.close()
        self.wizard = self.update_view = self.delete_dialog = None
        if "view_area" in self.__dict__:
            self.view_area.children = []

    @property
    def view(self) -> View | None:
        """The open view: the wizard, the update form or the delete dialog."""
        return self.wizard or self.update_view or self.delete_dialog

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
        usages = self._api.usages(self._owner(), server.id)
        self.status.clear()
        self._open(
            DeleteDialog(
                server,
                usages,
                [s for s in self.servers if s.id != server.id],
                on_confirm=lambda replacement: self._delete(server, replacement),
                on_cancel=self._close_view,
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
