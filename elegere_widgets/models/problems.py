"""The problem+json document (RFC 9457) that the service writes and the client reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .usage import Usage


class FieldError(BaseModel):
    """One invalid field and what to do about it."""

    field: str = Field(description="The field's name as in the API, e.g. `port`.")
    message: str = Field(description="What is wrong and how to fix it.")


class Problem(BaseModel):
    """An error answer: `type`, `title`, `status`, `detail`, and where they apply
    `errors` (field errors) or `usages` (who sends through a server)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str = ""
    status: int = 500
    detail: str = ""
    errors: list[FieldError] | None = None
    usages: list[Usage] | None = None
