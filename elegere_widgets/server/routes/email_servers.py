"""/workspaces/{ws}/email-servers and /organizations/{org}/email-servers: the same calls.

No `from __future__ import annotations` here: FastAPI must see the scope dependency that
each generated router closes over, which a string annotation could not name.
"""

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, field_validator

from ... import models
from ...models.servers import check_email
from .. import email_servers as logic
from ..deps import CallerDep, ContextDep, OrganizationScope, SessionDep, WorkspaceScope

Spec = Annotated[models.EmailServerSpec, Body()]
NDJSON = "application/x-ndjson"
logger = logging.getLogger(__name__)


class SendTestRequest(BaseModel):
    """Where to send the test message."""

    model_config = ConfigDict(extra="forbid")
    to: str

    @field_validator("to")
    @classmethod
    def _address(cls, v: str) -> str:
        return check_email(v, "address to send the test message to")


def _etag(response: Response, server: models.EmailServer) -> models.EmailServer:
    response.headers["ETag"] = f'"{server.version}"'
    return server


def _ndjson_lines(run: logic.TestRun) -> Iterator[bytes]:
    """Runs the test in a worker thread: a `{"stage": ...}` line as each stage ends, then
    `{"result": ...}`. Refusals happened before (see `prepare_test`); a failure now can only
    end the stream early, which the client reports as an interrupted test."""
    lines: queue.Queue[bytes | None] = queue.Queue()

    def line(key: str, model: BaseModel) -> bytes:
        return (f'{{"{key}": {model.model_dump_json()}}}\n').encode()

    def work() -> None:
        try:
            result = run(lambda stage: lines.put(line("stage", stage)))
            lines.put(line("result", result))
        except Exception:
            logger.exception("The streamed connection test failed")
        finally:
            lines.put(None)

    threading.Thread(target=work, name="connection-test", daemon=True).start()
    while (chunk := lines.get()) is not None:
        yield chunk


def make_router(prefix: str, scope_dep: Any, tag: str) -> APIRouter:
    """The email-server endpoints under one prefix, for one kind of scope."""
    router = APIRouter(prefix=prefix, tags=[tag])
    ScopeDep = scope_dep

    @router.get("", response_model=list[models.EmailServer])
    def list_servers(scope: ScopeDep, session: SessionDep) -> Response:
        """Own servers and, for a workspace, the inherited ones first."""
        return Response(logic.list_servers_json(session, scope), media_type="application/json")

    @router.post(
        "/test",
        response_model=models.ConnectionTestResult,
        responses={200: {"content": {NDJSON: {}}}},
    )
    def test_connection(
        spec: Spec,
        scope: ScopeDep,
        caller: CallerDep,
        session: SessionDep,
        ctx: ContextDep,
        accept: Annotated[str | None, Header()] = None,
    ) -> Any:
        """Run a staged connection test; a passing one carries `test_token`.

        With `Accept: application/x-ndjson` the answer streams one `{"stage": ...}` line as
        each stage ends, then one `{"result": ...}` line.
        """
        if accept is None or NDJSON not in accept.lower():
            return logic.test_settings(ctx, session, scope, caller, spec)
        run = logic.prepare_test(ctx, session, scope, caller, spec)  # refusals: 4xx, as above
        return StreamingResponse(_ndjson_lines(run), media_type=NDJSON)

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=models.EmailServer)
    def create_server(
        spec: Spec,
        scope: ScopeDep,
        caller: CallerDep,
        session: SessionDep,
        ctx: ContextDep,
        response: Response,
    ) -> models.EmailServer:
        """Add a server; needs the `test_token` of a passing test of exactly these settings."""
        return _etag(response, logic.create_server(ctx, session, scope, caller, spec))

    @router.get("/{server_id}", response_model=models.EmailServer)
    def get_server(
        server_id: str, scope: ScopeDep, session: SessionDep, response: Response
    ) -> models.EmailServer:
        row = logic.load_visible(session, scope, server_id)
        return _etag(response, logic.one_server(session, scope, row))

    @router.patch("/{server_id}", response_model=models.EmailServer)
    def update_server(
        server_id: str,
        patch: Annotated[models.EmailServerPatch, Body()],
        scope: ScopeDep,
        caller: CallerDep,
        session: SessionDep,
        ctx: ContextDep,
        response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> models.EmailServer:
        """Partial update; omitted fields and secrets stay. Needs `If-Match: "<version>"`."""
        server = logic.update_server(ctx, session, scope, caller, server_id, patch, if_match)
        return _etag(response, server)

    @router.get("/{server_id}/usages", response_model=list[models.Usage])
    def usages(server_id: str, scope: ScopeDep, session: SessionDep) -> list[models.Usage]:
        return logic.list_usages(session, scope, server_id)

    @router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
    def delete_server(
        server_id: str,
        scope: ScopeDep,
        caller: CallerDep,
        session: SessionDep,
        replacement_id: Annotated[str | None, Query()] = None,
    ) -> Response:
        """Delete; when in use, `replacement_id` takes over every usage in the same transaction."""
        logic.delete_server(session, scope, caller, server_id, replacement_id or None)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    @router.post("/{server_id}/send-test", response_model=models.SendTestResult)
    def send_test(
        server_id: str,
        body: SendTestRequest,
        scope: ScopeDep,
        caller: CallerDep,
        session: SessionDep,
        ctx: ContextDep,
    ) -> models.SendTestResult:
        """Send a real test message through a stored server; recorded as a delivery."""
        return logic.send_test(ctx, session, scope, caller, server_id, body.to)

    return router


workspace_router = make_router("/workspaces/{ws}/email-servers", WorkspaceScope, "workspace")
organization_router = make_router(
    "/organizations/{org}/email-servers", OrganizationScope, "organization"
)
