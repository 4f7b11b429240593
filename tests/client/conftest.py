"""Fixtures for the client tests that need no service.

``MockTransport`` stands in only where the real service cannot produce the answer (a
proxy's HTML page, a 429 from a gateway, every problem kind on demand) or where the test
checks the client's own logic (paging, argument checks before any I/O). End-to-end tests
against the real service live elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from elegere_widgets.client import Client

from .support import BASE_URL, TOKEN, FakeService


@pytest.fixture
def fake() -> FakeService:
    """Named apart from the root ``service`` fixture, which runs the real service."""
    return FakeService()


@pytest.fixture
def client(fake: FakeService) -> Iterator[Client]:
    http_client = httpx.Client(transport=httpx.MockTransport(fake))
    with Client(BASE_URL, TOKEN, http_client=http_client) as c:
        yield c
    http_client.close()
