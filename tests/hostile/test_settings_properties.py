"""Property: whatever a body holds, the settings models either accept it or say, field by
field, what is wrong; nothing else ever comes out of them.

The oracle is the models themselves, one field at a time: a field is bad when a known-good
object with only that field replaced is refused. The whole object must then be refused with
exactly one message for each bad field (and accepted when there is none), and what is
accepted must survive a dump and a validation unchanged.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from elegere_widgets.models import FieldError
from elegere_widgets.models.servers import (
    FIELD_LABELS,
    EmailServerPatch,
    EmailServerSpec,
    GraphServerSpec,
    GraphSettings,
    SmtpServerSpec,
    SmtpSettings,
    field_errors,
)
from tests.hostile.strategies import (
    EXTRA_KEYS,
    GRAPH_FIELDS,
    SECRET_MARKER,
    SMTP_FIELDS,
    VALID_GRAPH,
    VALID_SMTP,
    field_dicts,
    hostile_text,
    json_values,
    spec_bodies,
)

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SETTINGS_MODELS: dict[str, tuple[type[SmtpSettings] | type[GraphSettings], dict[str, Any]]] = {
    "smtp": (SmtpSettings, VALID_SMTP),
    "microsoft_graph": (GraphSettings, VALID_GRAPH),
}
SPEC = TypeAdapter(EmailServerSpec)

#: Words that tie a message to its field when it does not quote the field's label.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "server": ("host name", "server"),
    "sender_address": ("email address",),
    "account": ("account", "email address"),
    "body": ("request body",),
    "type": ("type",),
}


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def bad_fields(model: type[BaseModel], valid: dict[str, Any], data: dict[str, Any]) -> set[str]:
    """The fields of ``data`` the model refuses, judged one at a time against ``valid``."""
    if any(_has_surrogate(key) for key in data):
        # pydantic cannot read such a key and refuses the object as a whole.
        return {"body"}
    bad = {name for name in data if name not in model.model_fields}
    for name, value in data.items():
        if name in model.model_fields:
            try:
                model.model_validate({**valid, name: value})
            except ValidationError:
                bad.add(name)
    bad |= {n for n, f in model.model_fields.items() if f.is_required() and n not in data}
    return bad


def assert_explained(errors: list[FieldError], expected: set[str], secrets: list[str]) -> None:
    fields = [e.field for e in errors]
    assert len(fields) == len(set(fields)), f"one message per field: {errors}"
    assert set(fields) == expected
    for error in errors:
        message = error.message
        assert message.strip() and len(message) < 400, error
        assert not message.startswith("Value error"), error
        label = FIELD_LABELS.get(error.field, error.field)
        words = (label, error.field, *KEYWORDS.get(error.field, ()))
        named = any(w.lower() in message.lower() for w in words if w)
        assert named or f"'{error.field}'" in message, error  # an unknown field, quoted
        for secret in secrets:
            assert secret not in message, "a secret came back in an error message"


def assert_storable(model: BaseModel) -> None:
    """What a model accepts can be stored and sent: UTF-8 text without NUL (PostgreSQL
    refuses it), a name on one line, a port that was a number."""
    for key, value in model.model_dump(mode="json", context={"reveal_secrets": True}).items():
        if isinstance(value, dict):
            continue  # a spec's settings: checked as their own model
        if isinstance(value, str):
            value.encode("utf-8")  # raises on a lone surrogate
            assert "\x00" not in value, key
        if key == "name":
            assert all(unicodedata.category(c) not in ("Cc", "Zl", "Zp") for c in value)
        if key == "port":
            assert type(value) is int and 1 <= value <= 65535


def _secrets(data: dict[str, Any]) -> list[str]:
    return [SECRET_MARKER] if SECRET_MARKER in data.values() else []


def check_settings(kind: str, data: dict[str, Any]) -> None:
    model, valid = SETTINGS_MODELS[kind]
    expected = bad_fields(model, valid, data)
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        assert expected, f"refused though every field passes alone: {exc}"
        assert_explained(field_errors(exc), expected, _secrets(data))
        for secret in _secrets(data):
            assert secret not in str(exc)
        return
    assert not expected, f"accepted with bad fields {expected}"
    assert_storable(validated)
    assert not isinstance(data.get("port"), bool)
    # Accepted values are normal forms: a second pass changes nothing (secrets included).
    dumped = validated.model_dump(context={"reveal_secrets": True})
    assert model.model_validate(dumped) == validated
    assert (
        model.model_validate(validated.model_dump(mode="json", context={"reveal_secrets": True}))
        == validated
    )


@PROPERTY
@given(data=field_dicts(SMTP_FIELDS, VALID_SMTP))
# Each once accepted and then broke the store or the protocol: always tried.
@example(data={**VALID_SMTP, "account": "sales\ud800"})
@example(data={**VALID_SMTP, "password": "pw\x00"})
@example(data={**VALID_SMTP, "port": True})
@example(data={**VALID_SMTP, "settings": {}})
def test_smtp_settings_validate_or_explain_each_field(data: dict[str, Any]) -> None:
    check_settings("smtp", data)


@PROPERTY
@given(data=field_dicts(GRAPH_FIELDS, VALID_GRAPH))
@example(data={**VALID_GRAPH, "certificate_alias": "sales\udfff"})
@example(data={**VALID_GRAPH, "smtp": 1})
def test_graph_settings_validate_or_explain_each_field(data: dict[str, Any]) -> None:
    check_settings("microsoft_graph", data)


def expected_spec_errors(body: dict[str, Any]) -> set[str]:
    if any(_has_surrogate(key) for key in body):
        return {"body"}
    kind = body.get("type")
    if kind not in SETTINGS_MODELS:
        return {"type"}  # the union stops at its tag
    spec_model = SmtpServerSpec if kind == "smtp" else GraphServerSpec
    settings_model, valid_settings = SETTINGS_MODELS[kind]
    top = {k: v for k, v in body.items() if k != "settings"}
    bad = bad_fields(spec_model, {"name": "Sales relay", "settings": valid_settings}, top)
    bad.discard("settings")  # judged below, on its own fields
    given_settings = body.get("settings", ...)
    if (
        given_settings is ...
        or not isinstance(given_settings, dict)
        or any(_has_surrogate(key) for key in given_settings)
    ):
        bad.add("settings")
    else:
        bad |= bad_fields(settings_model, valid_settings, given_settings)
    return bad


@pytest.mark.slow  # 200 bodies, each through both models
@PROPERTY
@given(body=spec_bodies())
@example(body={"type": "smtp", "name": "Sales\u2028relay", "settings": VALID_SMTP})
@example(
    body={"type": "smtp", "name": "Sales relay", "server_id": "\ud800", "settings": VALID_SMTP}
)
@example(body={"type": "smtp", "name": "Sales relay"})
def test_test_and_add_bodies_validate_or_explain_each_field(body: dict[str, Any]) -> None:
    expected = expected_spec_errors(body)
    try:
        spec = SPEC.validate_python(body)
    except ValidationError as exc:
        assert expected, f"refused though every field passes alone: {exc}"
        secrets = [SECRET_MARKER] if SECRET_MARKER in str(body) else []
        assert_explained(field_errors(exc), expected, secrets)
        return
    assert not expected, f"accepted with bad fields {expected}"
    assert_storable(spec)
    assert_storable(spec.settings)
    wire = spec.to_wire()
    assert SPEC.validate_python(wire) == spec


@PROPERTY
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.just("Sales relay"), hostile_text(), json_values()),
                "settings": st.one_of(
                    st.dictionaries(EXTRA_KEYS, json_values(), max_size=3), json_values()
                ),
            },
        ),
        json_values(),
    )
)
def test_patch_bodies_validate_or_explain_each_field(body: Any) -> None:
    try:
        patch = EmailServerPatch.model_validate(body)
    except ValidationError as exc:
        errors = field_errors(exc)
        assert errors
        if isinstance(body, dict) and not any(_has_surrogate(k) for k in body):
            expected = bad_fields(EmailServerPatch, {}, body)
            assert_explained(errors, expected, [])
        else:
            assert [e.field for e in errors] == ["body"]
        return
    assert EmailServerPatch.model_validate(patch.to_wire()).to_wire() == patch.to_wire()


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        (True, False),
        (False, False),
        (587.0, True),
        (587.5, False),
        ("587", True),
        (" 587 ", True),
        ("+587", True),
        ("١٢٣", False),
        (-587, False),
        (2**64, False),
        ("9" * 5000, False),
        (float("inf"), False),
        (float("nan"), False),
    ],
)
def test_port_forms(value: Any, accepted: bool) -> None:
    """The port forms a form, a script or an attacker sends, pinned: a JSON true is not port 1."""
    data = {**VALID_SMTP, "port": value}
    if accepted:
        assert SmtpSettings.model_validate(data).port == 587
        return
    with pytest.raises(ValidationError) as caught:
        SmtpSettings.model_validate(data)
    [error] = field_errors(caught.value)
    assert error.field == "port" and "Port" in error.message


@pytest.mark.parametrize(
    ("server", "normal"),
    [
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[2001:DB8::1]", "2001:db8::1"),
        ("SMTP.Example.COM.", "smtp.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example", None),  # Unicode labels: enter the A-label (xn--…)
        ("[::1", None),
        ("::1]", None),
        ("smtp.example.com:587", None),
    ],
)
def test_host_forms(server: str, normal: str | None) -> None:
    data = {**VALID_SMTP, "server": server}
    if normal is not None:
        assert SmtpSettings.model_validate(data).server == normal
        return
    with pytest.raises(ValidationError) as caught:
        SmtpSettings.model_validate(data)
    assert [e.field for e in field_errors(caught.value)] == ["server"]
