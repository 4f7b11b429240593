"""A passing test adds one server; a test writes only the record of the server it tested, as
stored, from that server's own scope; a stored secret goes out only with its stored settings."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings, ServiceError, TestRequired
from elegere_widgets.server.seed import ORG_ID
from tests.conftest import ADMIN
from tests.fixtures.certs import Pki
from tests.fixtures.processes import clean_env, elegere, serving, token_for
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

SALES = "ws_sales"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


def _create(service: RunningService, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers",
        json=body,
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )


def test_a_receipt_adds_one_server(admin: Client, peer: SmtpPeer) -> None:
    token = admin.email_servers.test(SALES, peer.spec()).test_token
    assert token
    admin.email_servers.create(SALES, peer.spec(name="First relay"), test_token=token)
    with pytest.raises(TestRequired) as info:
        admin.email_servers.create(SALES, peer.spec(name="Second relay"), test_token=token)
    assert "run Test Connection again" in str(info.value)
    names = [s.name for s in admin.email_servers.list(SALES)]
    assert "First relay" in names and "Second relay" not in names


def test_a_refused_create_does_not_spend_the_receipt(admin: Client, peer: SmtpPeer) -> None:
    token = admin.email_servers.test(SALES, peer.spec()).test_token
    assert token
    with pytest.raises(ServiceError):  # the name is taken: nothing added, nothing spent
        admin.email_servers.create(SALES, peer.spec(name="Sales Mailer"), test_token=token)
    assert admin.email_servers.create(SALES, peer.spec(), test_token=token).name == "Sales relay"


def test_racing_creates_with_one_receipt_add_one_server(
    admin: Client, peer: SmtpPeer, service: RunningService
) -> None:
    token = admin.email_servers.test(SALES, peer.spec()).test_token
    assert token
    statuses: list[int] = []
    start = threading.Barrier(4)

    def create(i: int) -> None:
        start.wait()
        body = {**peer.spec(name=f"Racer {i}").to_wire(), "test_token": token}
        statuses.append(_create(service, body).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 428, 428, 428]
    assert sum(s.name.startswith("Racer") for s in admin.email_servers.list(SALES)) == 1


def test_racing_creates_with_one_receipt_on_two_processes_add_one_server(
    pg_database: str, pki: Pki, peer: SmtpPeer, tmp_path: Path
) -> None:
    """Two `elegere serve` replicas on one PostgreSQL store: a receipt from one is spent by
    the one create it allows, whichever replica that create reaches."""
    env = clean_env(
        ELEGERE_DATABASE_URL=pg_database,
        ELEGERE_SECRET_KEY=Fernet.generate_key().decode(),  # what every replica shares
        ELEGERE_SMTP_CA_FILE=str(pki.ca.cert_path),
        ELEGERE_EGRESS_ALLOW="127.0.0.0/8",
        ELEGERE_EGRESS_ALLOW_PORTS=str(peer.port),
    )
    elegere("seed", "--demo", cwd=tmp_path, env=env, check=True)
    api_token = token_for(ADMIN, tmp_path, env)
    headers = {"Authorization": f"Bearer {api_token}"}
    per_process = 4
    with serving(tmp_path, env) as one, serving(tmp_path, env) as two:
        with Client(one.url, api_token, timeout=30) as admin:
            before = len(admin.email_servers.list(SALES))
            receipt = admin.email_servers.test(SALES, peer.spec()).test_token
        assert receipt
        statuses: list[int] = []
        start = threading.Barrier(2 * per_process)

        def create(url: str, i: int) -> None:
            body = {**peer.spec(name=f"Racer {i}").to_wire(), "test_token": receipt}
            start.wait()
            r = httpx.post(
                f"{url}/api/v1/workspaces/{SALES}/email-servers",
                json=body,
                headers=headers,
                timeout=30,
            )
            statuses.append(r.status_code)

        urls = [one.url, two.url] * per_process
        threads = [threading.Thread(target=create, args=(u, i)) for i, u in enumerate(urls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        listed = httpx.get(
            f"{two.url}/api/v1/workspaces/{SALES}/email-servers", headers=headers
        ).json()
    assert sorted(statuses) == [201] + [428] * (2 * per_process - 1), statuses
    assert len(listed) == before + 1
    assert sum(s["name"].startswith("Racer") for s in listed) == 1


@pytest.mark.parametrize(
    "token",
    ["tökén", "abc.tökén", "garbage", "gAAAAA", "a.b", "%%%", "truncated"],
)
def test_a_malformed_receipt_is_428(
    admin: Client, peer: SmtpPeer, service: RunningService, token: str
) -> None:
    if token == "truncated":
        real = admin.email_servers.test(SALES, peer.spec()).test_token
        assert real
        token = real[: len(real) // 2]
    r = _create(service, {**peer.spec().to_wire(), "test_token": token})
    assert r.status_code == 428, r.text
    assert "Test Connection" in r.json()["detail"]


# ---------------------------------------------------------------- records and stored secrets


def _org_server_at(delegate: Client, peer: SmtpPeer) -> str:
    spec = peer.spec(name="Org relay")
    token = delegate.organization_email_servers.test(ORG_ID, spec).test_token
    assert token
    return delegate.organization_email_servers.create(ORG_ID, spec, test_token=token).id


def test_a_workspace_test_of_an_inherited_server_never_writes_its_record(
    admin: Client, delegate: Client, peer: SmtpPeer
) -> None:
    server_id = _org_server_at(delegate, peer)
    before = delegate.organization_email_servers.get(ORG_ID, server_id)
    retest = peer.spec(name="Org relay", password=None).model_copy(update={"server_id": server_id})
    assert admin.email_servers.test(SALES, retest).ok
    after = delegate.organization_email_servers.get(ORG_ID, server_id)
    assert after.last_test == before.last_test


def test_a_test_of_other_settings_never_writes_the_stored_servers_record(
    admin: Client, peer: SmtpPeer
) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    other = peer.spec(password="wrong").model_copy(update={"server_id": server.id})
    assert not admin.email_servers.test(SALES, other).ok
    after = admin.email_servers.get(SALES, server.id)
    assert after.last_test == server.last_test and after.last_test and after.last_test.ok


def test_a_test_of_the_stored_settings_writes_the_record(admin: Client, peer: SmtpPeer) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    peer.stop()
    retest = peer.spec(password=None).model_copy(update={"server_id": server.id})
    assert not admin.email_servers.test(SALES, retest).ok
    after = admin.email_servers.get(SALES, server.id)
    assert after.last_test and not after.last_test.ok


@pytest.mark.parametrize("change", ["sender_address", "use_ssl"])
def test_a_stored_secret_goes_only_with_its_stored_sender_and_tls_mode(
    admin: Client, delegate: Client, peer: SmtpPeer, change: str
) -> None:
    server_id = _org_server_at(delegate, peer)
    retest = peer.spec(name="Org relay", password=None).model_copy(
        update={"server_id": server_id}, deep=True
    )
    if change == "sender_address":
        retest.settings.sender_address = "someone-else@acme.example"
    else:
        retest.settings.use_ssl = not retest.settings.use_ssl
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.test(SALES, retest)
    assert "Enter the Password again" in (info.value.for_field("password") or "")
    assert peer.messages == []
