"""Certificate rollover in the Update form: the admin uploads the next certificate, tests it
(a failure says what to do in Azure), promotes it once it passed, or drops it; against the real
service and the local identity provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServer
from elegere_widgets.widgets import EmailServersPanel, RolloverCalls, ServerRow, UpdateServerView
from elegere_widgets.widgets.fields import upload_value
from tests.fixtures.graph_certs import CertAndKey, make_cert, rsa_key, to_pfx
from tests.fixtures.graph_servers import add_graph_server, graph_spec
from tests.fixtures.identity_provider import IdentityProvider, Tenant
from tests.fixtures.oauth import service_settings
from tests.widgets.conftest import run_now
from tests.widgets.support import shown

SALES = "ws_sales"
PASSWORD = "pfx-Widget-Current-1"
NEXT_PASSWORD = "pfx-Widget-Next-2"


@pytest.fixture
def service_settings_overrides(idp: IdentityProvider) -> dict[str, object]:
    return service_settings(idp)


@pytest.fixture(scope="module")
def cert() -> CertAndKey:
    return make_cert("elegere-widget-2026", key=rsa_key(60))


@pytest.fixture(scope="module")
def next_cert() -> CertAndKey:
    return make_cert("elegere-widget-2027", key=rsa_key(61), days=730)


def update_view(admin: Client, server: EmailServer) -> UpdateServerView:
    """The Update form as the panel opens it, with the rollover's calls bound to the server."""
    return UpdateServerView(
        server,
        on_save=lambda patch, version: None,
        on_cancel=lambda: None,
        on_reload=lambda: None,
        on_test=lambda spec, on_stage: admin.email_servers.test(SALES, spec, on_stage=on_stage),
        run_in_thread=run_now,
        rollover=RolloverCalls.bound(admin.email_servers, SALES, server.id),
    )


@pytest.fixture
def views() -> Iterator[list[UpdateServerView]]:
    made: list[UpdateServerView] = []
    yield made
    for view in made:
        view.close()


def test_upload_test_and_promote_the_next_certificate_in_update(
    admin: Client,
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    next_cert: CertAndKey,
    make_panel: Callable[..., EmailServersPanel],
) -> None:
    app = idp.add_app(tenant, certificates=[cert.cert])  # the next one not in Azure yet
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, cert, password=PASSWORD))
    panel = make_panel(admin)  # as an admin opens it: the row's Settings
    next(r for r in panel.table.rows if r.cells[0] == "Sales Graph").settings_button.click()
    view = panel.update_view
    assert view is not None
    rollover = view.rollover
    assert rollover is not None and shown(view, rollover)
    assert "Current certificate: CN=elegere-widget-2026" in rollover.current.value
    assert rollover.next.value == "No next certificate."
    assert not shown(view, rollover.test_button) and not shown(view, rollover.promote_button)
    assert rollover.upload_button.description == "Upload next certificate"
    # The settings form has no next-certificate rows: those are the rollover's.
    assert "next_certificate" not in view.form.fields

    rollover.upload_button.click()  # no file chosen
    assert "Choose the Next Certificate file" in rollover.rows["next_certificate"].error_text
    pfx = to_pfx(next_cert, password=NEXT_PASSWORD)
    rollover.fields["next_certificate"].value = upload_value("sales-2027.pfx", pfx)
    rollover.fields["next_certificate_password"].value = "wrong"
    rollover.upload_button.click()
    assert "does not open this .pfx" in rollover.rows["next_certificate_password"].error_text
    assert rollover.status.kind == "error"
    assert admin.email_servers.get(SALES, server.id).version == server.version  # nothing stored

    rollover.fields["next_certificate_password"].value = NEXT_PASSWORD
    rollover.upload_button.click()
    assert rollover.status.kind == "ok", rollover.status.text
    assert view.server.version == server.version + 1  # Save now works on the new version
    assert f"version {server.version + 1}" in view.title.value
    assert "Next certificate: CN=elegere-widget-2027" in rollover.next.value
    assert "not tested yet" in rollover.next.value
    assert rollover.fields["next_certificate_password"].value == ""  # no secret stays
    assert rollover.fields["next_certificate"].value == ()
    assert shown(view, rollover.test_button) and rollover.promote_button.disabled

    # Azure does not know the next certificate yet: the test says so, stage by stage.
    rollover.test_button.click()
    assert rollover.tester.status.kind == "error"
    assert "Next certificate test failed at Token" in rollover.tester.status.text
    assert "✓" in rollover.tester.stages.value and "Certificates &amp; secrets" in (
        rollover.tester.stages.value
    )
    assert rollover.promote_button.disabled
    assert "failed" in rollover.next.value

    app.certificates.append(next_cert.cert)  # the admin uploads the .cer in Azure
    rollover.test_button.click()
    assert rollover.tester.status.kind == "ok", rollover.tester.status.text
    assert rollover.tester.status.text.startswith("Next certificate test passed in")
    assert "elegere-stage-certificate" in rollover.tester.stages.value
    assert "elegere-stage-token" in rollover.tester.stages.value
    assert not rollover.promote_button.disabled
    assert "ready to promote" in rollover.next.value

    rollover.promote_button.click()
    assert rollover.status.kind == "ok", rollover.status.text
    assert "now signs in with CN=elegere-widget-2027" in rollover.status.text
    assert view.status.kind == "ok"
    assert "Current certificate: CN=elegere-widget-2027" in rollover.current.value
    assert rollover.next.value == "No next certificate."
    assert not shown(view, rollover.promote_button)
    stored = admin.email_servers.get(SALES, server.id)
    assert stored.version == view.server.version == server.version + 2
    info = stored.settings.certificate_info
    assert info is not None and "CN=elegere-widget-2027" in info.subject
    assert "CN=elegere-widget-2027" in view.form.rows["certificate"].note.value


