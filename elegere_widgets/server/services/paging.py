"""The keyset cursor of the time-ordered lists (deliveries, messages): ``(created_at, id)``."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from ...errors import InvalidSettings
from ...models import FieldError

_BAD_CURSOR = "Pass back the next_cursor of the last page."


def bad_cursor() -> InvalidSettings:
    return InvalidSettings(field_errors=[FieldError(field="cursor", message=_BAD_CURSOR)])


def encode_cursor(created_at: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{ident}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), ident
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_cursor() from None


def zoned(name: str, value: datetime | None) -> None:
    """A time without a zone is refused (422 on that field): whose local time it meant
    cannot be guessed, and the store compares instants."""
    if value is not None and value.tzinfo is None:
        raise InvalidSettings(
            field_errors=[
                FieldError(field=name, message="Give a time zone, e.g. 2026-11-01T00:00:00Z.")
            ]
        )
