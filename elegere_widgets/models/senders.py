"""What sends mail in a workspace, as one writes it: custom actions, scheduler jobs and the
servers of notifications."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _sender_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Enter a name, for example Send quote.")
    if len(value) > 200:
        raise ValueError("Enter a name of at most 200 characters.")
    if any(c in value for c in "\x00\r\n") or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError("Enter the name on one line, as plain text.")
    return value


SenderName = Annotated[str, AfterValidator(_sender_name)]


class SenderIn(BaseModel):
    """A new custom action or scheduler job, and the server it sends through."""

    model_config = ConfigDict(extra="forbid")

    name: SenderName
    email_server_id: str = Field(description="One of the workspace's servers, own or inherited.")


class SenderPatch(BaseModel):
    """A rename, another server, or both; omitted fields stay."""

    model_config = ConfigDict(extra="forbid")

    name: SenderName | None = None
    email_server_id: str | None = None

    def to_wire(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class WorkspaceMailSettings(BaseModel):
    """The server of a workspace's notifications; null: the organization's default server."""

    model_config = ConfigDict(extra="forbid")

    notifications_server_id: str | None = None


class WorkspaceNotifications(WorkspaceMailSettings):
    """What ``GET …/mail-settings`` answers: the workspace's setting and, read-only, the
    organization's default server that sends its notifications when the setting is null (a
    Workspace Admin may not read the organization's settings, yet must see who sends)."""

    organization_default_server_id: str | None = Field(
        None, description="The organization's default server; set by its Delegates."
    )


class OrganizationMailSettings(BaseModel):
    """The organization's default server: sends notifications of workspaces that name none."""

    model_config = ConfigDict(extra="forbid")

    default_server_id: str | None = None
