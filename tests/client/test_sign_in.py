"""Signing in with an email and a password.

MockTransport checks the request the client builds (form-encoded, at the service root and
not under /api/v1) and its reading of the answer; the end-to-end tests sign in for real.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import AuthenticationRequired, InternalError

from .support import BASE_URL, FakeService

PASSWORD = "correct horse battery staple"
ACCESS_TOKEN = "eyJ.signed.in"


def sign_in(fake: FakeService) -> Client:
    http_client = httpx.Client(transport=httpx.MockTransport(fake))
    return Client.sign_in(BASE_URL, "ann@example.com", PASSWORD, http_client=http_client)


def test_sign_in_posts_the_form_at_the_root(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
    fake.answer(httpx.Response(200, json=answer), httpx.Response(200, json=[]))

    with sign_in(fake) as client:
        client.workspaces.list()

    token_request, api_request = fake.requests
    assert str(token_request.url) == f"{BASE_URL}/identityprovider/connect/token"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token_request.headers
    form = {k: v[0] for k, v in parse_qs(token_request.content.decode()).items()}
    assert form == {
        "grant_type": "password",
        "username": "ann@example.com",
        "password": PASSWORD,
        "client_id": "elegere-widgets",
        "scope": "api",
    }
    assert api_request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    for record in caplog.records:
        assert PASSWORD not in record.getMessage() and ACCESS_TOKEN not in record.getMessage()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(400, json={"error": "invalid_grant", "error_description": "bad"}),
        httpx.Response(401, json={"type": "/problems/authentication-required", "detail": "no"}),
    ],
)
def test_wrong_password(fake: FakeService, answer: httpx.Response) -> None:
    fake.answer(answer)

    with pytest.raises(AuthenticationRequired) as caught:
        sign_in(fake)

    assert str(caught.value) == "Wrong email or password."


def test_an_answer_without_a_token(fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json={"token_type": "Bearer"}))

    with pytest.raises(InternalError):
        sign_in(fake)


def test_empty_password_is_refused_before_any_request(fake: FakeService) -> None:
    with pytest.raises(ValueError, match="password"):
        Client.sign_in(BASE_URL, "ann@example.com", "")
    assert fake.requests == []
