"""Who is calling and whose servers a call is about: plain values the services take.

The route layer builds them (``deps.py``); nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store.tables import RoleGrant, User

SERVER_MANAGERS = frozenset({"admin_delegate", "it_delegate"})
ADMIN_GRANTORS = frozenset({"admin_delegate", "users_workspaces_delegate"})


@dataclass
class Caller:
    """The signed-in user and every role it holds.

    A sender token's caller holds no role: ``sender_workspace_id`` is the one workspace whose
    messages it may send and read, and nothing else (``deps.get_caller`` refuses it).
    """

    user: User
    grants: list[RoleGrant]
    sender_workspace_id: str | None = None

    @property
    def id(self) -> str:
        return self.user.id

    def is_workspace_admin(self, workspace_id: str) -> bool:
        return any(
            g.role == "workspace_admin" and g.workspace_id == workspace_id for g in self.grants
        )

    def has_org_role(self, organization_id: str, roles: frozenset[str]) -> bool:
        return any(
            g.role in roles and g.organization_id == organization_id and g.workspace_id is None
            for g in self.grants
        )


@dataclass(frozen=True)
class Scope:
    """Whose email servers a call is about: one workspace (own + inherited) or an organization."""

    organization_id: str
    workspace_id: str | None
    label: str

    @property
    def own_key(self) -> str:
        return self.workspace_id or f"org:{self.organization_id}"

    @property
    def whole_organization(self) -> Scope:
        """The organization this scope belongs to (for what spans all its workspaces)."""
        return Scope(self.organization_id, None, self.label)
