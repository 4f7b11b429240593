"""The email-server endpoints: one router, mounted under `/workspaces/{ws}` and under
`/organizations/{org}`; the mount's dependency says whose servers a call is about."""

from __future__ import annotations

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
from ..deps import EmailServersDep, expected_version
from ..services.email_servers import TestRun

Spec = Annotated[models.EmailServerSpec, Body()]
NDJSON = "application/x-ndjson"
logger = logging.getLogger(__name__)

router = APIRouter(prefix="/email-servers")


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


def _ndjson_lines(run: TestRun) -> Iterator[bytes]:
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


@router.get("", response_model=list[models.EmailServer])
def list_servers(servers: EmailServersDep) -> Response:
    """Own servers and, for a workspace, the inherited ones first."""
    return Response(servers.queries.list_json(), media_type="application/json")


@router.post(
    "/test",
    response_model=models.ConnectionTestResult,
    responses={200: {"content": {NDJSON: {}}}},
)
def test_connection(
    spec: Spec,
    servers: EmailServersDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Run a staged connection test; a passing one carries `test_token`.

    With `Accept: application/x-ndjson` the answer streams one `{"stage": ...}` line as
    each stage ends, then one `{"result": ...}` line.
    """
    if accept is None or NDJSON not in accept.lower():
        return servers.test(spec)
    run = servers.prepare_test(spec)  # refusals: 4xx, as above
    return StreamingResponse(_ndjson_lines(run), media_type=NDJSON)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=models.EmailServer)
def create_server(spec: Spec, servers: EmailServersDep, response: Response) -> models.EmailServer:
    """Add a server; needs the `test_token` of a passing test of exactly these settings."""
    return _etag(response, servers.create_tested(spec))


@router.get("/{server_id}", response_model=models.EmailServer)
def get_server(server_id: str, servers: EmailServersDep, response: Response) -> models.EmailServer:
    return _etag(response, servers.queries.get(server_id))


@router.patch("/{server_id}", response_model=models.EmailServer)
def update_server(
    server_id: str,
    patch: Annotated[models.EmailServerPatch, Body()],
    servers: EmailServersDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> models.EmailServer:
    """Partial update; omitted fields and secrets stay. Needs `If-Match: "<version>"`."""
    version = expected_version(if_match)
    return _etag(response, servers.update(server_id, patch, version))


@router.get("/{server_id}/usages", response_model=list[models.Usage])
def usages(server_id: str, servers: EmailServersDep) -> list[models.Usage]:
    return servers.queries.usages(server_id)


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(
    server_id: str,
    servers: EmailServersDep,
    replacement_id: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete; when in use, `replacement_id` takes over every usage in the same transaction."""
    servers.delete(server_id, replacement_id or None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{server_id}/send-test", response_model=models.SendTestResult)
def send_test(
    server_id: str, body: SendTestRequest, servers: EmailServersDep
) -> models.SendTestResult:
    """Send a real test message through a stored server; recorded as a delivery."""
    return servers.send_test(server_id, body.to)
