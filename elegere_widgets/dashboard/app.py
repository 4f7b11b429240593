"""The dashboard page: organization header, workspace picker, and the Email Servers panel.

::

    from elegere_widgets.dashboard.app import Dashboard
    Dashboard.from_env().start()     # ELEGERE_URL, and ELEGERE_TOKEN or else a sign-in form

Without a token the page shows a sign-in form (email and password) instead; an expired or
revoked token leads there too. Every error shows in the status line: Voilà hides tracebacks.
Only the client, the widgets and ipywidgets are imported, to keep the page's cold start short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets

from ..client import Client
from ..errors import AuthenticationRequired, ElegereError
from ..models import Workspace
from ..widgets import EmailServersPanel
from ..widgets.common import (
    Runner,
    StatusLine,
    button,
    close_tree,
    css,
    esc,
    handles_errors,
    set_visible,
)
from ..widgets.palette import var
from ..widgets.theme import stylesheet
from .demo import DemoSmtp
from .preheat import wait_for_visitor
from .sign_in import SignIn, SignInForm

DEFAULT_URL = "http://127.0.0.1:8765"

#: Builds the panel of one workspace (by id), or of the organization's own servers for
#: ``org:<id>``; the dashboard closes it when it is replaced.
PanelFactory = Callable[[Client, str], ipywidgets.Widget]
ORG_PREFIX = "org:"
SERVER_MANAGERS = ("admin_delegate", "it_delegate")

__all__ = ["Dashboard", "wait_for_visitor"]

NO_WORKSPACE = (
    "You are not a Workspace Admin of any workspace, so there are no email servers for you to "
    "manage. A Delegate of your organization or a Workspace Admin can grant you the right."
)
TOKEN_REFUSED = "The configured token was not accepted (expired or revoked?): sign in instead."


class Dashboard(ipywidgets.VBox):
    """The whole page; every control is an attribute a test can read or click."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        client: Client | None = None,
        *,
        workspace: str | None = None,
        demo: DemoSmtp | None = None,
        panel_factory: PanelFactory | None = None,
        sign_in: SignIn | None = None,
        run_in_thread: Runner | None = None,
    ) -> None:
        self.url = url
        self.client = client
        self.initial_workspace = workspace
        self.workspaces: list[Workspace] = []
        self.organization_id: str | None = None  # set for a Delegate who manages its servers
        self.organization_name = ""
        self.panel: ipywidgets.Widget | None = None
        self._panel_factory = panel_factory or _email_servers_panel
        self._owns_client = False  # made by from_env or the sign-in form: ours to close
        self._by_form = False  # signed in through the form: Sign out is offered
        self._quiet = False
        self._user = ""

        self.organization = css(ipywidgets.HTML(), "elegere-organization")
        self.user_label = css(ipywidgets.HTML(), "elegere-user")
        self.sign_out_button = button("Sign out", "elegere-sign-out", icon="sign-out")
        self.retry_button = button("Try again", "elegere-retry", icon="refresh")
        self.workspace_picker = css(
            ipywidgets.Dropdown(
                description="Workspace",
                options=[],
                style={"description_width": "80px"},
                layout=ipywidgets.Layout(width="360px"),
            ),
            "elegere-workspace-picker",
        )
        self.status = StatusLine("elegere-dashboard-status")
        self.help = css(ipywidgets.HTML(demo.help_html() if demo else ""), "elegere-help")
        self.panel_area = css(ipywidgets.VBox(), "elegere-panel-area")
        self.notice = css(ipywidgets.HTML(), "elegere-notice")
        # The form signs in from a worker thread (see sign_in.py); tests pass a runner that
        # runs at once.
        self.sign_in_form = SignInForm(
            url, on_signed_in=self._signed_in, sign_in=sign_in, run_in_thread=run_in_thread
        )

        self.sign_out_button.on_click(self._on_sign_out)
        self.retry_button.on_click(self._on_retry)
        self.workspace_picker.observe(self._on_workspace, names="value")
        header = css(
            ipywidgets.HBox(
                [self.organization, css(ipywidgets.HBox([self.user_label, self.sign_out_button]))],
                layout=ipywidgets.Layout(
                    justify_content="space-between",
                    align_items="center",
                    border_bottom=f"2px solid {var('accent')}",
                    padding="0 0 6px 0",
                    margin="0 0 8px 0",
                ),
            ),
            "elegere-header",
            "elegere-landmark-banner",
        )
        # Before any panel: the header and the sign-in form use it too.
        self.stylesheet = stylesheet()
        # The header is the page's banner, the rest its main content (roles set by the Voilà
        # template from these classes: see dashboard/jupyter).
        self.main = css(
            ipywidgets.VBox(
                [
                    self.status,
                    self.retry_button,
                    self.sign_in_form,
                    self.workspace_picker,
                    self.help,
                    self.notice,
                    self.panel_area,
                ]
            ),
            "elegere-main",
            "elegere-landmark-main",
        )
        super().__init__(
            [self.stylesheet, header, self.main],
            layout=ipywidgets.Layout(max_width="1400px"),
        )
        css(self, "elegere-dashboard")
        self._show_header(None)
        self._show_only(self.sign_in_form if client is None else None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Dashboard:
        """``ELEGERE_URL`` (default: the local service), ``ELEGERE_TOKEN`` (else the sign-in
        form) and ``ELEGERE_DEMO_SMTP`` (the demo mail server of ``make run``)."""
        env = os.environ if environ is None else environ
        url = env.get("ELEGERE_URL", "").strip() or DEFAULT_URL
        token = env.get("ELEGERE_TOKEN", "").strip()
        kwargs.setdefault("demo", DemoSmtp.from_env(env))
        dashboard = cls(url, Client(url, token) if token else None, **kwargs)
        dashboard._owns_client = True
        return dashboard

    # ------------------------------------------------------------ what the page shows

    def start(self) -> Dashboard:
        """Read who is signed in and their workspaces, or show the sign-in form."""
        if self.client is not None:
            self._open(self.client)
        return self

    def _show_header(self, workspace: Workspace | None, *, organization: str | None = None) -> None:
        name = workspace.organization_name if workspace else organization
        settings = "Organization" if organization is not None else "Workspace"
        self.organization.value = (
            f"<h1 class='elegere-organization-name'>{esc(name or 'eLegere')}</h1>"
            f"<div class='elegere-caption'>{settings} Settings → Email Servers</div>"
        )
        user = self._user
        self.user_label.value = f"<span class='elegere-caption'>{esc(user)}</span>" if user else ""

    def _show_only(self, *shown: ipywidgets.Widget | None) -> None:
        """Show these parts of the page below the header and the status line; hide the rest."""
        parts = (
            self.retry_button,
            self.sign_in_form,
            self.workspace_picker,
            self.help,
            self.notice,
            self.panel_area,
        )
        for part in parts:
            set_visible(part, any(part is s for s in shown))
        set_visible(self.sign_out_button, self._by_form and self.client is not None)

    @handles_errors
    def _open(self, client: Client) -> None:
        self.client = client
        self.status.busy("Reading your workspaces…")
        try:
            me = client.me()
            workspaces = client.workspaces.list()
        except AuthenticationRequired:
            self._forget_client()
            self._show_only(self.sign_in_form)
            self.status.error(TOKEN_REFUSED)
            return
        except ElegereError:
            # The service is down or failing: the form would not help; trying again may.
            self._show_only(self.retry_button)
            raise
        self.status.clear()
        self.workspaces = workspaces
        self._user = f"{me.name} · {me.email}"
        manages_org = any(g.role in SERVER_MANAGERS and g.workspace_id is None for g in me.roles)
        self.organization_id = me.organization_id if manages_org else None
        self.organization_name = me.organization_name
        self._show_header(workspaces[0] if workspaces else None)
        if not workspaces and self.organization_id is None:
            self.notice.value = f"<div class='elegere-notice-box'>{esc(NO_WORKSPACE)}</div>"
            self._show_only(self.notice)
            return
        # Two organizations may each have a "Sales": then the label says which.
        names = [w.name for w in workspaces]
        options = [
            (f"{w.name} ({w.organization_name})" if names.count(w.name) > 1 else w.name, w.id)
            for w in workspaces
        ]
        if self.organization_id is not None:
            # A Delegate: the organization's own servers first, then its workspaces.
            label = f"{self.organization_name} (organization)"
            options.insert(0, (label, ORG_PREFIX + self.organization_id))
        chosen = self._initial_choice(workspaces)
        self._quiet = True
        try:
            self.workspace_picker.description = "Scope" if self.organization_id else "Workspace"
            self.workspace_picker.options = options
            self.workspace_picker.value = chosen
        finally:
            self._quiet = False
        self._show_only(
            self.workspace_picker, self.help if self.help.value else None, self.panel_area
        )
        self._show_workspace(chosen)

    def _initial_choice(self, workspaces: list[Workspace]) -> str:
        wanted = (self.initial_workspace or "").strip().casefold()
        for ws in workspaces:
            if wanted in (ws.id.casefold(), ws.name.casefold()):
                return ws.id
        if workspaces:
            return workspaces[0].id
        assert self.organization_id is not None
        return ORG_PREFIX + self.organization_id

    def _show_workspace(self, scope: str) -> None:
        assert self.client is not None
        if scope.startswith(ORG_PREFIX):
            self._show_header(None, organization=self.organization_name)
        else:
            self._show_header(next(w for w in self.workspaces if w.id == scope))
        old, self.panel = self.panel, self._panel_factory(self.client, scope)
        self.panel_area.children = [self.panel]
        if old is not None:
            old.close()

    @property
    def workspace(self) -> Workspace | None:
        """The workspace the picker shows."""
        return next((w for w in self.workspaces if w.id == self.workspace_picker.value), None)

    def choose_organization(self) -> None:
        """What picking the organization (a Delegate's first choice) in the drop-down does."""
        if self.organization_id is None:
            raise ValueError("Only an Admin or IT Delegate manages the organization's servers.")
        self.workspace_picker.value = ORG_PREFIX + self.organization_id

    def choose_workspace(self, name_or_id: str) -> None:
        """What picking a workspace in the drop-down does."""
        key = name_or_id.strip().casefold()
        match = next(w for w in self.workspaces if key in (w.id.casefold(), w.name.casefold()))
        self.workspace_picker.value = match.id

    # ------------------------------------------------------------ handlers

    @handles_errors
    def _on_workspace(self, change: dict[str, Any]) -> None:
        if self._quiet or change.get("new") is None:
            return
        self.status.clear()
        self._show_workspace(str(change["new"]))

    def _signed_in(self, client: Client) -> None:
        self._owns_client = self._by_form = True
        self._open(client)

    @handles_errors
    def _on_retry(self, _button: object = None) -> None:
        if self.client is not None:
            self._open(self.client)

    @handles_errors
    def _on_sign_out(self, _button: object = None) -> None:
        self._forget_client()
        self._show_header(None)
        self.sign_in_form.reset()
        self._show_only(self.sign_in_form)
        self.status.info("Signed out.")

    def _forget_client(self) -> None:
        if self.panel is not None:
            self.panel.close()
            self.panel = None
        self.panel_area.children = []
        self._quiet = True
        try:
            self.workspace_picker.options = []
        finally:
            self._quiet = False
        self.workspaces = []
        self.notice.value = ""
        if self.client is not None and self._owns_client:
            self.client.close()
        self.client = None
        self._by_form = False
        self._user = ""

    def show_error(self, exc: ElegereError) -> None:
        self.status.error(str(exc))

    def close(self) -> None:
        """Close every widget, and the client if the dashboard made it (from_env, sign-in)."""
        self._forget_client()
        close_tree(self)


def _email_servers_panel(client: Client, scope: str) -> ipywidgets.Widget:
    if scope.startswith(ORG_PREFIX):
        return EmailServersPanel(client, organization=scope.removeprefix(ORG_PREFIX))
    return EmailServersPanel(client, workspace=scope)
