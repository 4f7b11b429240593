"""Deleting a server in use: where it is used, what may take over there, and the choice.

An organization's server may be used by several workspaces; each chooses its own
replacement (one of its own servers or another organization server), and the organization's
own usages (its default server, the fallback of its servers) take another organization
server.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .connection import ServerType
from .servers import TYPE_LABELS, Scope
from .usage import Usage


class ServerReplacements(BaseModel):
    """Who takes over a deleted server's usages: the body of ``DELETE …/email-servers/{id}``.

    ``replacement_id`` alone takes over every usage (the ``?replacement_id=`` query says the
    same). ``replacements`` chooses per workspace; ``replacement_id`` then takes over the
    organization's own usages and those of any workspace it does not name.
    """

    model_config = ConfigDict(extra="forbid")

    replacement_id: str | None = Field(
        None,
        description="Takes over every usage no entry of `replacements` covers; for an "
        "organization's server, another organization server.",
    )
    replacements: dict[str, str] = Field(
        default_factory=dict,
        description="Workspace id → the server that takes over that workspace's usages: one "
        "of its own servers or another organization server.",
    )


class ReplacementCandidate(BaseModel):
    """A server that may take over where a deleted server is used (no settings: only what
    tells it apart)."""

    id: str
    name: str
    type: ServerType
    scope: Scope
    key_setting: str = Field(description="server:port for SMTP, the mailbox for Graph.")

    @property
    def type_label(self) -> str:
        return TYPE_LABELS[self.type]


class ReplacementChoice(BaseModel):
    """One place that uses a server about to be deleted, and the servers that may take over
    there: ``GET …/email-servers/{id}/replacements`` lists one per place."""

    workspace_id: str | None = Field(
        description="The workspace; null for the organization's own usages (its default "
        "server, the fallback of its servers), which take an organization server."
    )
    name: str = Field(description="The workspace's name, or the organization's.")
    usages: list[Usage]
    candidates: list[ReplacementCandidate] = Field(
        description="Its own servers first, then the organization's; never the deleted one."
    )
