"""The email-server endpoints: one router, mounted under `/workspaces/{ws}` and under
`/organizations/{org}`; the mount's dependency says whose servers a call is about.

Connection tests and test sends are async: their checks run on the request threads (briefly),
the network work on the service's own pool (``ServiceContext.network``), awaited without
holding a thread, so that hanging tests never leave reads waiting for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, field_validator
from starlette.concurrency import run_in_threadpool

from ... import models
from ...errors import BadRequest
from ...models.servers import check_email
from ..deps import EmailServersDep, RolloverDep, expected_version
from ..network_work import NetworkWork
from ..services.email_servers import Prepared, Progress

Spec = Annotated[models.EmailServerSpec, Body()]
NDJSON = "application/x-ndjson"
#: What staged work answers last: a connection test's result, or a test message's.
Result = TypeVar("Result", models.ConnectionTestResult, models.SendTestResult)
logger = logging.getLogger(__name__)

router = APIRouter(prefix="/email-servers")
MAX_PAGE = 5000
#: The period a delivery summary covers unless told otherwise: the details view's week.
SUMMARY_DAYS = 7


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


def _line(key: str, model: BaseModel) -> bytes:
    return (f'{{"{key}": {model.model_dump_json()}}}\n').encode()


async def _ndjson_lines(
    network: NetworkWork,
    prepared: Prepared[Result],
    lines: asyncio.Queue[bytes],
) -> AsyncIterator[bytes]:
    """A `{"stage": ...}` line as each stage ends (put in ``lines`` by the work), then
    `{"result": ...}`. Refusals happened before (see `prepare_test`); a failure now can only
    end the stream early, which the client reports as interrupted."""
    test = asyncio.ensure_future(network.run(prepared.slot, prepared.work))
    while True:
        next_line = asyncio.ensure_future(lines.get())
        await asyncio.wait({next_line, test}, return_when=asyncio.FIRST_COMPLETED)
        if next_line.done():
            yield next_line.result()
            continue
        next_line.cancel()
        break
    while not lines.empty():  # stages that ended just before the result
        yield lines.get_nowait()
    try:
        result = test.result()
    except Exception:
        logger.exception("The streamed connection test or test message failed")
        return
    yield _line("result", result)


@router.get("", response_model=list[models.EmailServer])
def list_servers(servers: EmailServersDep) -> Response:
    """Own servers and, for a workspace, the inherited ones first."""
    return Response(servers.queries.list_json(), media_type="application/json")


@router.post(
    "/test",
    response_model=models.ConnectionTestResult,
    responses={200: {"content": {NDJSON: {}}}},
)
async def test_connection(
    spec: Spec,
    servers: EmailServersDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Run a staged connection test; a passing one carries `test_token`.

    With `Accept: application/x-ndjson` the answer streams one `{"stage": ...}` line as
    each stage ends, then one `{"result": ...}` line.
    """
    return await _answer_test(
        lambda progress: servers.prepare_test(spec, progress=progress), servers, accept
    )


async def _answer_test(
    prepare: Callable[[Progress | None], Prepared[Result]],
    servers: EmailServersDep,
    accept: str | None,
) -> Any:
    """The whole result, or with `Accept: application/x-ndjson` a stream of its stages: a
    connection test's, or a test message's.

    ``prepare`` runs every check that can refuse the work on a request thread: refusals are
    4xx answers before the first byte of a stream.
    """
    network = servers.ctx.network
    if accept is None or NDJSON not in accept.lower():
        prepared = await run_in_threadpool(prepare, None)
        return await network.run(prepared.slot, prepared.work)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    def progress(stage: models.Stage) -> None:  # called on the network pool's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody reads the lines
            loop.call_soon_threadsafe(lines.put_nowait, _line("stage", stage))

    prepared = await run_in_threadpool(prepare, progress)
    return StreamingResponse(_ndjson_lines(network, prepared, lines), media_type=NDJSON)


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


