"""``client.workspaces``: the workspaces the caller administers, and who administers them."""

from __future__ import annotations

import builtins

from ..errors import NotFound
from ..models.workspaces import Workspace
from ._args import require_text, segment
from ._http import Resource, parse


class Workspaces(Resource):
    """``/workspaces``: list, find one by name or id, grant and revoke Workspace Admin."""

    def list(self) -> builtins.list[Workspace]:
        """The workspaces the caller may administer."""
        return parse(self._http.request("GET", "/workspaces"), list[Workspace])

    def get(self, name_or_id: str, /) -> Workspace:
        """The workspace with this id, or else with this name (case-insensitive).

        The service has no lookup by name, so this reads the list: a widget may then say
        ``workspace="Sales"``. NotFound lists the workspaces the caller can administer.
        """
        wanted = require_text(name_or_id, "name_or_id").strip()
        workspaces = self.list()
        by_id = [w for w in workspaces if w.id == wanted]
        if by_id:
            return by_id[0]
        key = wanted.casefold()
        by_name = [w for w in workspaces if w.name.strip().casefold() == key]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            # Two organizations may each have a "Sales": the id is the only safe choice.
            choices = ", ".join(f"{w.name} ({w.organization_name}): {w.id}" for w in by_name)
            raise NotFound(
                f"{len(by_name)} workspaces you administer are called {wanted!r}: {choices}. "
                "Pass the id of the one you mean."
            )
        if not workspaces:
            raise NotFound(
                f"No workspace {wanted!r}: you cannot administer any workspace. Ask a Delegate "
                "of your organization to make you a Workspace Admin."
            )
        known = ", ".join(f"{w.name} ({w.id})" for w in workspaces)
        raise NotFound(f"No workspace {wanted!r} among the ones you can administer: {known}.")

    def grant_admin(self, ws: str, user: str, /) -> None:
        """Make ``user`` (a user id or an email address) a Workspace Admin of ``ws``."""
        self._http.request("PUT", _admin_path(ws, user))

    def revoke_admin(self, ws: str, user: str, /) -> None:
        """Take the Workspace Admin role on ``ws`` away from ``user`` (id or email)."""
        self._http.request("DELETE", _admin_path(ws, user))


def _admin_path(ws: str, user: str) -> str:
    return f"/workspaces/{segment(ws, 'workspace id')}/admins/{segment(user, 'user')}"
