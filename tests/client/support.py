"""Helpers shared by the client tests: a recording MockTransport handler and sample bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

BASE_URL = "http://elegere.test:8765"
TOKEN = "tok_0123456789abcdef-never-shown"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeService:
    """A MockTransport handler: answers queued responses and records every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: list[Answer] = []

    def answer(self, *answers: Answer) -> FakeService:
        self._answers.extend(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        answer = self._answers.pop(0)
        return answer(request) if callable(answer) else answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def server_json(**overrides: Any) -> dict[str, Any]:
    """An email server as the service sends it."""
    body: dict[str, Any] = {
        "id": "srv_1",
        "workspace_id": "ws_1",
        "organization_id": "org_1",
        "scope": "workspace",
        "inherited": False,
        "type": "smtp",
        "name": "Sales relay",
        "version": 3,
        "settings": {
            "server": "mail.example.com",
            "port": 587,
            "use_ssl": False,
            "account": "sales",
            "sender_address": "sales@example.com",
        },
        "secrets_set": {"password": True},
        "usage": {"custom_actions": 2, "scheduler_jobs": 1},
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-02T10:00:00Z",
        "last_test": None,
    }
    body.update(overrides)
    return body
