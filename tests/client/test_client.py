"""The Client itself: arguments checked before any I/O, no token in reprs or logs, env."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import elegere_widgets.client
from elegere_widgets.client import Client
from elegere_widgets.errors import ElegereError
from elegere_widgets.models import EmailServerPatch, SmtpServerSpec, SmtpSettings

from .support import BASE_URL, TOKEN, FakeService, server_json

SPEC = SmtpServerSpec(
    name="Sales relay",
    settings=SmtpSettings(
        server="mail.example.com", port=587, account="sales", sender_address="s@example.com"
    ),
)
PATCH = EmailServerPatch(name="Renamed")
AWARE = datetime(2024, 5, 1, tzinfo=UTC)

Call = Callable[[Client], Any]

# Each call with one bad argument; none may reach the transport.
BAD_CALLS: dict[str, Call] = {
    "workspaces.get('')": lambda c: c.workspaces.get(""),
    "grant_admin ws": lambda c: c.workspaces.grant_admin("", "ann@example.com"),
    "grant_admin user": lambda c: c.workspaces.grant_admin("ws_1", " "),
    "revoke_admin user": lambda c: c.workspaces.revoke_admin("ws_1", ""),
    "email_servers.list": lambda c: c.email_servers.list(""),
    "email_servers.get ws": lambda c: c.email_servers.get("", "srv_1"),
    "email_servers.get id": lambda c: c.email_servers.get("ws_1", ""),
    "email_servers.get dotdot": lambda c: c.email_servers.get("ws_1", ".."),
    "email_servers.usages": lambda c: c.email_servers.usages("ws_1", "  "),
    "email_servers.test": lambda c: c.email_servers.test("", SPEC),
    "email_servers.create ws": lambda c: c.email_servers.create("", SPEC, test_token="t"),
    "email_servers.create token": lambda c: c.email_servers.create("ws_1", SPEC, test_token=""),
    "email_servers.update id": lambda c: c.email_servers.update("ws_1", "", PATCH, version=1),
    "email_servers.update version": lambda c: c.email_servers.update(
        "ws_1", "srv_1", PATCH, version=-1
    ),
    "email_servers.delete id": lambda c: c.email_servers.delete("ws_1", ""),
    "email_servers.delete replacement": lambda c: c.email_servers.delete(
        "ws_1", "srv_1", replacement_id=""
    ),
    "email_servers.send_test id": lambda c: c.email_servers.send_test("ws_1", "", to="a@b.co"),
    "email_servers.send_test to": lambda c: c.email_servers.send_test("ws_1", "srv_1", to=""),
    "organization_email_servers.list": lambda c: c.organization_email_servers.list(""),
    "organization_email_servers.delete": lambda c: c.organization_email_servers.delete("o", ""),
    "custom_actions.list": lambda c: c.custom_actions.list(""),
    "scheduler_jobs.list": lambda c: c.scheduler_jobs.list(""),
    "deliveries.list ws": lambda c: c.deliveries.list(""),
    "deliveries.list server": lambda c: c.deliveries.list("ws_1", server_id=""),
    "deliveries.list naive": lambda c: c.deliveries.list("ws_1", since=datetime(2024, 5, 1)),
    "deliveries.list order": lambda c: c.deliveries.list(
        "ws_1", since=AWARE, until=datetime(2024, 4, 1, tzinfo=UTC)
    ),
    "deliveries.list page_size": lambda c: c.deliveries.list("ws_1", page_size=0),
    "deliveries.page cursor": lambda c: c.deliveries.page("ws_1", cursor=""),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_arguments_raise_before_any_request(
    client: Client, fake: FakeService, call: Call
) -> None:
    with pytest.raises(ValueError):
        call(client)
    assert fake.requests == []


def test_wrong_types_raise_type_error(client: Client, fake: FakeService) -> None:
    with pytest.raises(TypeError):
        client.email_servers.get("ws_1", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.email_servers.test("ws_1", SPEC.to_wire())  # type: ignore[arg-type]
    assert fake.requests == []


def test_ids_are_quoted_into_one_segment(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=server_json()))

    client.email_servers.get("ws/1", "srv 1?x")

    assert fake.last.url.raw_path == b"/api/v1/workspaces/ws%2F1/email-servers/srv%201%3Fx"


def test_organization_servers_use_their_own_prefix(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=[]), httpx.Response(204))

    assert client.organization_email_servers.list("org_1") == []
    client.organization_email_servers.delete("org_1", "srv_1", replacement_id="srv_2")

    assert fake.requests[0].url.path == "/api/v1/organizations/org_1/email-servers"
    assert str(fake.last.url) == (
        f"{BASE_URL}/api/v1/organizations/org_1/email-servers/srv_1?replacement_id=srv_2"
    )


def test_per_workspace_replacements_go_in_the_delete_body(
    client: Client, fake: FakeService
) -> None:
    fake.answer(httpx.Response(204))

    client.organization_email_servers.delete(
        "org_1", "srv_1", replacement_id="srv_2", replacements={"ws/1": "srv 3"}
    )

    assert fake.last.method == "DELETE" and fake.last.url.query == b""
    # Ids in the body stay as they are: only path segments are quoted.
    assert json.loads(fake.last.content) == {
        "replacement_id": "srv_2",
        "replacements": {"ws/1": "srv 3"},
    }
    with pytest.raises(ValueError, match="replacement for workspace 'ws_1'"):
        client.organization_email_servers.delete("org_1", "srv_1", replacements={"ws_1": " "})


def test_repr_shows_the_url_never_the_token(client: Client) -> None:
    assert repr(client) == f"Client(base_url={BASE_URL!r})"
    for text in (repr(client), str(client), repr(client._http), repr(client.email_servers)):
        assert TOKEN not in text


def test_repr_hides_a_password_in_the_url() -> None:
    with Client("http://admin:hunter2@127.0.0.1:8765/", TOKEN) as client:
        assert "hunter2" not in repr(client)
        assert repr(client) == "Client(base_url='http://127.0.0.1:8765')"


def test_token_never_reaches_a_log_record(
    client: Client, fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.answer(httpx.Response(200, json=[]), httpx.Response(401, text="no"))

    client.workspaces.list()
    with pytest.raises(ElegereError) as caught:
        client.me()

    assert fake.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert any(r.name == "elegere_widgets.client" for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "base_url", ["http://h:1", "http://h:1/", "http://h:1/api/v1", "http://h:1/api/v1/"]
)
def test_base_url_is_the_service_root(base_url: str) -> None:
    with Client(base_url) as client:
        assert client.base_url == "http://h:1"


@pytest.mark.parametrize("base_url", ["", "127.0.0.1:8765", "ftp://h", "http://"])
def test_bad_base_url(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        Client(base_url)


def test_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="token"):
        Client(BASE_URL, " \n")


def test_token_whitespace_is_trimmed(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=[]))
    with Client(BASE_URL, f"{TOKEN}\n", http_client=client._http._client) as other:
        other.workspaces.list()
    assert fake.last.headers["authorization"] == f"Bearer {TOKEN}"


# ---------------------------------------------------------------- environment


def test_from_env_names_both_missing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEGERE_URL", raising=False)
    monkeypatch.delenv("ELEGERE_TOKEN", raising=False)

    with pytest.raises(ElegereError, match=r"^ELEGERE_URL and ELEGERE_TOKEN are not set"):
        Client.from_env()


def test_from_env_names_the_missing_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELEGERE_URL", BASE_URL)
    monkeypatch.setenv("ELEGERE_TOKEN", "")

    with pytest.raises(ElegereError, match=r"^ELEGERE_TOKEN is not set"):
        Client.from_env()


def test_from_env_names_the_missing_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEGERE_URL", raising=False)
    monkeypatch.setenv("ELEGERE_TOKEN", TOKEN)

    with pytest.raises(ElegereError, match=r"^ELEGERE_URL is not set"):
        Client.from_env()


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELEGERE_URL", BASE_URL + "/")
    monkeypatch.setenv("ELEGERE_TOKEN", TOKEN)

    with Client.from_env(timeout=5) as client:
        assert client.base_url == BASE_URL
        assert client.timeout == 5.0
        assert client._http.token == TOKEN


# ---------------------------------------------------------------- lifetime


def test_a_passed_http_client_stays_open() -> None:
    http_client = httpx.Client()
    with Client(BASE_URL, http_client=http_client):
        pass
    assert not http_client.is_closed
    http_client.close()


def test_an_own_http_client_is_closed() -> None:
    client = Client(BASE_URL)
    client.close()
    assert client._http._client.is_closed


def test_public_surface() -> None:
    assert elegere_widgets.client.__all__ == ["Client", "EmailServers"]
    public = {n for n in vars(elegere_widgets.client) if not n.startswith("_")}
    modules = {
        "audit_events",
        "catalog",
        "deliveries",
        "email_servers",
        "messages",
        "workspaces",
        "annotations",
    }
    assert public - modules == {"Client", "EmailServers"}
