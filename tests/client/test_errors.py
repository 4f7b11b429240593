"""Every answer that is not a success becomes the right exception, with a readable message.

Problem bodies are built with ``SomeError(...).to_problem()``, the function the service's
handler uses, so client and service agree by construction. MockTransport is used because
the real service cannot be made to answer each kind on demand, nor as a proxy would.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import (
    AuthenticationRequired,
    BadReplacement,
    BadRequest,
    Conflict,
    InternalError,
    InvalidSettings,
    NameTaken,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionRequired,
    RateLimited,
    ReadOnlyServer,
    ServerInUse,
    ServiceError,
    ServiceUnavailable,
    StaleVersion,
    TestRequired,
    VersionRequired,
)
from elegere_widgets.models import FieldError, Usage

from .support import FakeService

PROBLEM_JSON = {"content-type": "application/problem+json"}
USAGES = [
    Usage(kind="custom_action", id="ca_1", name="Send quote"),
    Usage(kind="scheduler_job", id="sj_1", name="Nightly digest"),
]
PORT_ERROR = FieldError(field="port", message="Port must be a number from 1 to 65535.")

ERRORS: list[ServiceError] = [
    BadRequest("The body must be JSON."),
    AuthenticationRequired("Your sign-in expired: sign in again."),
    PermissionDenied("Only a Workspace Admin of Sales may manage its email servers."),
    ReadOnlyServer("'Org relay' is inherited: manage it in the Organization."),
    NotFound("No email server srv_9 in this workspace."),
    Conflict("The request conflicts with the current state."),
    NameTaken("Another server is already called 'Sales relay'."),
    ServerInUse("'Sales relay' sends mail for 2 items: choose a replacement.", usages=USAGES),
    StaleVersion("Someone else saved 'Sales relay' first: reload it."),
    PayloadTooLarge("The certificate is over 1 MiB."),
    InvalidSettings(field_errors=[PORT_ERROR]),
    BadReplacement(
        "The replacement is the server being deleted.",
        field_errors=[FieldError(field="replacement_id", message="Choose another server.")],
    ),
    PreconditionRequired("A precondition is missing."),
    TestRequired("Test these settings, then add the server."),
    VersionRequired("Send If-Match with the version you read."),
    RateLimited("Too many connection tests; wait a minute."),
    InternalError("The service failed; try again."),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_problem_becomes_the_same_exception(
    client: Client, fake: FakeService, error: ServiceError
) -> None:
    body = error.to_problem().model_dump(mode="json")
    fake.answer(httpx.Response(error.status, json=body, headers=PROBLEM_JSON))

    with pytest.raises(ServiceError) as caught:
        client.email_servers.get("ws_1", "srv_1")

    exc = caught.value
    assert type(exc) is type(error)
    assert str(exc) == error.message
    assert exc.problem is not None and exc.problem.type == error.type_uri()
    if isinstance(error, InvalidSettings):
        assert isinstance(exc, InvalidSettings)
        assert exc.field_errors == error.field_errors
    if isinstance(error, ServerInUse):
        assert isinstance(exc, ServerInUse)
        assert exc.usages == USAGES


def test_field_errors_are_readable_by_field(client: Client, fake: FakeService) -> None:
    body = InvalidSettings(field_errors=[PORT_ERROR]).to_problem().model_dump(mode="json")
    fake.answer(httpx.Response(422, json=body, headers=PROBLEM_JSON))

    with pytest.raises(InvalidSettings) as caught:
        client.email_servers.list("ws_1")

    assert caught.value.for_field("port") == PORT_ERROR.message
    assert caught.value.for_field("server") is None


def test_delete_in_use_lists_the_usages(client: Client, fake: FakeService) -> None:
    body = ServerInUse("In use.", usages=USAGES).to_problem().model_dump(mode="json")
    fake.answer(httpx.Response(409, json=body, headers=PROBLEM_JSON))

    with pytest.raises(ServerInUse) as caught:
        client.email_servers.delete("ws_1", "srv_1")

    assert [u.name for u in caught.value.usages] == ["Send quote", "Nightly digest"]


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def test_proxy_html_502_is_a_readable_error(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html"}))

    with pytest.raises(InternalError) as caught:
        client.workspaces.list()

    message = str(caught.value)
    assert message == (
        "The service answered 502 Bad Gateway; it may be restarting. Try again in a moment."
    )
    assert "<" not in message and "nginx" not in message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (503, InternalError),
        (500, InternalError),
        (404, NotFound),
        (413, PayloadTooLarge),
        (401, AuthenticationRequired),
        (403, PermissionDenied),
    ],
)
def test_non_json_bodies_map_by_status(
    client: Client, fake: FakeService, status: int, expected: type[ServiceError]
) -> None:
    html = f"<html><body><h1>{status}</h1><p>proxy page</p></body></html>"
    fake.answer(httpx.Response(status, text=html, headers={"content-type": "text/html"}))

    with pytest.raises(expected) as caught:
        client.me()

    assert type(caught.value) is expected
    assert str(caught.value).startswith(f"The service answered {status} ")
    assert "<" not in str(caught.value)


def test_429_carries_retry_after_from_the_header(client: Client, fake: FakeService) -> None:
    body = RateLimited("Too many connection tests; wait a minute.").to_problem()
    fake.answer(
        httpx.Response(
            429, json=body.model_dump(mode="json"), headers={**PROBLEM_JSON, "Retry-After": "7"}
        )
    )

    with pytest.raises(RateLimited) as caught:
        client.email_servers.list("ws_1")

    assert caught.value.retry_after == 7
    assert str(caught.value) == "Too many connection tests; wait a minute."


def test_429_from_a_gateway_with_an_http_date(client: Client, fake: FakeService) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.answer(httpx.Response(429, text="Too Many Requests", headers={"Retry-After": when}))

    with pytest.raises(RateLimited) as caught:
        client.email_servers.list("ws_1")

    assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 31


def test_429_without_retry_after(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(429, text="slow down"))

    with pytest.raises(RateLimited) as caught:
        client.me()

    assert caught.value.retry_after is None


def test_plain_fastapi_bodies_still_map(client: Client, fake: FakeService) -> None:
    # What FastAPI answers by itself (an unknown route, its own validation) if a body ever
    # slips past the service's problem handler, e.g. an older service version.
    fake.answer(
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(
            422,
            json={
                "detail": [
                    {"loc": ["body", "settings", "port"], "msg": "too big", "type": "value_error"}
                ]
            },
        ),
    )

    with pytest.raises(NotFound, match=r"^Not Found$"):
        client.me()
    with pytest.raises(InvalidSettings) as caught:
        client.email_servers.list("ws_1")
    assert caught.value.field_errors == [FieldError(field="port", message="too big")]
    assert str(caught.value) == "port: too big"


def test_oauth_style_json_error(client: Client, fake: FakeService) -> None:
    fake.answer(
        httpx.Response(400, json={"error": "invalid_request", "error_description": "No body."})
    )

    with pytest.raises(BadRequest, match=r"^No body\.$"):
        client.me()


def test_success_that_is_not_json(client: Client, fake: FakeService) -> None:
    fake.answer(
        httpx.Response(200, text="<html>Jupyter</html>", headers={"content-type": "text/html"})
    )

    with pytest.raises(InternalError, match="text/html, not JSON"):
        client.me()


def test_success_of_the_wrong_shape(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json={"unexpected": True}))

    with pytest.raises(InternalError, match="same version"):
        client.me()


def test_redirect_says_where_to(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(301, headers={"location": "https://elegere.test/api/v1/me"}))

    with pytest.raises(ServiceError, match=r"https://elegere\.test/api/v1/me"):
        client.me()


# ---------------------------------------------------------------- real sockets


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_closed_port_is_service_unavailable(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with Client(url, "t", timeout=5) as client, pytest.raises(ServiceUnavailable) as caught:
        client.me()

    assert str(caught.value) == (
        f"Could not reach the eLegere service at {url}: connection refused. Is it running?"
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    # Listening but never accepting: the kernel completes the handshake, no one answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_no_answer_in_time_is_service_unavailable(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    with Client(url, "t", timeout=0.3) as client, pytest.raises(ServiceUnavailable) as caught:
        client.workspaces.list()

    assert str(caught.value).startswith(f"The eLegere service at {url} did not answer within 0.3 s")
