"""``client.audit_events``: the audit trail of a workspace's servers, newest first.

Every change, connection test and test message leaves an event: who, when, which server,
which fields changed (by name, never a value) and how it went.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..models.audit import AuditEvent
from ..models.usage import Page
from ._args import positive_page_size, require_text, segment
from ._http import Resource, follow_pages, parse


class AuditEvents(Resource):
    """``/workspaces/{ws}/audit-events``, paginated by cursor; Workspace Admins only."""

    def list(self, ws: str, /, *, page_size: int = 500) -> Iterator[AuditEvent]:
        """Every event of the workspace, newest first, following ``next_cursor`` to the end.

        Pages are fetched as the iterator is consumed; the arguments are checked now.
        """
        path, params = _query(ws, page_size)
        return self._follow(path, params)

    def page(
        self, ws: str, /, *, page_size: int = 500, cursor: str | None = None
    ) -> Page[AuditEvent]:
        """One page; pass its ``next_cursor`` back as ``cursor`` for the next one."""
        path, params = _query(ws, page_size)
        if cursor is not None:
            params["cursor"] = require_text(cursor, "cursor")
        return parse(self._http.request("GET", path, params=params), Page[AuditEvent])

    def _follow(self, path: str, params: dict[str, str | int]) -> Iterator[AuditEvent]:
        return follow_pages(self._http, path, params, AuditEvent, "audit-events")


def _query(ws: str, page_size: int) -> tuple[str, dict[str, str | int]]:
    positive_page_size(page_size)
    path = f"/workspaces/{segment(ws, 'workspace id')}/audit-events"
    return path, {"limit": page_size}
