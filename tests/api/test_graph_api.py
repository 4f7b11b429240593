"""Microsoft Graph servers through the API: test, add, update, send-test and delete, against
the local identity provider and Graph endpoint that verify the signed client assertion."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import threading
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from sqlalchemy import text

from elegere_widgets.client import Client
from elegere_widgets.connectivity.certificates import MAX_KDF_ROUNDS
from elegere_widgets.errors import InvalidSettings, TestRequired
from elegere_widgets.models import (
    EmailServer,
    EmailServerPatch,
    GraphServerSpec,
    Stage,
)
from elegere_widgets.server.store.tables import EmailServerRow
from tests.connectivity.test_graph import SCOPE_TO_MAILBOX, SEND_AS_DENIED
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_cer, to_pfx
from tests.fixtures.graph_servers import add_graph_server
from tests.fixtures.graph_servers import graph_spec as spec_with
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.oauth import service_settings
from tests.fixtures.processes import Serving, clean_env, serving
from tests.fixtures.service import RunningService

SALES = "ws_sales"
ADMIN = "admin@acme.example"
PFX_PASSWORD = "pfx-Marker-Passw0rd"
MAILBOX = SALES_MAILBOX


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-sales-app", key=rsa_key(30))


@pytest.fixture(scope="module")
def new_cert() -> CertAndKey:
    return make_cert("elegere-sales-app-2027", key=rsa_key(31))


@pytest.fixture
def app(idp: IdentityProvider, tenant: Tenant, cert: CertAndKey, new_cert: CertAndKey) -> App:
    return idp.add_app(tenant, certificates=[cert.cert, new_cert.cert])


@pytest.fixture
def service_settings_overrides(idp: IdentityProvider) -> dict[str, object]:
    return service_settings(idp)


def graph_spec(
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    *,
    password: str = PFX_PASSWORD,
    name: str = "Sales Graph",
) -> GraphServerSpec:
    return spec_with(tenant, app, cert, password=password, name=name)


def add(admin: Client, spec: GraphServerSpec) -> EmailServer:
    return add_graph_server(admin, SALES, spec)


def test_graph_server_is_tested_added_and_shows_its_certificate_not_the_secret(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, service: RunningService
) -> None:
    spec = graph_spec(tenant, app, cert)
    result = admin.email_servers.test(SALES, spec)
    assert [s.name for s in result.stages] == ["certificate", "token", "mailbox", "send_permission"]
    assert result.ok and result.test_token
    server = admin.email_servers.create(SALES, spec, test_token=result.test_token)
    assert server.type == "microsoft_graph" and server.key_setting == MAILBOX
    assert server.secrets_set == {"certificate": True, "certificate_password": True}
    info = server.settings.certificate_info  # type: ignore[union-attr]
    assert info is not None and "CN=elegere-sales-app" in info.subject
    assert info.thumbprint_sha256 == cert.cert.fingerprint(hashes.SHA256()).hex().upper()
    assert 300 < info.days_left <= 366
    r = httpx.get(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/{server.id}",
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    pfx_b64 = base64.b64encode(to_pfx(cert, password=PFX_PASSWORD)).decode()
    assert PFX_PASSWORD not in r.text and pfx_b64[:40] not in r.text
    with service.ctx.engine.connect() as conn:
        raw = str(
            conn.execute(text("SELECT * FROM email_servers WHERE id = :i"), {"i": server.id}).one()
        )
    assert PFX_PASSWORD not in raw and pfx_b64[:40] not in raw


def test_update_replaces_the_certificate_and_keeps_omitted_secrets(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, new_cert: CertAndKey
) -> None:
    server = add(admin, graph_spec(tenant, app, cert))
    renamed = admin.email_servers.update(
        SALES, server.id, EmailServerPatch(name="Sales Graph 2"), version=server.version
    )
    assert renamed.secrets_set == {"certificate": True, "certificate_password": True}
    updated = admin.email_servers.update(
        SALES,
        server.id,
        EmailServerPatch(settings={"certificate": to_pfx(new_cert, password=PFX_PASSWORD)}),
        version=renamed.version,
    )
    info = updated.settings.certificate_info  # type: ignore[union-attr]
    assert info is not None and "elegere-sales-app-2027" in info.subject
    # The stored password opened the new file; a test with the stored secrets still passes.
    retest = graph_spec(tenant, app, new_cert).model_copy(deep=True)
    retest.settings.certificate = None
    retest.settings.certificate_password = None
    retest.server_id = server.id
    assert admin.email_servers.test(SALES, retest).ok


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"certificate_password": "wrong"}, "certificate_password", "does not open"),
        ("cer", "certificate", ".pfx"),
        ({"certificate_alias": "nope"}, "certificate_alias", "alias"),
    ],
)
def test_a_bad_certificate_is_refused_when_saved_naming_the_field(
    admin: Client,
    tenant: Tenant,
    app: App,
    cert: CertAndKey,
    settings: object,
    field: str,
    words: str,
) -> None:
    server = add(admin, graph_spec(tenant, app, cert))
    patch = {"certificate": to_cer(cert)} if settings == "cer" else settings
    with pytest.raises(InvalidSettings) as info:
        admin.email_servers.update(
            SALES,
            server.id,
            EmailServerPatch(settings=patch),
            version=server.version,  # type: ignore[arg-type]
        )
    assert words in (info.value.for_field(field) or ""), info.value.field_errors
    assert admin.email_servers.get(SALES, server.id).version == server.version


def test_failed_graph_test_unlocks_nothing(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    unregistered = make_cert("not-uploaded", key=rsa_key(32))
    spec = graph_spec(tenant, app, unregistered)
    result = admin.email_servers.test(SALES, spec)
    assert not result.ok and result.test_token is None
    assert result.failed_stage is not None and result.failed_stage.name == "token"
    assert "AADSTS700027" in (result.failed_stage.code or "")
    with pytest.raises(TestRequired):
        admin.email_servers.create(SALES, spec, test_token="x.y")


def test_send_test_through_graph_is_accepted_not_delivered_and_recorded(
    admin: Client, idp: IdentityProvider, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    server = add(admin, graph_spec(tenant, app, cert))
    before = len(idp.sent)
    seen: list[Stage] = []
    outcome = admin.email_servers.send_test(
        SALES, server.id, to="someone@example.com", on_stage=seen.append
    )
    assert outcome.ok, outcome.detail
    assert "not yet delivered" in outcome.detail
    assert [s.name for s in seen] == ["certificate", "token", "send"] and seen == outcome.stages
    sent = idp.sent[before:]
    assert [(m.mailbox.lower(), m.to, m.subject) for m in sent] == [
        (MAILBOX, ["someone@example.com"], "eLegere test message")
    ]
    [delivery] = admin.deliveries.list(SALES, server_id=server.id)
    assert (delivery.status, delivery.kind) == ("accepted", "test")
    admin.email_servers.delete(SALES, server.id)
    assert server.id not in [s.id for s in admin.email_servers.list(SALES)]


def test_send_test_refused_as_the_mailbox_says_how_to_scope_the_app_to_it(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey
) -> None:
    server = add(admin, graph_spec(tenant, app, cert))
    # Since it was added, Exchange no longer lets the app send as the mailbox.
    tenant.mailboxes[MAILBOX].send_as_denied.add(app.client_id)
    outcome = admin.email_servers.send_test(SALES, server.id, to="someone@example.com")
    assert not outcome.ok
    hint = SCOPE_TO_MAILBOX.format(account=MAILBOX, client_id=app.client_id)
    assert outcome.detail == f"Failed at send: {SEND_AS_DENIED} {hint}"
    [delivery] = admin.deliveries.list(SALES, server_id=server.id)
    assert delivery.status == "failed"


def test_the_list_shows_each_server_exactly_as_getting_it_does(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, service: RunningService
) -> None:
    """The list is serialized from the stored documents without the model (for speed): it must
    answer what GET answers, for a Graph server with its certificate, an own SMTP server with
    its last test and an inherited one, and show no key a row holds beyond the view's."""
    graph = add(admin, graph_spec(tenant, app, cert))
    table = EmailServerRow.__table__
    stray = {
        "server": "smtp.sales.example",
        "port": 587,
        "use_ssl": True,
        "account": "mailer",
        "sender_address": "mailer@acme.example",
        "password": "stray-Marker-1",
    }
    with service.ctx.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == "srv_sales_mailer").values(settings=stray))
    headers = {"Authorization": f"Bearer {service.tokens['admin@acme.example']}"}
    base = f"{service.url}/api/v1/workspaces/{SALES}/email-servers"
    listed = httpx.get(base, headers=headers)
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    assert "stray-Marker-1" not in listed.text
    by_id = {s["id"]: s for s in listed.json()}
    assert {graph.id, "srv_sales_mailer", "srv_acme_relay"} <= set(by_id)
    assert by_id["srv_acme_relay"]["inherited"] is True
    assert by_id["srv_sales_mailer"]["last_test"] is not None
    assert by_id[graph.id]["settings"]["certificate_info"]["days_left"] > 300
    for ident, shown in by_id.items():
        got = httpx.get(f"{base}/{ident}", headers=headers)
        assert got.status_code == 200
        assert shown == got.json(), ident
    assert "password" not in by_id["srv_sales_mailer"]["settings"]


