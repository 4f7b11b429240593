"""``client.email_servers`` and ``client.organization_email_servers``.

The two speak the same calls under different prefixes (``/workspaces/{ws}/email-servers``
and ``/organizations/{org}/email-servers``), so one class serves both, parametrised by the
parent collection. The first argument of every call is that parent's id.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

import httpx

from ..errors import InternalError, ServiceUnavailable
from ..models.audit import AuditEvent
from ..models.connection import ConnectionTestResult, ServerCheck, Stage
from ..models.replacements import ReplacementChoice, ServerReplacements
from ..models.servers import EmailServer, EmailServerPatch, GraphServerSpec, SmtpServerSpec
from ..models.usage import DeliverySummary, Page, SendTestResult, Usage
from ._args import aware_iso, positive_page_size, require_text, segment
from ._http import Http, Resource, etag_version, follow_pages, parse, unreachable

Parent = Literal["workspaces", "organizations"]
ServerSpec = SmtpServerSpec | GraphServerSpec
NDJSON = "application/x-ndjson"
#: What a staged call answers last, after its stages: a connection test's or a test message's.
Staged = TypeVar("Staged", ConnectionTestResult, SendTestResult)
#: What each staged call is, in the words of an interrupted stream's error.
TEST_CUT = (
    "The connection test at {url} ended before its result arrived (the service may have "
    "restarted or failed). Test again."
)
SEND_CUT = (
    "The test email at {url} ended before its result arrived (the service may have restarted "
    "or failed). The message may have gone out: its delivery shows in the server's details."
)


class EmailServers(Resource):
    """The email servers of a workspace (own and inherited) or of an organization."""

    def __init__(self, http: Http, *, parent: Parent = "workspaces") -> None:
        super().__init__(http)
        self._parent = parent
        self._owner = "workspace id" if parent == "workspaces" else "organization id"

    def __repr__(self) -> str:
        return f"EmailServers(parent={self._parent!r})"

    # ------------------------------------------------------------ reads

    def list(self, owner: str, /) -> builtins.list[EmailServer]:
        """Every server the owner can see; for a workspace, the inherited ones first."""
        return parse(self._http.request("GET", self._base(owner)), list[EmailServer])

    def get(self, owner: str, server_id: str, /) -> EmailServer:
        """One server; its ``version`` is the one to pass to :meth:`update`."""
        return _with_etag(self._http.request("GET", self._one(owner, server_id)))

    def usages(self, owner: str, server_id: str, /) -> builtins.list[Usage]:
        """The custom actions and scheduler jobs that send through this server."""
        path = self._one(owner, server_id) + "/usages"
        return parse(self._http.request("GET", path), list[Usage])

    def checks(
        self, owner: str, server_id: str, /, *, page_size: int = 100
    ) -> Iterator[ServerCheck]:
        """Every kept connection test of the server (scheduled and manual), newest first,
        following ``next_cursor`` to the end as the iterator is consumed."""
        path, params = self._checks_query(owner, server_id, page_size)
        return follow_pages(self._http, path, params, ServerCheck, "checks")

    def checks_page(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[ServerCheck]:
        """One page of :meth:`checks`; pass its ``next_cursor`` back as ``cursor``."""
        path, params = self._checks_query(owner, server_id, page_size)
        if cursor is not None:
            params["cursor"] = require_text(cursor, "cursor")
        return parse(self._http.request("GET", path, params=params), Page[ServerCheck])

    def _checks_query(
        self, owner: str, server_id: str, page_size: int
    ) -> tuple[str, dict[str, str | int]]:
        return self._one(owner, server_id) + "/checks", {"limit": positive_page_size(page_size)}

    def delivery_summary(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        since: datetime | None = None,
        failures: int = 5,
    ) -> DeliverySummary:
        """What the server delivered since ``since`` (default: the last 7 days): sent,
        deferred and failed counts, and the latest ``failures`` deferred or failed deliveries
        with the server's reply. For a workspace, its own mail only."""
        path = self._one(owner, server_id) + "/delivery-summary"
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
            raise ValueError(f"failures must be an int of 0 or more, not {failures!r}.")
        params: dict[str, str | int] = {"failures": failures}
        if since is not None:
            params["since"] = aware_iso(since, "since")
        return parse(self._http.request("GET", path, params=params), DeliverySummary)

    def audit_events(
        self, owner: str, server_id: str, /, *, page_size: int = 100
    ) -> Iterator[AuditEvent]:
        """Who changed, tested or sent a test through the server, and when; newest first,
        following ``next_cursor`` as the iterator is consumed."""
        path = self._one(owner, server_id) + "/audit-events"
        params: dict[str, str | int] = {"limit": positive_page_size(page_size)}
        return follow_pages(self._http, path, params, AuditEvent, "audit-events")

    def audit_events_page(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """One page of :meth:`audit_events`; pass its ``next_cursor`` back as ``cursor``."""
        path = self._one(owner, server_id) + "/audit-events"
        params: dict[str, str | int] = {"limit": positive_page_size(page_size)}
        if cursor is not None:
            params["cursor"] = require_text(cursor, "cursor")
        return parse(self._http.request("GET", path, params=params), Page[AuditEvent])

    # ------------------------------------------------------------ writes

    def test(
        self,
        owner: str,
        /,
        spec: ServerSpec,
        *,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> ConnectionTestResult:
        """Run a connection test of these settings; a failed test is a result, not an error.

        A passing result carries the ``test_token`` that :meth:`create` needs. Set
        ``spec.server_id`` to test with the stored secrets of that server. With ``on_stage``
        the service streams the stages: it is called with each one as it ends, in the
        calling thread, before the whole result is returned.
        """
        body = _spec_body(spec)
        body.pop("test_token", None)  # a receipt is the answer of a test, never its input
        path = self._base(owner) + "/test"
        return self._run_staged(path, body, on_stage, TEST_CUT, ConnectionTestResult)

    def test_stored(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> ConnectionTestResult:
        """Test now: a connection test of the server as stored, secrets included.

        When the caller manages the server, the test is kept as one of its checks, so its
        ``last_test`` and ``health`` follow. ``on_stage`` as for :meth:`test`; the result
        carries no ``test_token``.
        """
        path = self._one(owner, server_id) + "/test"
        return self._run_staged(path, None, on_stage, TEST_CUT, ConnectionTestResult)

    def _run_staged(
        self,
        path: str,
        body: dict[str, Any] | None,
        on_stage: Callable[[Stage], None] | None,
        cut: str,
        result: type[Staged],
    ) -> Staged:
        """POST ``path``; with ``on_stage``, ask for the stages as they end (NDJSON) and hand
        each to it before the ``result`` arrives. ``cut`` says what an interrupted stream
        means."""
        if on_stage is None:
            return parse(self._http.request("POST", path, json=body), result)
        headers = {"Accept": f"{NDJSON}, application/json, application/problem+json"}
        response = self._http.request("POST", path, json=body, headers=headers, stream=True)
        try:
            return self._read_stages(response, on_stage, cut, result)
        finally:
            response.close()

    def _read_stages(
        self,
        response: httpx.Response,
        on_stage: Callable[[Stage], None],
        cut: str,
        result: type[Staged],
    ) -> Staged:
        if not response.headers.get("content-type", "").startswith(NDJSON):
            response.read()  # a service that does not stream answers the whole result
            return parse(response, result)
        url = self._http.display_url
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                item = _stream_item(line, url, result)
                if isinstance(item, Stage):
                    on_stage(item)
                else:
                    return item
        except httpx.RemoteProtocolError:
            pass  # the connection closed mid-answer: said below
        except httpx.TransportError as exc:
            raise unreachable(exc, url, self._http.timeout) from exc
        raise ServiceUnavailable(cut.format(url=url))

    def create(self, owner: str, /, spec: ServerSpec, *, test_token: str) -> EmailServer:
        """Add a server, with the ``test_token`` of a passing test of exactly this spec."""
        token = require_text(test_token, "test_token")
        path = self._base(owner)
        body = _spec_body(spec)
        # server_id only makes sense for a test; the new server has its own secrets.
        body.pop("server_id", None)
        body["test_token"] = token
        return _with_etag(self._http.request("POST", path, json=body))

    def update(
        self, owner: str, server_id: str, /, patch: EmailServerPatch, *, version: int
    ) -> EmailServer:
        """Change a server: only the patch's fields; omitted secrets stay as they are.

        ``version`` is the one last read (``server.version``): StaleVersion when someone
        saved in between, so their change is never silently overwritten.
        """
        path = self._one(owner, server_id)
        if not isinstance(patch, EmailServerPatch):
            raise TypeError(f"patch must be an EmailServerPatch, not {type(patch).__name__}.")
        headers = _if_match(version)
        response = self._http.request("PATCH", path, json=patch.to_wire(), headers=headers)
        return _with_etag(response)

    def replacements(self, owner: str, server_id: str, /) -> builtins.list[ReplacementChoice]:
        """Before deleting a server in use: each place that uses it (a workspace, or the
        organization's own usages, ``workspace_id`` None) and the servers that may take over
        there. Empty when nothing uses it."""
        path = self._one(owner, server_id) + "/replacements"
        return parse(self._http.request("GET", path), list[ReplacementChoice])

    # ------------------------------------------------------------ certificate rollover

    def upload_next_certificate(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        certificate: bytes,
        password: str | None = None,
        alias: str | None = None,
        version: int,
    ) -> EmailServer:
        """Hold a renewed certificate (the .pfx/.p12 or .pem with its key) beside the current
        one, which keeps signing in: an update of the settings ``next_certificate``,
        ``next_certificate_password`` and ``next_certificate_alias``, checked and stored
        like the current certificate. Then :meth:`test_next_certificate` and
        :meth:`promote_next_certificate`.
        """
        if not isinstance(certificate, bytes | bytearray) or not certificate:
            raise TypeError("certificate must be the certificate file's content (bytes).")
        settings: dict[str, Any] = {"next_certificate": bytes(certificate)}
        if password:
            settings["next_certificate_password"] = password
        if alias:
            settings["next_certificate_alias"] = alias
        patch = EmailServerPatch(settings=settings)
        return self.update(owner, server_id, patch, version=version)

    def test_next_certificate(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> ConnectionTestResult:
        """Test the server's next certificate on its own (the certificate and token stages
        with it); a failed test is a result, not an error. The service keeps the outcome on
        the server (``settings.next_certificate_test``): only a passing one may be promoted.
        ``on_stage`` as in :meth:`test`."""
        return self._run_staged(
            self._next(owner, server_id) + "/test", None, on_stage, TEST_CUT, ConnectionTestResult
        )

    def promote_next_certificate(
        self, owner: str, server_id: str, /, *, version: int
    ) -> EmailServer:
        """The tested next certificate becomes the current one, in one change. TestRequired
        when it has not passed a test; StaleVersion when the server changed since
        ``version``."""
        path = self._next(owner, server_id) + "/promote"
        return _with_etag(self._http.request("POST", path, headers=_if_match(version)))

    def drop_next_certificate(self, owner: str, server_id: str, /, *, version: int) -> EmailServer:
        """Forget the next certificate; the current one stays as it is."""
        path = self._next(owner, server_id)
        return _with_etag(self._http.request("DELETE", path, headers=_if_match(version)))

    def delete(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        replacement_id: str | None = None,
        replacements: Mapping[str, str] | None = None,
    ) -> None:
        """Delete a server; when it is in use, ``replacement_id`` takes over every usage.

        For an organization's server, ``replacements`` (workspace id -> server id) chooses per
        workspace: one of its own servers or another organization server;
        ``replacement_id`` then takes over the organization's own usages (its default server,
        the fallback of its servers) and any workspace not named. Without a replacement for
        every place, a server in use raises ServerInUse (``.usages`` lists them).
        """
        path = self._one(owner, server_id)
        if replacement_id is not None:
            segment(replacement_id, "replacement_id")  # same rules as any id
        if not replacements:
            # The query form: what every version of the service understands.
            params = {"replacement_id": replacement_id} if replacement_id is not None else None
            self._http.request("DELETE", path, params=params)
            return
        # Ids in a JSON body: checked as text, not quoted as path segments.
        chosen = {
            require_text(ws, "a workspace id in replacements"): require_text(
                target, f"the replacement for workspace {ws!r}"
            )
            for ws, target in replacements.items()
        }
        body = ServerReplacements(replacement_id=replacement_id, replacements=chosen)
        self._http.request("DELETE", path, json=body.model_dump())

    def send_test(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        to: str,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> SendTestResult:
        """Send a real test message through a stored server, own or inherited, in one
        session; recorded as a delivery (``delivery_id``). A refused message is a result, not
        an error: ``stages`` say where it stopped, with the server's reply.

        With ``on_stage`` the service streams the stages, as for :meth:`test`: SMTP resolve →
        connect → tls → ehlo → authenticate → sender → recipient → data (certificate → token
        first with OAuth 2.0); Microsoft Graph certificate → token → send.
        """
        path = self._one(owner, server_id) + "/send-test"
        body = {"to": require_text(to, "to").strip()}
        return self._run_staged(path, body, on_stage, SEND_CUT, SendTestResult)

    # ------------------------------------------------------------ paths

    def _base(self, owner: str) -> str:
        return f"/{self._parent}/{segment(owner, self._owner)}/email-servers"

    def _one(self, owner: str, server_id: str) -> str:
        return f"{self._base(owner)}/{segment(server_id, 'server_id')}"

    def _next(self, owner: str, server_id: str) -> str:
        return f"{self._one(owner, server_id)}/next-certificate"


def _if_match(version: int) -> dict[str, str]:
    """The header that makes a change apply only to the version last read."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version must be the server's version (an int), not {version!r}.")
    return {"If-Match": f'"{version}"'}


def _spec_body(spec: object) -> dict[str, Any]:
    # Models in, so validation (and the secrets' masking in reprs) happened before this.
    if not isinstance(spec, SmtpServerSpec | GraphServerSpec):
        raise TypeError(
            f"spec must be an SmtpServerSpec or a GraphServerSpec, not {type(spec).__name__}."
        )
    return spec.to_wire()


def _stream_item(line: str, url: str, result: type[Staged]) -> Stage | Staged:
    """One line of a streamed connection test or test message: a stage or the result."""
    try:
        item = json.loads(line)
        if isinstance(item, dict) and "stage" in item:
            return Stage.model_validate(item["stage"])
        if isinstance(item, dict) and "result" in item:
            return result.model_validate(item["result"])
    except ValueError:  # bad JSON, or a shape the models refuse (ValidationError)
        pass
    raise InternalError(
        f"The service at {url} streamed a line this client does not understand. "
        "Are the client and the service the same version?"
    )


def _with_etag(response: httpx.Response) -> EmailServer:
    """The server in the body, with the version of its ETag when the service sent one.

    The ETag is what ``If-Match`` is compared with, so it wins over the body's copy.
    """
    server = parse(response, EmailServer)
    version = etag_version(response)
    if version is not None and version != server.version:
        server = server.model_copy(update={"version": version})
    return server
