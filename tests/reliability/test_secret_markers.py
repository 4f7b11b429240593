"""One sweep for leaks: servers of both types are added through the API with known marker
secrets, every endpoint a Workspace Admin can call is exercised, and the markers must show
up in no response body, client repr, audit frame, log record (at DEBUG) or CLI output, nor
in clear in the store's rows or the SQLite file.

SQLite only: the file's bytes are part of what is checked, and the API is the same on both.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from elegere_widgets import audit
from elegere_widgets.client import Client
from elegere_widgets.models import (
    EmailServerPatch,
    GraphServerSpec,
    GraphSettings,
)
from tests.fixtures.certs import Pki, make_pki
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, IdentityProvider, Tenant
from tests.fixtures.processes import clean_env, elegere
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SALES = "ws_sales"
ADMIN = "admin@acme.example"
MAILBOX = SALES_MAILBOX

SMTP_PASSWORD = "smtp-MARKER-a61f0c"
SMTP_PASSWORD_2 = "smtp-MARKER-2-d93e47"
PFX_PASSWORD = "pfx-MARKER-5b72e8"
PFX_PASSWORD_2 = "pfx-MARKER-2-0c14aa"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def service_settings_overrides(oauth_service_settings: dict[str, object]) -> dict[str, object]:
    # The service trusts the test CA for SMTP and reaches Graph at the local provider.
    return oauth_service_settings


@pytest.fixture
def peer(pki: Pki) -> Iterator[SmtpPeer]:
    with SmtpPeer("starttls", pki=pki, password=SMTP_PASSWORD) as running:
        yield running


@pytest.fixture
def cert() -> CertAndKey:
    return make_cert("elegere-markers-app", key=rsa_key(40))


@pytest.fixture
def graph_app(idp: IdentityProvider, cert: CertAndKey) -> tuple[Tenant, App]:
    tenant = idp.add_tenant(domains=["markers.onmicrosoft.com"])
    idp.add_mailbox(tenant, MAILBOX, display_name="Sales")
    return tenant, idp.add_app(tenant, certificates=[cert.cert])


def markers_of(*pfx_files: bytes) -> list[str]:
    """Every secret, and pieces of each .pfx in base64: its first bytes and its random tail."""
    found = [SMTP_PASSWORD, SMTP_PASSWORD_2, PFX_PASSWORD, PFX_PASSWORD_2]
    for pfx in pfx_files:
        b64 = base64.b64encode(pfx).decode()
        # From offset 99 (a multiple of 3) the piece encodes as it does inside the whole.
        found += [b64[:40], b64[-60:-20], base64.b64encode(pfx[99:159]).decode()]
    return found


def assert_clean(what: str, haystack: str, markers: list[str]) -> None:
    for marker in markers:
        assert marker not in haystack, f"a secret marker ({marker[:12]}...) leaked into {what}"


@pytest.mark.slow
def test_no_secret_marker_leaks_anywhere(
    service: RunningService,
    database_url: str,
    tmp_path: Path,
    peer: SmtpPeer,
    graph_app: tuple[Tenant, App],
    cert: CertAndKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant, app = graph_app
    pfx, pfx_2 = to_pfx(cert, password=PFX_PASSWORD), to_pfx(cert, password=PFX_PASSWORD_2)
    markers = markers_of(pfx, pfx_2)
    smtp_spec = peer.spec("Marker relay")
    graph_spec = GraphServerSpec(
        name="Marker Graph",
        settings=GraphSettings(
            account=MAILBOX,
            tenant_id=tenant.id,
            client_id=app.client_id,
            certificate=pfx,
            certificate_password=PFX_PASSWORD,
        ),
    )
    reprs: list[str] = [repr(smtp_spec), str(smtp_spec), repr(graph_spec), str(graph_spec)]
    bodies: list[str] = []
    sent_bodies: list[bytes] = []
    hooks = {
        "request": [lambda r: sent_bodies.append(r.read())],
        "response": [lambda r: (r.read(), bodies.append(r.text))],
    }

    with httpx.Client(event_hooks=hooks) as http:  # type: ignore[arg-type]
        client = Client(service.url, service.tokens[ADMIN], http_client=http)
        reprs.append(repr(client))

        # Add both, each after a passing connection test.
        servers = []
        for spec in (smtp_spec, graph_spec):
            result = client.email_servers.test(SALES, spec)
            assert result.ok, result.stages
            servers.append(
                client.email_servers.create(SALES, spec, test_token=result.test_token or "")
            )
            reprs += [repr(result), repr(servers[-1])]
        smtp, graph = servers
        assert smtp.secrets_set == {"password": True}
        assert graph.secrets_set == {"certificate": True, "certificate_password": True}

        # Every read a Workspace Admin can make.
        reads: list[object] = [
            client.me(),
            client.workspaces.list(),
            client.workspaces.get(SALES),
            client.email_servers.list(SALES),
            client.custom_actions.list(SALES),
            client.scheduler_jobs.list(SALES),
        ]
        for server in (smtp, graph):
            reads += [
                client.email_servers.get(SALES, server.id),
                client.email_servers.usages(SALES, server.id),
            ]

        # Tests with the stored secrets, and real test messages through both.
        for spec, server in ((smtp_spec, smtp), (graph_spec, graph)):
            stored = spec.model_copy(deep=True)
            for field in ("password", "certificate", "certificate_password"):
                if hasattr(stored.settings, field):
                    setattr(stored.settings, field, None)
            stored.server_id = server.id
            retest = client.email_servers.test(SALES, stored)
            assert retest.ok, retest.stages
            sent = client.email_servers.send_test(SALES, server.id, to="someone@example.com")
            assert sent.ok, sent.detail
            reads += [retest, sent]
        assert len(peer.messages) == 1

        # New secrets through updates; the SMTP peer now refuses the stored password, so a
        # retest fails at authenticate, and its detail must not repeat the new one either.
        smtp = client.email_servers.update(
            SALES,
            smtp.id,
            EmailServerPatch(settings={"password": SMTP_PASSWORD_2}),
            version=smtp.version,
        )
        graph = client.email_servers.update(
            SALES,
            graph.id,
            EmailServerPatch(
                settings={"certificate": pfx_2, "certificate_password": PFX_PASSWORD_2}
            ),
            version=graph.version,
        )
        refused = smtp_spec.model_copy(deep=True)
        refused.settings.password = None
        refused.server_id = smtp.id
        failed = client.email_servers.test(SALES, refused)
        assert not failed.ok and failed.failed_stage is not None
        assert failed.failed_stage.name == "authenticate"
        failed_send = client.email_servers.send_test(SALES, smtp.id, to="someone@example.com")
        assert not failed_send.ok
        reads += [smtp, graph, failed, failed_send]

        # Deliveries as JSON pages and as the CSV export, and the audit trail.
        reads += list(client.deliveries.list(SALES, page_size=2))
        with client.deliveries.export(SALES) as csv_file:
            exported = csv_file.read().decode()
        events = list(client.audit_events.list(SALES, page_size=3))
        reads += events
        reprs += [repr(x) for x in reads] + [str(x) for x in reads]

        # The audit frames, as a notebook would show them and as files would keep them.
        frames = {
            "servers_frame": audit.servers_frame(client),
            "usages_frame": audit.usages_frame(client),
            "deliveries_frame": audit.deliveries_frame(client),
            "audit_events_frame": audit.audit_events_frame(client),
        }
        # Last, a delete with a replacement (the Graph server takes over nothing; fine).
        client.email_servers.delete(SALES, graph.id, replacement_id=smtp.id)
        frames["audit_events_after_delete"] = audit.audit_events_frame(client, [SALES])

    # The trail has the changes, by field name only.
    trail = frames["audit_events_after_delete"]
    mine = trail[trail["server_id"].isin([smtp.id, graph.id])]
    assert set(mine["action"].astype(str)) == {"create", "test", "send_test", "update", "delete"}
    updates = mine[mine["action"] == "update"].set_index("server_id")["changed_fields"]
    assert updates.to_dict() == {
        smtp.id: "password",
        graph.id: "certificate,certificate_password",
    }
    assert len(frames["servers_frame"]) >= 4 and len(frames["deliveries_frame"]) >= 4

    # The CLI of the same store (same data dir, so the same key).
    cli = elegere(
        "token",
        "create",
        "--user",
        ADMIN,
        "--database",
        database_url,
        cwd=tmp_path,
        env=clean_env(ELEGERE_DATA_DIR=str(tmp_path / "data")),
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith("elg_")

    # The control: the markers are what the requests carried, in the same forms (the
    # passwords as text, the .pfx files in base64), so a leak would be found.
    on_the_wire = b"\n".join(sent_bodies).decode()
    assert [marker for marker in markers if marker not in on_the_wire] == []
    names = {record.name.split(".")[0] for record in caplog.records}
    assert {"elegere_widgets", "httpx"} <= names, names

    # Now nothing anywhere may carry a marker.
    assert len(bodies) >= 30
    for body in bodies:
        assert_clean("a response body", body, markers)
    assert exported.count("\n") >= 5
    assert_clean("the deliveries CSV export", exported, markers)
    for shown in reprs:
        assert_clean("a client object's repr or str", shown, markers)
    for name, frame in frames.items():
        assert not frame.empty, name
        for rendered in (frame.to_csv(), repr(frame), repr(frame.to_dict("records"))):
            assert_clean(f"the {name}", rendered, markers)
    assert_clean("the CLI output", cli.stdout + cli.stderr, markers)
    assert len(caplog.records) > 0
    assert_clean("the log output", caplog.text, markers)
    for record in caplog.records:
        assert_clean(f"a log record of {record.name}", record.getMessage(), markers)
        assert_clean(f"a log record of {record.name}", repr(record.args), markers)
        assert_clean(f"a log record of {record.name}", record.exc_text or "", markers)

    # At rest: the rows as the database has them, and the SQLite files' bytes.
    with service.ctx.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM email_servers")).all()
        trail_rows = conn.execute(text("SELECT * FROM audit_events")).all()
    assert smtp.id in str(rows) and len(trail_rows) == len(trail)
    assert_clean("the email_servers rows", str(rows), markers)
    assert_clean("the audit_events rows", str(trail_rows), markers)
    db_file = Path(database_url.removeprefix("sqlite:///"))
    files = [p for p in db_file.parent.iterdir() if p.name.startswith(db_file.name)]
    assert db_file in files
    raw_markers = [m.encode() for m in markers] + [pfx[99:159], pfx_2[99:159], pfx[-40:]]
    for path in files:
        data = path.read_bytes()
        for marker in raw_markers:
            assert marker not in data, f"a secret marker is in clear in {path.name}"