def _serve_in_another_process(
    service: RunningService,
) -> contextlib.AbstractContextManager[Serving]:
    """A second ``elegere serve`` on the same store and key: a process of its own, so that
    its CPU-bound certificate load holds neither this process's interpreter nor its threads."""
    settings = service.ctx.settings
    env = clean_env(
        ELEGERE_DATA_DIR=str(settings.data_dir),
        ELEGERE_DATABASE_URL=settings.resolved_database_url(),
    )
    return serving(None, env)


def _write_lock_frees_while(patching: threading.Thread, service: RunningService) -> bool | None:
    """On SQLite, whether another connection could take the write lock while the PATCH was
    still running (None on other databases). A load inside the PATCH's write transaction keeps
    the lock from the request's start to its end; whatever the machine's load, no attempt
    then succeeds."""
    url = service.ctx.engine.url
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    while patching.is_alive():
        conn = sqlite3.connect(url.database, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return patching.is_alive()
        except sqlite3.OperationalError:
            time.sleep(0.02)
        finally:
            conn.close()
    return False


def test_the_certificate_is_loaded_outside_the_write_transaction(
    admin: Client, tenant: Tenant, app: App, cert: CertAndKey, service: RunningService
) -> None:
    """A .pfx whose key derivation takes long (yet under the cap) is loaded while other
    writes to the store go on: on SQLite, a load inside the PATCH's write transaction
    would hold the store's one write lock, and the rename below would wait for it."""
    server = add(admin, graph_spec(tenant, app, cert))
    # Both encrypted parts at the most rounds the cap lets through (each is counted twice,
    # the MAC once per password tried): most of a second of key derivation, or more.
    rounds = (MAX_KDF_ROUNDS - 4 * 2048) // 4 - 1000
    slow = to_pfx(cert, password=PFX_PASSWORD, legacy=True, rounds=rounds)
    other = next(s for s in admin.email_servers.list(SALES) if s.name == "Sales Mailer")
    with (
        _serve_in_another_process(service) as second,
        Client(second.url, service.tokens[ADMIN], timeout=60) as elsewhere,
    ):
        patched: list[EmailServer] = []
        patching = threading.Thread(
            target=lambda: patched.append(
                elsewhere.email_servers.update(
                    SALES,
                    server.id,
                    EmailServerPatch(settings={"certificate": slow}),
                    version=server.version,
                )
            )
        )
        patching.start()
        time.sleep(0.2)  # the other process reads, then loads the certificate
        lock_was_free = _write_lock_frees_while(patching, service)
        renamed = admin.email_servers.update(
            SALES, other.id, EmailServerPatch(name="Sales Mailer 2"), version=other.version
        )
        patching.join(60)
    assert renamed.name == "Sales Mailer 2"
    if lock_was_free is not None:  # SQLite: the one write lock tells
        assert lock_was_free, "the certificate upload held the store's write lock while loading"
    assert patched and patched[0].settings.certificate_info is not None  # type: ignore[union-attr]
    assert admin.email_servers.get(SALES, other.id).name == "Sales Mailer 2"