@router.get("/{server_id}/checks", response_model=models.Page[models.ServerCheck])
def checks(
    server_id: str,
    servers: EmailServersDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> models.Page[models.ServerCheck]:
    """The server's kept connection tests (scheduled and manual), newest first."""
    return servers.queries.checks(server_id, cursor=cursor, limit=limit)


@router.get("/{server_id}/replacements", response_model=list[models.ReplacementChoice])
def replacements(server_id: str, servers: EmailServersDep) -> list[models.ReplacementChoice]:
    """Before deleting a server in use: each place that uses it (a workspace, or the
    organization's own usages) and the servers that may take over there."""
    return servers.replacement_choices(server_id)


@router.post(
    "/{server_id}/test",
    response_model=models.ConnectionTestResult,
    responses={200: {"content": {NDJSON: {}}}},
)
async def test_stored(
    server_id: str,
    servers: EmailServersDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Test now: a staged connection test of the server as stored (its secrets included).

    Kept as one of the server's checks, so its `last_test` and `health` follow, when the
    caller manages the server (an inherited one's checks are its Organization's). Streams
    like `POST …/email-servers/test`; the result carries no `test_token`.
    """
    return await _answer_test(
        lambda progress: servers.prepare_stored_test(server_id, progress=progress),
        servers,
        accept,
    )


@router.get("/{server_id}/delivery-summary", response_model=models.DeliverySummary)
def delivery_summary(
    server_id: str,
    servers: EmailServersDep,
    since: datetime | None = None,
    failures: Annotated[int, Query(ge=0, le=100)] = 5,
) -> models.DeliverySummary:
    """Deliveries through the server since `since` (default: 7 days ago) by outcome — sent
    (or accepted), deferred, failed — and the latest `failures` deferred or failed ones with
    the server's reply. A workspace counts its own mail only."""
    start = since or datetime.now(UTC) - timedelta(days=SUMMARY_DAYS)
    return servers.queries.delivery_summary(server_id, since=start, failures=failures)


@router.get("/{server_id}/audit-events", response_model=models.Page[models.AuditEvent])
def server_audit_events(
    server_id: str,
    servers: EmailServersDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> models.Page[models.AuditEvent]:
    """Who changed, tested or sent a test through the server, and when; newest first."""
    return servers.queries.audit_events(server_id, cursor=cursor, limit=limit)


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(
    server_id: str,
    servers: EmailServersDep,
    replacement_id: Annotated[str | None, Query()] = None,
    body: Annotated[models.ServerReplacements | None, Body()] = None,
) -> Response:
    """Delete; when in use, `replacement_id` takes over every usage in the same transaction.

    For an organization's server, the body's `replacements` (workspace id → server) chooses
    per workspace; `replacement_id` (query or body) then takes over the rest.
    """
    chosen = body or models.ServerReplacements()
    given = {r for r in (replacement_id, chosen.replacement_id) if r}
    if len(given) > 1:
        raise BadRequest(
            "replacement_id is given twice with different values (query and body); give it once."
        )
    servers.delete(server_id, given.pop() if given else None, chosen.replacements)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{server_id}/next-certificate/test",
    response_model=models.ConnectionTestResult,
    responses={200: {"content": {NDJSON: {}}}},
)
async def test_next_certificate(
    server_id: str,
    rollover: RolloverDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Test the server's next certificate on its own: the certificate and token stages with
    it. The outcome is kept on the server (`settings.next_certificate_test`); only a passing
    one lets the next certificate be promoted. Streams like `/test` with
    `Accept: application/x-ndjson`."""
    return await _answer_test(
        lambda progress: rollover.prepare_test(server_id, progress=progress),
        rollover.servers,
        accept,
    )


@router.post("/{server_id}/next-certificate/promote", response_model=models.EmailServer)
def promote_next_certificate(
    server_id: str,
    rollover: RolloverDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> models.EmailServer:
    """The tested next certificate becomes the current one, in one change (the version
    grows). Needs `If-Match: "<version>"`; 428 when the next certificate has not passed a
    test."""
    return _etag(response, rollover.promote(server_id, expected_version(if_match)))


@router.delete("/{server_id}/next-certificate", response_model=models.EmailServer)
def drop_next_certificate(
    server_id: str,
    rollover: RolloverDep,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> models.EmailServer:
    """Forget the next certificate; the current one stays. Needs `If-Match: "<version>"`."""
    return _etag(response, rollover.drop(server_id, expected_version(if_match)))


@router.post(
    "/{server_id}/send-test",
    response_model=models.SendTestResult,
    responses={200: {"content": {NDJSON: {}}}},
)
async def send_test(
    server_id: str,
    body: SendTestRequest,
    servers: EmailServersDep,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Send a real test message through a stored server, own or inherited, in one session;
    recorded as a delivery. The result carries the session's stages (SMTP: resolve → … →
    recipient → data; Microsoft Graph: certificate → token → send). With
    `Accept: application/x-ndjson` it streams them like `POST …/email-servers/test`: one
    `{"stage": ...}` line as each ends, then `{"result": ...}`."""
    return await _answer_test(
        lambda progress: servers.prepare_send_test(server_id, body.to, progress=progress),
        servers,
        accept,
    )
