"""The deliveries iterator follows ``next_cursor`` to the last page.

MockTransport is acceptable here: the test checks the client's own paging logic (cursor
passed back, filters kept on every page, lazy fetching), not the service's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import InternalError
from elegere_widgets.models import Delivery, Page

from .support import FakeService

SINCE = datetime(2024, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))
UNTIL = datetime(2024, 6, 1, tzinfo=UTC)


def delivery(n: int) -> dict[str, object]:
    return {
        "id": f"dl_{n}",
        "workspace_id": "ws_1",
        "email_server_id": "srv_1",
        "email_server_name": "Sales relay",
        "kind": "custom_action",
        "recipients": ["ann@example.com"],
        "status": "sent",
        "created_at": "2024-05-02T10:00:00Z",
    }


def page(cursor: str | None, *numbers: int) -> httpx.Response:
    return httpx.Response(
        200, json={"items": [delivery(n) for n in numbers], "next_cursor": cursor}
    )


def test_list_follows_every_page(client: Client, fake: FakeService) -> None:
    fake.answer(page("c2", 1, 2), page("c3", 3, 4), page(None, 5))

    found = list(
        client.deliveries.list("ws_1", server_id="srv_1", since=SINCE, until=UNTIL, page_size=2)
    )

    assert [d.id for d in found] == ["dl_1", "dl_2", "dl_3", "dl_4", "dl_5"]
    assert all(isinstance(d, Delivery) for d in found)
    cursors = [r.url.params.get("cursor") for r in fake.requests]
    assert cursors == [None, "c2", "c3"]
    for request in fake.requests:
        assert request.url.path == "/api/v1/workspaces/ws_1/deliveries"
        params = request.url.params
        assert params["server_id"] == "srv_1"
        assert params["limit"] == "2"
        assert params["since"] == "2024-05-01T08:30:00+02:00"
        assert params["until"] == "2024-06-01T00:00:00+00:00"


def test_list_fetches_pages_only_as_needed(client: Client, fake: FakeService) -> None:
    fake.answer(page("c2", 1, 2), page(None, 3))

    found = client.deliveries.list("ws_1")
    assert fake.requests == []
    assert next(found).id == "dl_1"
    assert len(fake.requests) == 1
    assert fake.requests[0].url.params["limit"] == "500"


def test_a_repeated_cursor_stops_the_paging(client: Client, fake: FakeService) -> None:
    fake.answer(page("c2", 1), page("c2", 2))

    with pytest.raises(InternalError, match="cursor twice"):
        list(client.deliveries.list("ws_1"))


def test_one_page(client: Client, fake: FakeService) -> None:
    fake.answer(page("c9", 7))

    result = client.deliveries.page("ws_1", cursor="c8", page_size=1)

    assert isinstance(result, Page)
    assert [d.id for d in result.items] == ["dl_7"] and result.next_cursor == "c9"
    assert fake.last.url.params["cursor"] == "c8"
