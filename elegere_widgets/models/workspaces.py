"""Who the caller is and which workspaces it administers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal[
    "admin_delegate",
    "users_workspaces_delegate",
    "it_delegate",
    "licenses_billings_delegate",
    "workspace_admin",
]


class Workspace(BaseModel):
    """A workspace the caller may administer."""

    id: str
    name: str
    organization_id: str
    organization_name: str


class RoleGrant(BaseModel):
    """One role: organization-wide (a Delegate) or on one workspace (Workspace Admin)."""

    role: Role
    organization_id: str | None = None
    workspace_id: str | None = None


class Me(BaseModel):
    """The signed-in caller."""

    id: str
    email: str
    name: str
    organization_id: str
    organization_name: str = Field(
        description="The caller's organization, as a scope picker and texts name it."
    )
    roles: list[RoleGrant]
