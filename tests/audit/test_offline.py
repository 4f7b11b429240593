"""What needs no running service: CSV parsing, the export's odd answers, pandas' place."""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Iterator

import httpx
import pytest

from elegere_widgets.audit.frames import _CSV_TYPES, _read_csv
from elegere_widgets.client import Client
from elegere_widgets.errors import InternalError, ServiceUnavailable
from elegere_widgets.server.routes.exports import CSV_COLUMNS

from .support import MAILER, SALES, TRICKY_ERROR


def test_the_reader_expects_the_columns_the_service_writes() -> None:
    # The audit package may not import the service: the two column lists meet here.
    assert set(_CSV_TYPES) <= set(CSV_COLUMNS)
    assert "recipient_count" in _CSV_TYPES and "recipients" not in _CSV_TYPES


def test_multi_line_errors_across_read_blocks() -> None:
    # pandas' pyarrow engine fails here ("out of sync with chunker") once a quoted line
    # break straddles a 1 MiB block: the frame builder must not.
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    n = 20_000
    for i in range(n):
        writer.writerow(
            [
                *(f"dlv_{i}", "2026-01-01T00:00:00.000000Z", SALES, MAILER, "Sales Mailer"),
                *("action", "failed", 1, '["a@example.com"]', f'{TRICKY_ERROR} {i}\n"end"'),
                *("", "connect", "", "true"),
            ]
        )
    data = out.getvalue().encode()
    assert len(data) > 2 * 1024 * 1024

    table = _read_csv(io.BytesIO(data))

    assert table.num_rows == n
    assert table.column("error")[n - 1].as_py() == f'{TRICKY_ERROR} {n - 1}\n"end"'
    assert table.column("id")[n - 1].as_py() == f"dlv_{n - 1}"


def test_an_export_answered_by_something_else_is_refused_and_closed() -> None:
    # Only a misconfigured proxy or base URL answers 200 with HTML: MockTransport stands in.
    closed: list[bool] = []

    class Page(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"<html>Sign in to the proxy</html>"

        def close(self) -> None:
            closed.append(True)

    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, stream=Page())

    with (
        httpx.Client(transport=httpx.MockTransport(proxy)) as http,
        Client("http://elegere.test", "tok", http_client=http) as client,
        pytest.raises(InternalError, match="not text/csv"),
    ):
        client.deliveries.export(SALES)
    assert closed == [True]


def test_an_export_from_nowhere_is_service_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        Client(f"http://127.0.0.1:{port}", "tok", timeout=5) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.deliveries.export(SALES)
