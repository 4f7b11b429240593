"""What sends mail through a server, and what was sent."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from .connection import Stage

#: What sends through a server: a custom action, a scheduler job, a workspace's
#: notifications, the organization's default server, or another server's fallback.
UsageKind = Literal["custom_action", "scheduler_job", "notifications", "default_server", "fallback"]
DeliveryStatus = Literal["sent", "accepted", "deferred", "failed", "bounced"]

T = TypeVar("T")


class UsageCounts(BaseModel):
    """How many custom actions and scheduler jobs send through a server."""

    custom_actions: int = 0
    scheduler_jobs: int = 0

    @property
    def total(self) -> int:
        return self.custom_actions + self.scheduler_jobs


class Usage(BaseModel):
    """One custom action, scheduler job, workspace (its notifications), organization (its
    default server) or server (its fallback) that sends through a server."""

    kind: UsageKind
    id: str
    name: str


class CustomAction(BaseModel):
    """A workspace's custom action and the server it sends through."""

    id: str
    name: str
    email_server_id: str


class SchedulerJob(BaseModel):
    """A workspace's scheduler job and the server it sends through."""

    id: str
    name: str
    email_server_id: str


class Delivery(BaseModel):
    """One message handed to an email server."""

    id: str
    workspace_id: str | None
    email_server_id: str
    email_server_name: str = Field(description="The server's name when the message was sent.")
    kind: str = Field(
        description="notification kind: action, tag, reply, account, custom_action, "
        "scheduler_job or test"
    )
    recipients: list[str]
    status: DeliveryStatus
    error: str | None = Field(None, description="What went wrong, or the server's reply.")
    created_at: datetime
    message_id: str | None = Field(None, description="The message this attempt delivered.")
    stage: str | None = Field(None, description="Where the attempt ended (data when sent).")
    reply_code: int | None = None
    history: bool = Field(False, description="Invented by the demo seed, not real traffic.")


class Page(BaseModel, Generic[T]):
    """One page of a long list; pass `next_cursor` back for the next one."""

    items: list[T]
    next_cursor: str | None = None


class DeliverySummary(BaseModel):
    """What one server delivered since a time: counts by outcome, and the latest failures."""

    since: datetime
    sent: int = Field(0, description="Sent, or accepted by Microsoft Graph.")
    deferred: int = Field(0, description="Put off by the server (4xx): tried again later.")
    failed: int = Field(0, description="Refused for good (5xx, or bounced).")
    last_failures: list[Delivery] = Field(
        default_factory=list,
        description="The latest deferred or failed deliveries, newest first, with the reply.",
    )


class SendTestResult(BaseModel):
    """The outcome of sending a test message through a stored server, in one session: its
    stages as a connection test's (SMTP: resolve → … → recipient → data; Microsoft Graph:
    certificate → token → send), and the server's reply or why it failed."""

    ok: bool
    detail: str = Field(description="The server's reply, or the failed stage and its hint.")
    delivery_id: str | None = Field(None, description="The delivery that records it.")
    elapsed_ms: int = 0
    stages: list[Stage] = Field(default_factory=list)

    @property
    def failed_stage(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)
