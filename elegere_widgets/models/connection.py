"""The result of a connection test, stage by stage."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ServerType = Literal["smtp", "microsoft_graph"]
CheckSource = Literal["manual", "scheduled"]
HealthStatus = Literal["healthy", "degraded", "failing", "expiring", "expired"]


class Stage(BaseModel):
    """One step of a connection test (resolve, connect, tls, ehlo, authenticate, ...)."""

    name: str
    ok: bool
    elapsed_ms: int = 0
    detail: str = Field("", description="What happened, e.g. the server's reply.")
    hint: str | None = Field(None, description="What a person can do when the stage failed.")
    code: str | None = Field(None, description="The server's own code (SMTP reply, AADSTS...).")


class ConnectionTestResult(BaseModel):
    """The whole test. `test_token` is set only when it passed: it unlocks adding the server."""

    ok: bool
    server_type: ServerType
    elapsed_ms: int = 0
    stages: list[Stage] = Field(default_factory=list)
    test_token: str | None = Field(None, repr=False)

    @property
    def failed_stage(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)


class LastTest(BaseModel):
    """The latest connection test of a stored server."""

    ok: bool
    at: datetime = Field(description="When the test ran.")
    elapsed_ms: int = 0
    detail: str = ""
    source: CheckSource | None = Field(
        None, description="manual (a connection test through the API) or scheduled (the worker)."
    )


class ServerCheck(BaseModel):
    """One connection test of a stored server, kept: the server's health over time."""

    id: str
    email_server_id: str
    checked_at: datetime
    ok: bool
    failed_stage: str | None = Field(None, description="The stage that failed; null when ok.")
    elapsed_ms: int = 0
    detail: str = Field("", description="What happened (never a secret).")
    source: CheckSource


class ServerHealth(BaseModel):
    """Computed from the server's checks, deliveries and certificate when read."""

    status: HealthStatus
    since: datetime | None = Field(None, description="Since when, when known.")
    reason: str = Field("", description="Why, in words: the badge's text.")
