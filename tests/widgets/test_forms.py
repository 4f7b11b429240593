"""The forms on their own: values to a spec or a patch, secrets, the certificate upload."""

from __future__ import annotations

from datetime import UTC, datetime

import ipywidgets
import pytest

from elegere_widgets.errors import InvalidSettings
from elegere_widgets.models import EmailServer, EmailServerPatch, GraphServerSpec
from elegere_widgets.widgets import GraphForm, SmtpForm
from elegere_widgets.widgets.fields import upload_value

CERT = b"-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"
NOW = datetime.now(UTC)


def graph_server() -> EmailServer:
    return EmailServer.model_validate(
        {
            "id": "srv_graph",
            "workspace_id": "ws_sales",
            "organization_id": "org_acme",
            "scope": "workspace",
            "inherited": False,
            "type": "microsoft_graph",
            "name": "Graph mailbox",
            "version": 4,
            "settings": {
                "account": "notifications@acme.example",
                "tenant_id": "acme.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555",
                "certificate_alias": None,
            },
            "secrets_set": {"certificate": True, "certificate_password": False},
            "created_at": NOW,
            "updated_at": NOW,
        }
    )


def fill_graph(form: GraphForm) -> None:
    form.fields["name"].value = "Graph mailbox"
    form.fields["account"].value = "notifications@acme.example"
    form.fields["tenant_id"].value = "acme.onmicrosoft.com"
    form.fields["client_id"].value = "11111111-2222-3333-4444-555555555555"


def test_a_graph_form_sends_the_uploaded_file_and_shows_it_only_as_set() -> None:
    form = GraphForm()
    fill_graph(form)
    assert ("Certificate", "not set") in form.summary_rows()
    before = form.fingerprint()
    form.fields["certificate"].value = upload_value("mailer.pem", CERT)
    form.fields["certificate_password"].value = "pfx-pass"
    assert "mailer.pem" in form.rows["certificate"].file_name.value
    spec = form.spec()
    assert isinstance(spec, GraphServerSpec)
    assert spec.settings.certificate is not None
    assert spec.settings.certificate.get_secret_value() == CERT
    assert form.fingerprint() != before  # a new file is a new setting
    rows = dict(form.summary_rows())
    assert rows["Certificate"] == "set" and rows["Certificate Password"] == "set"
    assert "pfx-pass" not in repr(form) and "not really" not in repr(form)
    form.clear_secrets()
    assert (
        form.fields["certificate"].value == () and form.fields["certificate_password"].value == ""
    )
    form.close()


def test_a_filled_graph_form_keeps_the_stored_certificate_unless_one_is_uploaded() -> None:
    form = GraphForm(graph_server())
    assert form.fields["tenant_id"].value == "acme.onmicrosoft.com"
    assert "leave empty to keep" in form.rows["certificate"].note.value
    assert form.patch() == EmailServerPatch()
    form.fields["certificate_alias"].value = "mailer"
    assert form.patch() == EmailServerPatch(settings={"certificate_alias": "mailer"})
    form.fields["tenant_id"].value = "contoso.onmicrosoft.com"
    assert "Enter the Certificate again: Tenant ID changed" in form.rows["certificate"].note.value
    form.fields["certificate"].value = upload_value("new.pem", CERT)
    assert "replaces the stored one" in form.rows["certificate"].note.value
    patch = form.patch()
    assert set(patch.settings) == {"certificate_alias", "tenant_id", "certificate"}
    assert patch.to_wire()["settings"]["tenant_id"] == "contoso.onmicrosoft.com"
    form.close()


def test_an_invalid_form_raises_invalid_settings_with_every_field() -> None:
    form = SmtpForm()
    with pytest.raises(InvalidSettings) as info:
        form.spec()
    assert {e.field for e in info.value.field_errors} == {
        "name",
        "server",
        "account",
        "sender_address",
    }
    assert form.error_for("server") == info.value.for_field("server")
    unplaced = form.show_errors({"port": "Nope.", "test_token": "Not a field here."})
    assert unplaced == {"test_token": "Not a field here."}
    assert form.error_for("port") == "Nope."
    form.close()


def test_every_input_has_its_css_class_and_secrets_are_masked() -> None:
    for form in (SmtpForm(), GraphForm()):
        for name, widget in form.fields.items():
            assert f"elegere-field-{name}" in widget._dom_classes
            if form.rows[name].spec.secret and name != "certificate":
                assert isinstance(widget, ipywidgets.Password)
            if isinstance(widget, ipywidgets.Text):
                assert widget.continuous_update is False
        form.close()
