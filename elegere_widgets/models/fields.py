"""What a settings field says about itself, read by the API, the forms and the redactors.

A field's label is its ``title``, its help its ``description`` (both in the OpenAPI document).
Markers ride in ``Annotated`` metadata, where pydantic keeps them for us to read and
leaves them out of the JSON Schema: :class:`Placeholder`, the example a form shows in the
empty field, and :class:`WriteOnly`, which the :data:`WriteOnlySecret` / :data:`WriteOnlyBytes`
types carry. Those two types are the only secrets: one serializer masks them unless a dump
asks for ``context={"reveal_secrets": True}`` (files then go as base64).
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    PlainSerializer,
    SecretBytes,
    SecretStr,
    SerializationInfo,
)
from pydantic.fields import FieldInfo

SECRET_MASK = "**********"


@dataclass(frozen=True)
class Placeholder:
    """The example a form shows in the empty field; no part of the API."""

    text: str


@dataclass(frozen=True)
class Choices:
    """The options a form offers for a field, as (value, label) pairs; no part of the API."""

    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Derived:
    """A setting the service finds out and keeps (no form row): e.g. the TLS mode a test saw."""


@dataclass(frozen=True)
class OwnForm:
    """A setting with a form of its own, not a row of the settings form: the next certificate,
    uploaded, tested and promoted in Update's certificate rollover."""


@dataclass(frozen=True)
class WriteOnly:
    """Marks a secret: accepted, never shown (masked in dumps, left out of views)."""


def reveals_secrets(info: SerializationInfo) -> bool:
    return bool(info.context and info.context.get("reveal_secrets"))


def wire_secret(value: SecretStr | SecretBytes) -> str:
    """A secret as the API takes it: the text, or a file's bytes in base64."""
    secret = value.get_secret_value()
    return base64.b64encode(secret).decode() if isinstance(secret, bytes) else secret


def _serialize_secret(value: SecretStr | SecretBytes | None, info: SerializationInfo) -> str | None:
    if value is None:
        return None
    if not reveals_secrets(info):
        return SECRET_MASK
    return wire_secret(value)


def _empty_is_none(value: Any) -> Any:
    # A form's empty secret field means "none given" (in an update: keep the stored one).
    return None if value in ("", b"") else value


_EMPTY_IS_NONE = BeforeValidator(_empty_is_none)
_MASKED = PlainSerializer(_serialize_secret, return_type=str | None)

#: A write-only text secret (a password): optional, "" is None.
WriteOnlySecret = Annotated[SecretStr | None, _EMPTY_IS_NONE, _MASKED, WriteOnly()]
#: A write-only file (a certificate): optional, empty is None; base64 on the wire.
WriteOnlyBytes = Annotated[SecretBytes | None, _EMPTY_IS_NONE, _MASKED, WriteOnly()]


def is_secret(field: FieldInfo) -> bool:
    return any(isinstance(m, WriteOnly) for m in field.metadata)


def placeholder(field: FieldInfo) -> str:
    return next((m.text for m in field.metadata if isinstance(m, Placeholder)), "")


def is_derived(field: FieldInfo) -> bool:
    return any(isinstance(m, Derived) for m in field.metadata)


def has_own_form(field: FieldInfo) -> bool:
    return any(isinstance(m, OwnForm) for m in field.metadata)


def choices(field: FieldInfo) -> tuple[tuple[str, str], ...]:
    return next((m.options for m in field.metadata if isinstance(m, Choices)), ())


def label(name: str, field: FieldInfo) -> str:
    if not field.title:
        raise TypeError(f"the field {name!r} has no title: give it Field(title=...)")
    return field.title


@functools.cache  # a model's fields are fixed; every test and send asks
def secret_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The names of a model's write-only fields, in their order."""
    return tuple(name for name, field in model.model_fields.items() if is_secret(field))


def labels(*models: type[BaseModel]) -> dict[str, str]:
    """Each field's label (its title), by field name, across these models."""
    return {n: label(n, f) for model in models for n, f in model.model_fields.items() if f.title}
