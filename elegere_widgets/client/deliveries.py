"""``client.deliveries``: the messages sent through a workspace's servers, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ..errors import InternalError
from ..models.usage import Delivery, Page
from ._args import require_text, segment
from ._http import Resource, parse


class Deliveries(Resource):
    """``/workspaces/{ws}/deliveries``, paginated by cursor."""

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

    def _follow(self, path: str, params: dict[str, str | int]) -> Iterator[Delivery]:
        seen: set[str] = set()
        while True:
            page = parse(self._http.request("GET", path, params=params), Page[Delivery])
            yield from page.items
            cursor = page.next_cursor
            if not cursor:
                return
            # A service that hands back a cursor twice would keep this loop going forever.
            if cursor in seen:
                raise InternalError(
                    "The service returned the same deliveries cursor twice; stopped paging."
                )
            seen.add(cursor)
            params = {**params, "cursor": cursor}


def _query(
    ws: str,
    server_id: str | None,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
) -> tuple[str, dict[str, str | int]]:
    path = f"/workspaces/{segment(ws, 'workspace id')}/deliveries"
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive int, not {page_size!r}.")
    params: dict[str, str | int] = {"limit": page_size}
    if server_id is not None:
        segment(server_id, "server_id")  # same rules as any id; sent as a query
        params["server_id"] = server_id
    if since is not None:
        params["since"] = _iso(since, "since")
    if until is not None:
        params["until"] = _iso(until, "until")
    if since is not None and until is not None and since > until:
        raise ValueError(f"since ({since.isoformat()}) is after until ({until.isoformat()}).")
    return path, params


def _iso(value: datetime, what: str) -> str:
    # A naive datetime is ambiguous (whose local time?), and the service compares instants.
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} has no time zone; pass an aware datetime such as "
            "datetime(2024, 5, 1, tzinfo=timezone.utc)."
        )
    return value.isoformat()
