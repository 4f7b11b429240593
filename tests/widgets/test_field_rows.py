"""A form's rows come from the models' fields: label, placeholder and secret flag in one place."""

from __future__ import annotations

import base64
from typing import Annotated

import pytest
from pydantic import BaseModel, Field, SecretStr
from pydantic.fields import FieldInfo

from elegere_widgets.models import GraphServerSpec, GraphSettings, SmtpServerSpec, SmtpSettings
from elegere_widgets.models.fields import (
    SECRET_MASK,
    Placeholder,
    WriteOnlyBytes,
    WriteOnlySecret,
    has_own_form,
    is_derived,
    label,
    secret_fields,
)
from elegere_widgets.models.servers import FIELD_LABELS, SECRET_FIELDS
from elegere_widgets.widgets import GraphForm, SmtpForm
from elegere_widgets.widgets.fields import form_fields


def _a_row(field: FieldInfo) -> bool:
    """A setting the settings form shows: not derived, not one with a form of its own."""
    return not is_derived(field) and not has_own_form(field)


class RelaySettings(SmtpSettings):
    helo_name: Annotated[str, Placeholder("mail.example.com")] = Field("", title="HELO Name")
    api_key: WriteOnlySecret = Field(None, title="API Key")
    client_file: WriteOnlyBytes = Field(None, title="Client File")


class RelaySpec(SmtpServerSpec):
    settings: RelaySettings


def test_a_field_added_to_a_settings_model_is_a_row_of_its_form() -> None:
    rows = {row.name: row for row in form_fields(RelaySpec)}
    typed = [n for n, f in RelaySettings.model_fields.items() if _a_row(f)]
    assert list(rows) == ["name", *typed]
    assert "tls_mode" not in rows  # derived by the service: no row
    assert "next_certificate" not in rows  # the certificate rollover's own form
    assert (rows["helo_name"].kind, rows["helo_name"].label) == ("text", "HELO Name")
    assert rows["helo_name"].placeholder == "mail.example.com"
    assert (rows["api_key"].kind, rows["api_key"].secret) == ("password", True)
    assert (rows["client_file"].kind, rows["client_file"].secret) == ("file", True)
    assert secret_fields(RelaySettings) == (
        "password",
        "certificate",
        "certificate_password",
        "next_certificate",
        "next_certificate_password",
        "api_key",
        "client_file",
    )


@pytest.mark.parametrize(
    ("form", "settings"),
    [(SmtpForm, SmtpSettings), (GraphForm, GraphSettings)],
    ids=["smtp", "graph"],
)
def test_the_forms_show_what_the_fields_say(
    form: type[SmtpForm] | type[GraphForm], settings: type[BaseModel]
) -> None:
    shown = form()
    try:
        typed = {n: f for n, f in settings.model_fields.items() if _a_row(f)}
        assert list(shown.fields) == ["name", *typed]
        for name, field in typed.items():
            widget = shown.fields[name]
            if hasattr(widget, "description") and name not in SECRET_FIELDS[shown.server_type]:
                assert widget.description == field.title == FIELD_LABELS[name]
        secrets = SECRET_FIELDS[shown.server_type]
        assert shown.secret_names == tuple(name for name in secrets if name in typed)
    finally:
        shown.close()


@pytest.mark.parametrize(
    ("form", "field", "placeholder"),
    [
        (SmtpForm, "name", "Sales relay"),
        (SmtpForm, "server", "smtp.example.com"),
        (GraphForm, "name", "Sales mailbox"),
        (GraphForm, "certificate_alias", "only for a .pfx that holds several keys"),
    ],
)
def test_placeholders_come_from_the_fields(
    form: type[SmtpForm] | type[GraphForm], field: str, placeholder: str
) -> None:
    shown = form()
    try:
        assert shown.fields[field].placeholder == placeholder
    finally:
        shown.close()


def test_one_write_only_type_masks_text_and_files_alike() -> None:
    settings = GraphSettings(
        account="notifications@contoso.com",
        tenant_id="contoso.onmicrosoft.com",
        client_id="00000000-0000-0000-0000-000000000000",
        certificate=base64.b64encode(b"DER").decode(),
        certificate_password="",
    )
    assert settings.certificate_password is None  # an empty field is no secret
    dumped = settings.model_dump(mode="json")
    assert dumped["certificate"] == SECRET_MASK
    assert "DER" not in repr(settings)
    assert settings.secrets() == {"certificate": base64.b64encode(b"DER").decode()}
    settings.certificate_password = SecretStr("pfx-pass")
    assert settings.model_dump()["certificate_password"] == SECRET_MASK
    assert settings.secrets()["certificate_password"] == "pfx-pass"
    assert "pfx-pass" not in settings.public().values()


def test_a_field_without_a_title_is_refused_where_a_label_is_needed() -> None:
    class Untitled(BaseModel):
        note: str = ""

    with pytest.raises(TypeError, match="'note' has no title"):
        label("note", Untitled.model_fields["note"])


def test_the_specs_name_has_each_types_placeholder_and_one_label() -> None:
    for spec in (SmtpServerSpec, GraphServerSpec):
        assert spec.model_fields["name"].title == "Name"
    assert FIELD_LABELS["use_ssl"] == "Use SSL" and FIELD_LABELS["server_id"] == "Server"
