"""The audit trail as the API shows it: field names and outcomes, never a value."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AuditEvent(BaseModel):
    """One change, test or test send: who, when, which server, what changed, how it went."""

    id: int
    occurred_at: datetime
    actor_email: str | None
    workspace_id: str | None
    email_server_id: str | None
    action: str = Field(description="create, update, delete, test or send_test")
    changed_fields: list[str] = Field(default_factory=list)
    result: str = Field(description="ok or failed")
    detail: str = ""
