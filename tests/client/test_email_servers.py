"""What the email server calls put on the wire: secrets in bodies (only there), If-Match.

MockTransport here records the request the client builds; what the service does with it is
for the end-to-end tests.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import InternalError, ServiceUnavailable
from elegere_widgets.models import (
    ConnectionTestResult,
    EmailServer,
    EmailServerPatch,
    GraphServerSpec,
    GraphSettings,
    SmtpServerSpec,
    SmtpSettings,
    Stage,
)

from .support import FakeService, server_json

PASSWORD = "s3cr3t-Pa55word"
CERT = b"\x30\x82\x0a\x01 pretend pkcs12 bytes"
CERT_PASSWORD = "pfx-pa55"
TEST_TOKEN = "receipt.abc.def"

SMTP = SmtpServerSpec(
    name="Sales relay",
    settings=SmtpSettings(
        server="mail.example.com",
        port=587,
        account="sales",
        sender_address="sales@example.com",
        password=PASSWORD,
    ),
)
GRAPH = GraphServerSpec(
    name="Sales Graph",
    settings=GraphSettings(
        account="sales@contoso.com",
        tenant_id="contoso.onmicrosoft.com",
        client_id="00000000-0000-0000-0000-000000000001",
        certificate=CERT,
        certificate_password=CERT_PASSWORD,
    ),
)
PASSED = {
    "ok": True,
    "server_type": "smtp",
    "elapsed_ms": 40,
    "stages": [{"name": "connect", "ok": True, "elapsed_ms": 3, "detail": "ok"}],
    "test_token": TEST_TOKEN,
}


def body_of(request: httpx.Request) -> dict[str, object]:
    body = json.loads(request.content)
    assert isinstance(body, dict)
    return body


def test_secrets_go_in_the_wire_body_and_never_in_the_repr(
    client: Client, fake: FakeService
) -> None:
    fake.answer(httpx.Response(200, json=PASSED))

    result = client.email_servers.test("ws_1", SMTP)

    assert isinstance(result, ConnectionTestResult) and result.test_token == TEST_TOKEN
    request = fake.last
    assert (request.method, request.url.path) == (
        "POST",
        "/api/v1/workspaces/ws_1/email-servers/test",
    )
    body = body_of(request)
    assert body["type"] == "smtp" and body["name"] == "Sales relay"
    assert body["settings"] == {
        "server": "mail.example.com",
        "port": 587,
        "use_ssl": False,
        "account": "sales",
        "sender_address": "sales@example.com",
        "authentication": "password",
        "password": PASSWORD,
    }
    assert "test_token" not in body
    for text in (repr(SMTP), str(SMTP), repr(result)):
        assert PASSWORD not in text and TEST_TOKEN not in text


def test_graph_certificate_travels_as_base64(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json={**PASSED, "server_type": "microsoft_graph"}))

    client.email_servers.test("ws_1", GRAPH)

    settings = body_of(fake.last)["settings"]
    assert isinstance(settings, dict)
    assert base64.b64decode(settings["certificate"]) == CERT
    assert settings["certificate_password"] == CERT_PASSWORD
    text = repr(GRAPH)
    assert CERT_PASSWORD not in text and base64.b64encode(CERT).decode() not in text


def test_a_test_may_reuse_stored_secrets(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=PASSED))
    spec = SMTP.model_copy(update={"server_id": "srv_1"})

    client.email_servers.test("ws_1", spec)

    assert body_of(fake.last)["server_id"] == "srv_1"


def ndjson(*items: object) -> httpx.Response:
    body = "".join(json.dumps(item) + "\n" for item in items).encode()
    return httpx.Response(200, content=body, headers={"Content-Type": "application/x-ndjson"})


def test_on_stage_asks_for_the_stream_and_gets_each_stage_then_the_result(
    client: Client, fake: FakeService
) -> None:
    stage = PASSED["stages"][0]  # type: ignore[index]
    fake.answer(ndjson({"stage": stage}, {"result": PASSED}))
    seen: list[Stage] = []

    result = client.email_servers.test("ws_1", SMTP, on_stage=seen.append)

    assert "application/x-ndjson" in fake.last.headers["accept"]
    assert result.test_token == TEST_TOKEN and seen == result.stages


def test_on_stage_with_a_service_that_does_not_stream_still_gets_the_result(
    client: Client, fake: FakeService
) -> None:
    fake.answer(httpx.Response(200, json=PASSED))
    seen: list[Stage] = []
    assert client.email_servers.test("ws_1", SMTP, on_stage=seen.append).ok
    assert seen == []


def test_a_stream_that_ends_without_a_result_is_service_unavailable(
    client: Client, fake: FakeService
) -> None:
    stage = PASSED["stages"][0]  # type: ignore[index]
    fake.answer(ndjson({"stage": stage}), ndjson({"stage": stage}, "not a line"))
    seen: list[Stage] = []
    with pytest.raises(ServiceUnavailable, match="ended before its result arrived"):
        client.email_servers.test("ws_1", SMTP, on_stage=seen.append)
    assert [s.name for s in seen] == ["connect"]
    with pytest.raises(InternalError, match="does not understand"):
        client.email_servers.test("ws_1", SMTP, on_stage=seen.append)


def test_create_sends_the_spec_and_the_test_token(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(201, json=server_json(version=1), headers={"ETag": '"1"'}))
    spec = SMTP.model_copy(update={"server_id": "srv_0"})

    server = client.email_servers.create("ws_1", spec, test_token=TEST_TOKEN)

    assert isinstance(server, EmailServer) and server.version == 1
    body = body_of(fake.last)
    assert body["test_token"] == TEST_TOKEN
    assert "server_id" not in body
    assert body["settings"]["password"] == PASSWORD  # type: ignore[index]
    assert fake.last.url.path == "/api/v1/workspaces/ws_1/email-servers"


def test_get_keeps_the_etag_version(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=server_json(version=3), headers={"ETag": 'W/"5"'}))

    server = client.email_servers.get("ws_1", "srv_1")

    assert server.version == 5


def test_update_sends_if_match_and_only_the_patch(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(200, json=server_json(version=4), headers={"ETag": '"4"'}))
    patch = EmailServerPatch(settings={"port": 465, "use_ssl": True})

    server = client.email_servers.update("ws_1", "srv_1", patch, version=3)

    request = fake.last
    assert request.method == "PATCH"
    assert request.url.path == "/api/v1/workspaces/ws_1/email-servers/srv_1"
    assert request.headers["If-Match"] == '"3"'
    assert body_of(request) == {"settings": {"port": 465, "use_ssl": True}}
    assert server.version == 4


def test_delete_with_and_without_replacement(client: Client, fake: FakeService) -> None:
    fake.answer(httpx.Response(204), httpx.Response(204))

    client.email_servers.delete("ws_1", "srv_1")
    client.email_servers.delete("ws_1", "srv_1", replacement_id="srv 2")

    first, second = fake.requests
    assert first.method == "DELETE" and first.url.query == b""
    assert second.url.params["replacement_id"] == "srv 2"


def test_usages_and_send_test(client: Client, fake: FakeService) -> None:
    fake.answer(
        httpx.Response(200, json=[{"kind": "custom_action", "id": "ca_1", "name": "Quote"}]),
        httpx.Response(200, json={"ok": True, "detail": "250 OK", "delivery_id": "dl_1"}),
    )

    usages = client.email_servers.usages("ws_1", "srv_1")
    sent = client.email_servers.send_test("ws_1", "srv_1", to="ann@example.com")

    assert [u.id for u in usages] == ["ca_1"]
    assert sent.ok and sent.delivery_id == "dl_1"
    assert fake.last.url.path == "/api/v1/workspaces/ws_1/email-servers/srv_1/send-test"
    assert body_of(fake.last) == {"to": "ann@example.com"}


@pytest.mark.parametrize("attr", ["custom_actions", "scheduler_jobs"])
def test_catalog_lists(client: Client, fake: FakeService, attr: str) -> None:
    row = {"id": "x_1", "name": "Send quote", "email_server_id": "srv_1"}
    fake.answer(httpx.Response(200, json=[row]))

    items = getattr(client, attr).list("ws_1")

    assert [i.email_server_id for i in items] == ["srv_1"]
    assert fake.last.url.path == f"/api/v1/workspaces/ws_1/{attr.replace('_', '-')}"


def test_the_rollover_calls_on_the_wire(client: Client, fake: FakeService) -> None:
    fake.answer(
        httpx.Response(200, json=server_json(version=4), headers={"ETag": '"4"'}),
        httpx.Response(200, json={**PASSED, "test_token": None}),
        httpx.Response(200, json=server_json(version=5), headers={"ETag": '"5"'}),
        httpx.Response(200, json=server_json(version=6), headers={"ETag": '"6"'}),
    )

    held = client.email_servers.upload_next_certificate(
        "ws_1", "srv_1", certificate=CERT, password=CERT_PASSWORD, version=3
    )
    tested = client.email_servers.test_next_certificate("ws_1", "srv_1")
    promoted = client.email_servers.promote_next_certificate("ws_1", "srv_1", version=4)
    dropped = client.email_servers.drop_next_certificate("ws_1", "srv_1", version=5)

    upload, test, promote, drop = fake.requests
    assert (upload.method, upload.headers["If-Match"]) == ("PATCH", '"3"')
    assert body_of(upload) == {
        "settings": {
            "next_certificate": base64.b64encode(CERT).decode(),
            "next_certificate_password": CERT_PASSWORD,
        }
    }
    next_path = "/api/v1/workspaces/ws_1/email-servers/srv_1/next-certificate"
    assert (test.method, test.url.path, test.content) == ("POST", f"{next_path}/test", b"")
    assert (promote.method, promote.url.path) == ("POST", f"{next_path}/promote")
    assert promote.headers["If-Match"] == '"4"'
    assert (drop.method, drop.url.path, drop.headers["If-Match"]) == ("DELETE", next_path, '"5"')
    assert (held.version, tested.ok, promoted.version, dropped.version) == (4, True, 5, 6)
    with pytest.raises(TypeError, match="certificate file's content"):
        client.email_servers.upload_next_certificate(
            "ws_1",
            "srv_1",
            certificate="not bytes",
            version=3,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="version must be the server's version"):
        client.email_servers.promote_next_certificate("ws_1", "srv_1", version=True)