def test_drop_the_next_certificate_and_a_password_server_has_no_rollover(
    admin: Client,
    idp: IdentityProvider,
    tenant: Tenant,
    cert: CertAndKey,
    next_cert: CertAndKey,
    views: list[UpdateServerView],
) -> None:
    app = idp.add_app(tenant, certificates=[cert.cert, next_cert.cert])
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, cert))
    held = admin.email_servers.upload_next_certificate(
        SALES, server.id, certificate=to_pfx(next_cert), version=server.version
    )
    view = update_view(admin, held)
    views.append(view)
    rollover = view.rollover
    assert rollover is not None
    assert rollover.upload_button.description == "Replace next certificate"
    assert shown(view, rollover.drop_button)
    rollover.drop_button.click()
    assert rollover.status.kind == "ok" and "dropped" in rollover.status.text
    assert rollover.next.value == "No next certificate."
    stored = admin.email_servers.get(SALES, server.id)
    assert stored.settings.next_certificate_info is None
    assert stored.version == view.server.version == held.version + 1

    password_server = update_view(admin, admin.email_servers.get(SALES, "srv_sales_mailer"))
    views.append(password_server)
    assert password_server.rollover is None


def test_the_certificate_column_shows_the_next_one_and_a_tested_one_takes_the_alarm_off(
    admin: Client,
    idp: IdentityProvider,
    tenant: Tenant,
    next_cert: CertAndKey,
    make_panel: Callable[..., EmailServersPanel],
) -> None:
    soon = make_cert(
        "elegere-widget-soon",
        key=rsa_key(62),
        not_after=datetime.now(UTC) + timedelta(days=20.5),
    )
    app = idp.add_app(tenant, certificates=[soon.cert, next_cert.cert])
    server = add_graph_server(admin, SALES, graph_spec(tenant, app, soon))
    admin.email_servers.upload_next_certificate(
        SALES, server.id, certificate=to_pfx(next_cert), version=server.version
    )
    next_end = f"{next_cert.cert.not_valid_after_utc:%Y-%m-%d}"

    def row(panel: EmailServersPanel) -> ServerRow:
        return next(r for r in panel.table.rows if r.cells[0] == "Sales Graph")

    held = row(make_panel(admin))
    assert held.cells[7] == f"⚠ expires in 20 days · next until {next_end} (not tested)"
    assert "elegere-cert-soon" in held.certificate_label.value
    assert "test it in Settings, then promote it" in (held.certificate_label.tooltip or "")
    assert held.cells[6].startswith("Expiring")

    assert admin.email_servers.test_next_certificate(SALES, server.id).ok
    ready = row(make_panel(admin))
    soon_end = f"{soon.cert.not_valid_after_utc:%Y-%m-%d}"
    assert ready.cells[7] == f"until {soon_end} · next until {next_end} (tested)"
    assert "elegere-cert-soon" not in ready.certificate_label.value  # no alarm: promote it
    assert "promote it in Settings" in (ready.certificate_label.tooltip or "")
    assert ready.cells[6].startswith("Healthy")
