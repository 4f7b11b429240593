"""``GET /workspaces/{ws}/deliveries.csv`` and ``client.deliveries.export``, on every store.

The CSV is read back with the standard library's csv module, the strictest plain reader at
hand, and compared with the store read through SQLAlchemy.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import Engine

from elegere_widgets.client import Client
from elegere_widgets.errors import (
    AuthenticationRequired,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
)
from elegere_widgets.server.routes import exports
from elegere_widgets.server.store.tables import DeliveryRow
from tests.fixtures.service import RunningService

from .support import (
    RELAY,
    SALES,
    SQLITE_ONLY,
    SUPPORT,
    TRICKY_ERROR,
    insert_delivery,
    store_deliveries,
)


def _read(client: Client, ws: str = SALES, **filters: object) -> list[dict[str, str]]:
    with client.deliveries.export(ws, **filters) as body:  # type: ignore[arg-type]
        text = io.TextIOWrapper(body, encoding="utf-8", newline="")
        reader = csv.DictReader(text, strict=True)
        assert tuple(reader.fieldnames or ()) == exports.CSV_COLUMNS
        return list(reader)


def _utc(text: str) -> datetime:
    assert text.endswith("Z") and len(text) == len("2026-11-01T09:30:00.000000Z")
    return datetime.fromisoformat(text)


def test_every_delivery_of_the_workspace_once_in_time_order(
    admin: Client, service: RunningService
) -> None:
    expected = store_deliveries(service, SALES)
    rows = _read(admin)

    assert [r["id"] for r in rows] == [d.id for d in expected]
    assert len(rows) > 100  # the demo data, not an empty file that happens to match
    for row, stored in zip(rows, expected, strict=True):
        assert _utc(row["created_at"]) == stored.created_at
        assert row["workspace_id"] == SALES
        assert (row["email_server_id"], row["email_server_name"]) == (
            stored.email_server_id,
            stored.email_server_name,
        )
        assert (row["kind"], row["status"]) == (stored.kind, stored.status)
        assert json.loads(row["recipients"]) == stored.recipients
        assert int(row["recipient_count"]) == len(stored.recipients)
        assert row["error"] == (stored.error or "")


def test_filters_match_the_store(admin: Client, service: RunningService) -> None:
    stored = store_deliveries(service, SALES)
    since = stored[len(stored) // 3].created_at
    until = stored[2 * len(stored) // 3].created_at
    expected = [
        d.id for d in stored if since <= d.created_at < until and d.email_server_id == RELAY
    ]

    rows = _read(admin, server_id=RELAY, since=since, until=until)

    assert [r["id"] for r in rows] == expected and expected
    # An offset other than UTC means the same instant.
    local = since.astimezone(timezone(timedelta(hours=-5)))
    assert [r["id"] for r in _read(admin, server_id=RELAY, since=local, until=until)] == expected


def test_an_error_with_commas_quotes_and_line_breaks_round_trips(
    admin: Client, service: RunningService
) -> None:
    insert_delivery(service, "dlv_tricky", status="failed", error=TRICKY_ERROR)
    insert_delivery(
        service,
        "dlv_many",
        recipients=['"odd,local"@example.com', "b@example.com", "ç@example.com"],
    )

    rows = {r["id"]: r for r in _read(admin)}

    assert rows["dlv_tricky"]["error"] == TRICKY_ERROR
    assert rows["dlv_tricky"]["status"] == "failed"
    assert json.loads(rows["dlv_many"]["recipients"]) == [
        '"odd,local"@example.com',
        "b@example.com",
        "ç@example.com",
    ]
    assert rows["dlv_many"]["recipient_count"] == "3"


def test_chunks_seek_past_equal_times_without_losing_or_repeating_rows(
    admin: Client, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seven deliveries in the same microsecond, read three at a time: every chunk boundary
    # falls between equal created_at values, where only the id orders them.
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    for n in range(7):
        insert_delivery(service, f"dlv_same_{n}", created_at=at)
    monkeypatch.setattr(exports, "CHUNK_ROWS", 3)

    rows = _read(admin, since=at, until=at + timedelta(microseconds=1))

    assert [r["id"] for r in rows] == [f"dlv_same_{n}" for n in range(7)]
    assert {r["created_at"] for r in rows} == {"2026-01-02T03:04:05.678901Z"}
    assert [r["id"] for r in _read(admin)] == [d.id for d in store_deliveries(service, SALES)]


def test_an_empty_period_is_the_header_alone(admin: Client) -> None:
    with admin.deliveries.export(SALES, since=datetime(2100, 1, 1, tzinfo=UTC)) as body:
        assert body.read() == b"\r\n".join([",".join(exports.CSV_COLUMNS).encode(), b""])


def test_answer_is_csv_to_download(service: RunningService) -> None:
    r = httpx.get(
        f"{service.url}/api/v1/workspaces/{SALES}/deliveries.csv",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="deliveries-ws_sales.csv"'
    assert r.text.startswith("id,created_at,") and "\r\n" in r.text


def test_only_a_workspace_admin_of_that_workspace_may_export(
    analyst: Client, delegate: Client, admin: Client, service: RunningService
) -> None:
    with pytest.raises(PermissionDenied):
        analyst.deliveries.export(SALES)
    with pytest.raises(PermissionDenied):  # a Delegate may grant the right, not use it
        delegate.deliveries.export(SALES)
    with pytest.raises(PermissionDenied):
        admin.deliveries.export(SUPPORT)
    with pytest.raises(NotFound):
        admin.deliveries.export("ws_elsewhere")
    with Client(service.url, None) as anonymous, pytest.raises(AuthenticationRequired):
        anonymous.deliveries.export(SALES)


def test_a_time_without_zone_is_a_field_error(admin: Client, service: RunningService) -> None:
    with pytest.raises(ValueError, match="time zone"):  # refused before any request
        admin.deliveries.export(SALES, since=datetime(2026, 1, 1))
    headers = {"Authorization": f"Bearer {service.tokens['admin@acme.example']}"}
    url = f"{service.url}/api/v1/workspaces/{SALES}/deliveries.csv"
    for field, value in (("since", "2026-01-01T00:00:00"), ("until", "yesterday")):
        r = httpx.get(url, params={field: value}, headers=headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == [field]
    # The same check as the JSON pages (one helper), so the same answer there.
    r = httpx.get(
        url.removesuffix(".csv"), params={"since": "2026-01-01T00:00:00"}, headers=headers
    )
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "since", "message": "Give a time zone, e.g. 2026-11-01T00:00:00Z."}
    ]


def test_a_transfer_that_breaks_off_raises_instead_of_ending_short(
    admin: Client, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = exports._csv_chunks

    def failing(engine: Engine, clauses: list[object]) -> Iterator[bytes]:
        chunks = real(engine, clauses)  # type: ignore[arg-type]
        yield next(chunks)
        yield next(chunks)
        raise RuntimeError("the store went away")

    monkeypatch.setattr(exports, "CHUNK_ROWS", 10)
    monkeypatch.setattr(exports, "_csv_chunks", failing)
    with (
        admin.deliveries.export(SALES) as body,
        pytest.raises(ServiceUnavailable, match="incomplete"),
    ):
        body.read()


def test_times_formatted_in_python_match_the_stores_own_text(
    admin: Client, service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store writes `created_at` as text where it can; any other store's times are
    # formatted in Python, and must come out byte for byte the same.
    insert_delivery(service, "dlv_tricky", status="failed", error=TRICKY_ERROR)
    monkeypatch.setattr(exports, "CHUNK_ROWS", 50)
    with admin.deliveries.export(SALES) as body:
        by_store = body.read()
    monkeypatch.setattr(exports, "_TIME_TEXT", {})
    with admin.deliveries.export(SALES) as body:
        by_python = body.read()

    assert by_python == by_store
    assert by_store.count(b"dlv_") == len(store_deliveries(service, SALES))


@SQLITE_ONLY
def test_an_export_does_not_wait_for_a_writer(admin: Client, service: RunningService) -> None:
    # Every write transaction holds SQLite's write lock from its BEGIN; the export's chunks
    # only read, and must neither take that lock nor queue for it.
    with service.ctx.sessions() as writer:
        writer.add(
            DeliveryRow(
                id="dlv_uncommitted",
                workspace_id=SALES,
                email_server_id=RELAY,
                email_server_name="Acme Relay",
                kind="action",
                recipients=["someone@example.com"],
                status="sent",
                created_at=datetime.now(UTC),
            )
        )
        writer.flush()  # the INSERT: the transaction now holds the write lock
        rows = _read(admin)
        writer.rollback()

    assert "dlv_uncommitted" not in {r["id"] for r in rows}
    assert [r["id"] for r in rows] == [d.id for d in store_deliveries(service, SALES)]


def test_cells_a_spreadsheet_would_evaluate_are_inert_and_restore_exactly(
    admin: Client, service: RunningService
) -> None:
    from elegere_widgets.csv_cells import neutralise, restore

    from .support import FORMULA_CELLS

    for n, name in enumerate(FORMULA_CELLS):
        insert_delivery(service, f"dlv_formula_{n}", email_server_name=name, error=name)
    rows = {r["id"]: r for r in _read(admin)}

    for n, (name, written) in enumerate(FORMULA_CELLS.items()):
        row = rows[f"dlv_formula_{n}"]
        assert (row["email_server_name"], row["error"]) == (written, written), name
        assert neutralise(name) == written and restore(written) == name
    # Nothing else changed: plain names and errors are written as stored.
    assert rows[next(iter(rows))]["email_server_name"] in {
        d.email_server_name for d in store_deliveries(service, SALES)
    }
