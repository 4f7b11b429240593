"""``client.deliveries``: the messages sent through a workspace's servers, page by page or
all at once as a streamed CSV (for audits)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from ..errors import InternalError, ServiceUnavailable
from ..models.usage import Delivery, Page
from ._args import aware_iso, positive_page_size, require_text, segment
from ._http import Http, Resource, follow_pages, parse

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CSV_MEDIA_TYPE = "text/csv"
# Big enough that pyarrow's and pandas' reads are not one system call per few bytes.
_READ_BUFFER = 1 << 16


class Deliveries(Resource):
    """``/workspaces/{ws}/deliveries``, paginated by cursor; ``deliveries.csv`` for bulk."""

    def list(
        self,
        ws: str,
        /,
        *,
        server_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 500,
    ) -> Iterator[Delivery]:
        """Every delivery that matches, following ``next_cursor`` until the last page.

        Pages are fetched as the iterator is consumed; the arguments are checked now.
        """
        path, params = _query(ws, server_id, since, until, page_size)
        return self._follow(path, params)

    def page(
        self,
        ws: str,
        /,
        *,
        server_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 500,
        cursor: str | None = None,
    ) -> Page[Delivery]:
        """One page; pass its ``next_cursor`` back as ``cursor`` for the next one."""
        path, params = _query(ws, server_id, since, until, page_size)
        if cursor is not None:
            params["cursor"] = require_text(cursor, "cursor")
        return parse(self._http.request("GET", path, params=params), Page[Delivery])

    def export(
        self,
        ws: str,
        /,
        *,
        server_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> io.BufferedReader:
        """Every delivery that matches, as one CSV streamed from the service.

        The bulk form of :meth:`list` for audits (``GET .../deliveries.csv``): a read-only
        binary file that downloads as it is read, so a million rows never sit in memory as
        text. The columns are ``id, created_at, workspace_id, email_server_id,
        email_server_name, kind, status, recipient_count, recipients, error`` (times in
        UTC, ``recipients`` a JSON array). Close it, or use it in a ``with`` block::

            with client.deliveries.export("ws_sales", since=start) as csv_file:
                table = pyarrow.csv.read_csv(csv_file)

        Wrap it in ``io.TextIOWrapper(f, encoding="utf-8", newline="")`` for text. The
        request is sent now: 401/403/404/422 raise here, as for :meth:`list`. Should the
        transfer break off midway, reading raises ServiceUnavailable, never a short file.
        """
        path, params = _filters(ws, server_id, since, until)
        return _open_stream(self._http, path + ".csv", params, accept=CSV_MEDIA_TYPE)

    def _follow(self, path: str, params: dict[str, str | int]) -> Iterator[Delivery]:
        return follow_pages(self._http, path, params, Delivery, "deliveries")


def _query(
    ws: str,
    server_id: str | None,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
) -> tuple[str, dict[str, str | int]]:
    positive_page_size(page_size)
    path, params = _filters(ws, server_id, since, until)
    return path, {"limit": page_size, **params}


def _filters(
    ws: str,
    server_id: str | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, dict[str, str | int]]:
    """The path and the filters the JSON pages and the CSV export share."""
    path = f"/workspaces/{segment(ws, 'workspace id')}/deliveries"
    params: dict[str, str | int] = {}
    if server_id is not None:
        segment(server_id, "server_id")  # same rules as any id; sent as a query
        params["server_id"] = server_id
    if since is not None:
        params["since"] = aware_iso(since, "since")
    if until is not None:
        params["until"] = aware_iso(until, "until")
    if since is not None and until is not None and since > until:
        raise ValueError(f"since ({since.isoformat()}) is after until ({until.isoformat()}).")
    return path, params


# ---------------------------------------------------------------- streamed bodies


def _open_stream(
    http: Http, path: str, params: Mapping[str, str | int], *, accept: str
) -> io.BufferedReader:
    """A GET whose body is read later, as a file; errors mapped as for every other call."""
    response = http.request(
        "GET",
        path,
        params=params,
        headers={"Accept": f"{accept}, application/problem+json"},
        stream=True,
    )
    try:
        kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
        if kind != accept:
            raise InternalError(
                f"GET {response.request.url.path} answered {kind}, not {accept}. Is the base URL "
                "the eLegere service's address?"
            )
    except BaseException:
        response.close()
        raise
    raw = _ResponseBody(response, http.display_url)
    return io.BufferedReader(raw, buffer_size=_READ_BUFFER)


class _ResponseBody(io.RawIOBase):
    """An httpx streamed response as a raw binary file; closing it closes the response."""

    def __init__(self, response: httpx.Response, display_url: str) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_bytes()
        self._pending = memoryview(b"")
        self._display_url = display_url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self.closed:
            raise ValueError("I/O operation on a closed export.")
        while not self._pending:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return 0
            except (httpx.TransportError, httpx.DecodingError) as exc:
                # Most often the service or a proxy dropped the connection before the last
                # chunk: what was read so far is a prefix, and must not pass for the whole.
                raise ServiceUnavailable(
                    f"The export from the eLegere service at {self._display_url} broke off "
                    f"before its end ({exc or type(exc).__name__}); what was read is "
                    "incomplete. Try again."
                ) from exc
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
