"""Writing what sends mail: custom actions, scheduler jobs, and the notifications' servers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from ... import models
from ...models.senders import (
    OrganizationMailSettings,
    SenderIn,
    SenderPatch,
    WorkspaceMailSettings,
)
from ..deps import OrganizationMailDep, SendersDep

router = APIRouter(prefix="/workspaces/{ws}", tags=["workspace"])
organization_router = APIRouter(prefix="/organizations/{org}", tags=["organization"])


@router.post(
    "/custom-actions", status_code=status.HTTP_201_CREATED, response_model=models.CustomAction
)
def create_custom_action(
    body: Annotated[SenderIn, Body()], senders: SendersDep
) -> models.CustomAction | models.SchedulerJob:
    """Add a custom action; it sends through one of the workspace's servers (own or inherited)."""
    return senders.create("custom_action", body)


@router.patch("/custom-actions/{action_id}", response_model=models.CustomAction)
def update_custom_action(
    action_id: str, body: Annotated[SenderPatch, Body()], senders: SendersDep
) -> models.CustomAction | models.SchedulerJob:
    """Rename it, or change its server; omitted fields stay."""
    return senders.update("custom_action", action_id, body)


@router.delete("/custom-actions/{action_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_custom_action(action_id: str, senders: SendersDep) -> Response:
    senders.delete("custom_action", action_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/scheduler-jobs", status_code=status.HTTP_201_CREATED, response_model=models.SchedulerJob
)
def create_scheduler_job(
    body: Annotated[SenderIn, Body()], senders: SendersDep
) -> models.CustomAction | models.SchedulerJob:
    """Add a scheduler job; it sends through one of the workspace's servers (own or inherited)."""
    return senders.create("scheduler_job", body)


@router.patch("/scheduler-jobs/{job_id}", response_model=models.SchedulerJob)
def update_scheduler_job(
    job_id: str, body: Annotated[SenderPatch, Body()], senders: SendersDep
) -> models.CustomAction | models.SchedulerJob:
    """Rename it, or change its server; omitted fields stay."""
    return senders.update("scheduler_job", job_id, body)


@router.delete("/scheduler-jobs/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_scheduler_job(job_id: str, senders: SendersDep) -> Response:
    senders.delete("scheduler_job", job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/mail-settings", response_model=WorkspaceMailSettings)
def workspace_mail_settings(senders: SendersDep) -> WorkspaceMailSettings:
    """The server of the workspace's notifications (null: the organization's default)."""
    return senders.mail_settings()


@router.patch("/mail-settings", response_model=WorkspaceMailSettings)
def set_workspace_mail_settings(
    body: Annotated[WorkspaceMailSettings, Body()], senders: SendersDep
) -> WorkspaceMailSettings:
    """Set (own or inherited server) or clear (null) the notifications server."""
    return senders.set_mail_settings(body)


@organization_router.get("/mail-settings", response_model=OrganizationMailSettings)
def organization_mail_settings(mail: OrganizationMailDep) -> OrganizationMailSettings:
    """The organization's default server: it sends notifications of workspaces naming none."""
    return mail.mail_settings()


@organization_router.patch("/mail-settings", response_model=OrganizationMailSettings)
def set_organization_mail_settings(
    body: Annotated[OrganizationMailSettings, Body()], mail: OrganizationMailDep
) -> OrganizationMailSettings:
    """Set (one of the organization's servers) or clear (null) the default server."""
    return mail.set_mail_settings(body)
