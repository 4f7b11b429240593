"""Bulk exports: every delivery of a period as one streamed CSV, for audits in pandas.

The JSON pages (``routes/catalog.py``) suit a table on screen; a year of a busy organization
is a million rows, which as JSON pages means thousands of round trips and a pydantic model
per row on both sides. CSV streams at the speed of the store and parses column-wise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    Text,
    case,
    cast,
    func,
    literal,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import Label

from ...csv_cells import QUOTE, TRIGGERS
from ..deps import ContextDep, SessionDep, WorkspaceScope
from ..services.catalog import deliveries_filter
from ..store.db import reading
from ..store.tables import DeliveryRow

router = APIRouter(prefix="/workspaces/{ws}", tags=["workspace"])

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

# The columns of the export, in order: the header row names them, the client reads them.
CSV_COLUMNS = (
    "id",
    "created_at",
    "workspace_id",
    "email_server_id",
    "email_server_name",
    "kind",
    "status",
    "recipient_count",
    "recipients",
    "error",
    "message_id",
    "stage",
    "reply_code",
    "history",
)

# Rows read per store round trip. Each chunk is its own short transaction: a slow reader
# (a notebook parsing as it downloads) then holds neither a pooled connection nor a read
# transaction open (on SQLite, an open reader keeps the WAL from being checkpointed).
CHUNK_ROWS = 5000

# The recipients leave as the JSON text the store holds, counted by the store: decoding and
# re-encoding a JSON array per row was a third of the export's time. json_array_length is
# built into SQLite (3.38+) and PostgreSQL (the column is `json` there) alike.
_RECIPIENTS = (
    func.json_array_length(DeliveryRow.recipients).label("recipient_count"),
    cast(DeliveryRow.recipients, Text).label("recipients"),
)

# `created_at` as the CSV's text, written by the store: turning each row's time into a
# datetime and back into text in Python was half of the export's time. SQLite holds the
# text SQLAlchemy wrote (`2026-11-01 09:30:00.000000`, UTC, always with microseconds).
_TIME_TEXT: dict[str, ColumnElement[str]] = {
    "sqlite": func.replace(type_coerce(DeliveryRow.created_at, String), " ", "T") + "Z",
    "postgresql": func.to_char(
        func.timezone("UTC", DeliveryRow.created_at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
    ),
}


# `history` as the same text on every store (SQLite holds 0/1, PostgreSQL a boolean).
_HISTORY = case(
    (DeliveryRow.history, literal("true", String)), else_=literal("false", String)
).label("history")


def _inert(column: ColumnElement[Any] | InstrumentedAttribute[Any], label: str) -> Label[Any]:
    """The column's text as a spreadsheet shows it without evaluating it (see csv_cells):
    one quote in front of a cell that leads with quotes and then =, +, -, @, tab or CR.
    Written by the store, like the times: no Python per row."""
    leading = func.substr(func.ltrim(column, QUOTE), 1, 1)
    return case((leading.in_(TRIGGERS), literal(QUOTE, String) + column), else_=column).label(label)


def _selected(dialect: str) -> tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]:
    """The columns in CSV order; ``created_at`` as text where the store can write it."""
    at = _TIME_TEXT.get(dialect, DeliveryRow.created_at.expression)
    return (
        DeliveryRow.id,
        at.label("created_at"),
        DeliveryRow.workspace_id,
        DeliveryRow.email_server_id,
        _inert(DeliveryRow.email_server_name, "email_server_name"),
        DeliveryRow.kind,
        DeliveryRow.status,
        *_RECIPIENTS,
        _inert(DeliveryRow.error, "error"),
        DeliveryRow.message_id,
        DeliveryRow.stage,
        DeliveryRow.reply_code,
        _HISTORY,
    )


_CSV_DOC = (
    "UTF-8 CSV (RFC 4180: CRLF line ends, fields with a comma, quote or line break quoted, "
    "quotes doubled), one header row, then one row per delivery, oldest first: "
    + ", ".join(CSV_COLUMNS)
    + "."
)


@router.get(
    "/deliveries.csv",
    response_class=StreamingResponse,
    responses={200: {"description": _CSV_DOC, "content": {"text/csv": {}}}},
)
def deliveries_csv(
    scope: WorkspaceScope,
    ctx: ContextDep,
    session: SessionDep,
    server_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Every delivery through the workspace's servers in the period, as one streamed CSV.

    The bulk form of `GET /workspaces/{ws}/deliveries`: the same rows, filters and
    permission (Workspace Admin of the workspace; 401, 403 and 404 as there), without
    pages. `since` is inclusive and `until` exclusive; both need a time zone (422 on the
    field otherwise), e.g. `2026-11-01T00:00:00Z`.

    Columns: `id`, `created_at` (ISO 8601 in UTC, `2026-11-01T09:30:00.000000Z`),
    `workspace_id`, `email_server_id`, `email_server_name` (the name when the message was
    sent), `kind`, `status` (sent, deferred, failed; accepted and bounced in the seeded
    history), `recipient_count`, `recipients` (a JSON array of addresses: no separator
    character is safe inside a quoted local part), `error` (the server's reply text, empty
    when there was none; may hold commas, quotes and line breaks, quoted as RFC 4180 says),
    `message_id` (the id of the message this attempt delivered, as in
    `GET /workspaces/{ws}/messages/{id}`; empty for connection tests and history), `stage`
    (the step the attempt ended at, e.g. connect, recipient or data), `reply_code` (the
    server's SMTP or HTTP status code), `history` (`true` for rows the demo seed invented,
    `false` for real traffic).

    A name or error that a spreadsheet would evaluate (leading `=`, `+`, `-`, `@`, tab or
    CR, after any quotes) is written with one `'` in front, so Excel shows it as text;
    `elegere_widgets.csv_cells.restore` (and the audit frames) give back the original.

    Rows are read from the store in chunks as the body is sent, never all at once. Should
    the store fail after the first rows were sent, the body ends without its final chunk,
    so a reader sees a truncated transfer rather than a short, valid-looking file.
    """
    clauses = deliveries_filter(scope, server_id, since, until)
    # The permission check's session would hold its pooled connection until the body is
    # sent: end it now.
    session.close()
    # The chunks only read: on SQLite they must neither take the write lock nor queue for it.
    chunks = _csv_chunks(reading(ctx.engine), clauses)
    # The first chunk is read here, before any byte is sent: a store that fails at once
    # still answers a problem (500) instead of a 200 with a broken body.
    first = next(chunks)
    filename = f"deliveries-{scope.workspace_id}.csv"
    return StreamingResponse(
        chain((first,), chunks),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_chunks(engine: Engine, clauses: Sequence[ColumnElement[bool]]) -> Iterator[bytes]:
    """The header, then the rows chunk by chunk, seeking by (created_at, id) as the index."""
    out = io.StringIO()
    writer = csv.writer(out)  # excel dialect: CRLF, minimal quoting, doubled quotes
    writer.writerow(CSV_COLUMNS)
    selected = _selected(engine.dialect.name)
    as_text = engine.dialect.name in _TIME_TEXT
    after: tuple[datetime, str] | None = None
    while True:
        query = select(*selected).where(*clauses)
        if after is not None:
            # Keyset, not OFFSET, and as a row value: with bound parameters SQLite's planner
            # seeks the (workspace_id, created_at, id) index only for `(a, b) > (?, ?)`; the
            # equivalent OR form scans from the start, and chunk n then costs O(n).
            query = query.where(tuple_(DeliveryRow.created_at, DeliveryRow.id) > after)
        query = query.order_by(DeliveryRow.created_at, DeliveryRow.id).limit(CHUNK_ROWS)
        with engine.connect() as conn:
            rows: Sequence[Sequence[Any]] = conn.execute(query).all()
        if not as_text:
            rows = [(row[0], _utc(row[1]), *row[2:]) for row in rows]
        # The rows go to the writer as the store gave them, with no Python per row: the csv
        # module writes None (no workspace, no error) as an empty field.
        writer.writerows(rows)
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
        if len(rows) < CHUNK_ROWS:
            return
        # The key is read back from the text, once per chunk: the same instant, to the µs.
        after = (datetime.fromisoformat(rows[-1][1]), rows[-1][0])


def _utc(value: datetime) -> str:
    # Fixed width with a Z, as the store writes it where it can.
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
