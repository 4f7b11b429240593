"""Writing what sends mail: custom actions, scheduler jobs, and the notifications' servers."""

# No ``from __future__ import annotations``: the routes below are made in a loop, and FastAPI
# reads their annotations (the path parameter's alias differs per kind) as objects.

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status

from ... import models
from ...models.senders import (
    OrganizationMailSettings,
    SenderIn,
    SenderPatch,
    WorkspaceMailSettings,
    WorkspaceNotifications,
)
from ..deps import OrganizationMailDep, SendersDep

router = APIRouter(prefix="/workspaces/{ws}", tags=["workspace"])
organization_router = APIRouter(prefix="/organizations/{org}", tags=["organization"])

Sender = models.CustomAction | models.SchedulerJob


@dataclass(frozen=True)
class SenderRoutes:
    """One kind of sender as the API names it: its collection and its id's path parameter."""

    kind: str  # custom_action, scheduler_job: what the service and the store call it
    collection: str  # custom-actions
    id_param: str  # action_id
    model: type[models.CustomAction] | type[models.SchedulerJob]

    @property
    def noun(self) -> str:
        return self.kind.replace("_", " ")


def add_sender_routes(router: APIRouter, kind: SenderRoutes) -> None:
    """POST, PATCH and DELETE of one kind of sender; both kinds behave alike."""
    item = f"/{kind.collection}/{{{kind.id_param}}}"
    # The id's path parameter keeps its name per kind (action_id, job_id): the alias.
    ident_param = Path(alias=kind.id_param)

    def create(body: Annotated[SenderIn, Body()], senders: SendersDep) -> Sender:
        return senders.create(kind.kind, body)

    def update(
        ident: Annotated[str, ident_param],
        body: Annotated[SenderPatch, Body()],
        senders: SendersDep,
    ) -> Sender:
        return senders.update(kind.kind, ident, body)

    def delete(ident: Annotated[str, ident_param], senders: SendersDep) -> Response:
        senders.delete(kind.kind, ident)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    router.add_api_route(
        f"/{kind.collection}",
        create,
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        response_model=kind.model,
        name=f"create_{kind.kind}",
        description=f"Add a {kind.noun}; it sends through one of the workspace's servers "
        "(own or inherited).",
    )
    router.add_api_route(
        item,
        update,
        methods=["PATCH"],
        response_model=kind.model,
        name=f"update_{kind.kind}",
        description="Rename it, or change its server; omitted fields stay.",
    )
    router.add_api_route(
        item,
        delete,
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        name=f"delete_{kind.kind}",
    )


for _kind in (
    SenderRoutes("custom_action", "custom-actions", "action_id", models.CustomAction),
    SenderRoutes("scheduler_job", "scheduler-jobs", "job_id", models.SchedulerJob),
):
    add_sender_routes(router, _kind)


@router.get("/mail-settings", response_model=WorkspaceNotifications)
def workspace_mail_settings(senders: SendersDep) -> WorkspaceNotifications:
    """The server of the workspace's notifications (null: the organization's default)."""
    return senders.mail_settings()


@router.patch("/mail-settings", response_model=WorkspaceNotifications)
def set_workspace_mail_settings(
    body: Annotated[WorkspaceMailSettings, Body()], senders: SendersDep
) -> WorkspaceNotifications:
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
