"""The platform's mail: messages handed over to be sent, and how each one went."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from ...models import Page
from ...models.messages import (
    AcceptedBatch,
    Message,
    MessageAccepted,
    MessageBatch,
    MessageSubmission,
    MessageSummary,
)
from ..deps import MessagesDep

router = APIRouter(prefix="/workspaces/{ws}", tags=["messages"])

MAX_PAGE = 5000


@router.post(
    "/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageAccepted | AcceptedBatch,
    responses={200: {"description": "A repeat: the first message(s) with these keys again."}},
)
def submit(
    body: Annotated[MessageSubmission, Body()], messages: MessagesDep, response: Response
) -> MessageAccepted | AcceptedBatch:
    """Accept one message, or `{"messages": [...]}` (up to 500), to be sent by the worker.

    202: written to the store (the record of every message), its `Message-ID` fixed now.
    200: every message was a repeat (same `idempotency_key` and body): the first answers.
    409: an `idempotency_key` used for another body; 422: a bad address, an unknown sender
    or no server for it; 413: a message over the size limit. Who may call: a Workspace
    Admin of the workspace, or a sender token of it.
    """
    batch = isinstance(body, MessageBatch)
    items, any_new = messages.submit(body.messages if isinstance(body, MessageBatch) else [body])
    if not any_new:
        response.status_code = status.HTTP_200_OK
    return AcceptedBatch(items=items) if batch else items[0]


@router.get("/messages", response_model=Page[MessageSummary])
def list_messages(
    messages: MessagesDep,
    status: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> Page[MessageSummary]:
    """The workspace's messages, oldest first, paginated by cursor (no bodies)."""
    return messages.page(status=status, since=since, cursor=cursor, limit=limit)


@router.get("/messages/{message_id}", response_model=Message)
def get_message(message_id: str, messages: MessagesDep) -> Message:
    """One message, its recipients' states and every attempt, oldest first (no body)."""
    return messages.get(message_id)
