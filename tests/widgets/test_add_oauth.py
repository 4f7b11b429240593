"""Add an SMTP server with OAuth 2.0 (Microsoft 365) through the wizard: the Authentication
choice swaps the Password row for the app registration's rows; the test signs in at the local
identity provider and AUTH XOAUTH2 at a peer that verifies the token."""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets
import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch, SmtpServerSpec
from elegere_widgets.widgets import EmailServersPanel
from elegere_widgets.widgets.fields import upload_value
from elegere_widgets.widgets.forms import SmtpForm
from elegere_widgets.widgets.state import TestStatus
from tests.fixtures.graph_certs import CertAndKey, to_pfx
from tests.fixtures.identity_provider import SALES_MAILBOX, App, Tenant
from tests.fixtures.oauth import OAUTH_CERT_CN, PFX_PASSWORD, oauth_settings
from tests.fixtures.smtp import PASSWORD, SmtpPeer
from tests.widgets.support import shown

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


@pytest.fixture
def service_settings_overrides(oauth_service_settings: dict[str, object]) -> dict[str, object]:
    return oauth_service_settings


def visible(form: SmtpForm) -> list[str]:
    return [form.rows[n].spec.label for n in form.fields if shown(form, form.rows[n])]


def test_add_an_oauth_smtp_server_through_the_wizard(
    admin: Client,
    make_panel: MakePanel,
    xoauth2_peer: SmtpPeer,
    tenant: Tenant,
    oauth_app: App,
    oauth_cert: CertAndKey,
) -> None:
    panel = make_panel(admin)
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    wizard.next_button.click()
    form = wizard.form
    assert isinstance(form, SmtpForm)
    choice = form.fields["authentication"]
    assert isinstance(choice, ipywidgets.Dropdown)
    assert list(choice.options) == [
        ("Password", "password"),
        ("OAuth 2.0 (Microsoft 365)", "oauth2"),
    ]
    assert "Password" in visible(form) and "Tenant ID" not in visible(form)

    f = form.fields
    f["name"].value = "Sales 365"
    f["server"].value = xoauth2_peer.host
    f["use_ssl"].value = True
    f["port"].value = xoauth2_peer.port
    f["account"].value = SALES_MAILBOX
    f["sender_address"].value = SALES_MAILBOX
    f["password"].value = "typed before switching"
    choice.value = "oauth2"
    assert visible(form)[-6:] == [
        "Authentication",
        "Tenant ID",
        "Client ID",
        "Certificate",
        "Certificate Alias",
        "Certificate Password",
    ]
    assert "Password" not in visible(form)
    f["tenant_id"].value = tenant.id
    f["client_id"].value = oauth_app.client_id
    f["certificate"].value = upload_value("smtp-app.pfx", to_pfx(oauth_cert, password=PFX_PASSWORD))
    f["certificate_password"].value = PFX_PASSWORD
    assert form.errors == {}
    assert "password" not in form.settings_values()  # the hidden row is not sent
    wizard.next_button.click()

    assert wizard.step == "test"
    wizard.test_button.click()
    assert wizard.test_status is TestStatus.PASSED, wizard.tester.stages.value
    for title in ("Certificate", "Token", "Authenticate"):
        assert f"<b>{title}</b>" in wizard.tester.stages.value
    wizard.next_button.click()
    assert wizard.step == "summary"
    rows = dict(form.summary_rows())
    assert rows["Authentication"] == "OAuth 2.0 (Microsoft 365)"
    assert rows["Certificate"] == "set" and "Password" not in rows
    assert PFX_PASSWORD not in wizard.summary.value
    wizard.complete_button.click()
    assert panel.wizard is None and "Added 'Sales 365'" in panel.status.text

    stored = {s.name: s for s in admin.email_servers.list(SALES)}["Sales 365"]
    assert stored.secrets_set == {"certificate": True, "certificate_password": True}
    assert stored.settings.authentication == "oauth2"  # type: ignore[union-attr]
    assert xoauth2_peer.auth_attempts == ["XOAUTH2"]
    assert f["certificate_password"].value == ""  # no secret left in a widget


def test_a_stored_oauth_server_opens_with_its_rows_and_its_certificate_note(
    admin: Client, xoauth2_peer: SmtpPeer, tenant: Tenant, oauth_app: App, oauth_cert: CertAndKey
) -> None:
    oauth = SmtpServerSpec(
        name="Sales 365", settings=oauth_settings(xoauth2_peer, tenant, oauth_app, oauth_cert)
    )
    passed = admin.email_servers.test(SALES, oauth)
    server = admin.email_servers.create(SALES, oauth, test_token=passed.test_token or "")
    form = SmtpForm(server)
    try:
        assert form.fields["authentication"].value == "oauth2"
        assert "Tenant ID" in visible(form) and "Password" not in visible(form)
        assert form.fields["tenant_id"].value == tenant.id
        assert form.rows["certificate"].note.value.count(f"CN={OAUTH_CERT_CN}") == 1
        # Back to Password: the patch says so and carries the new password only.
        form.fields["authentication"].value = "password"
        form.fields["password"].value = PASSWORD
        patch = form.patch()
        assert patch.settings["authentication"] == "password"
        assert "tenant_id" not in patch.settings
        assert isinstance(patch, EmailServerPatch)
    finally:
        form.close()
