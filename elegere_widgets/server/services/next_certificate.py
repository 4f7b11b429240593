"""How a server's next certificate is kept with its settings, and what its test proves.

The next certificate is stored like the current one: its file and password sealed with the
other secrets (``next_certificate``, ``next_certificate_password``), its alias in the clear
settings, and what may be shown of it derived when it is saved (``next_certificate_info``).
The last test of it (``next_certificate_test``) is kept in the clear settings too, with the
SHA-256 thumbprint of the certificate it tested: a test counts only for that certificate, so
uploading another one leaves it untested, whatever else happens meanwhile. These are plain
functions on the stored settings document: the API view, the health and the commands read
them alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ...models import ConnectionTestResult
from ...models.servers import ENDPOINT_FIELDS, NEXT_CERTIFICATE_FIELDS
from .server_checks import last_test_record, test_summary

__all__ = [
    "NEXT_INFO",
    "NEXT_TEST",
    "next_end",
    "next_test_record",
    "next_thumbprint",
    "test_of_next",
    "tested_next_end",
    "with_next_test_kept",
]

NEXT_INFO = "next_certificate_info"
NEXT_TEST = "next_certificate_test"
_THUMBPRINT = "thumbprint_sha256"


def next_thumbprint(settings: Mapping[str, Any]) -> str | None:
    """The SHA-256 thumbprint of the stored next certificate, or None without one."""
    info = settings.get(NEXT_INFO)
    return str(info[_THUMBPRINT]) if info and info.get(_THUMBPRINT) else None


def next_test_record(result: ConnectionTestResult, thumbprint: str, at: datetime) -> dict[str, Any]:
    """The stored test of the next certificate with ``thumbprint``: a ``LastTest`` document,
    its detail with the failed stage's hint (what to do), and the thumbprint it is of."""
    detail = test_summary(result)
    failed = result.failed_stage
    if failed is not None and failed.hint:
        detail = f"{detail} — {failed.hint}"
    record = last_test_record(result.ok, result.elapsed_ms, detail, at, "manual")
    record[_THUMBPRINT] = thumbprint
    return record


def test_of_next(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored test of the stored next certificate (None: not tested since it came)."""
    test = settings.get(NEXT_TEST)
    thumbprint = next_thumbprint(settings)
    if not test or thumbprint is None or test.get(_THUMBPRINT) != thumbprint:
        return None
    return dict(test)


test_of_next.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def next_end(settings: Mapping[str, Any]) -> datetime | None:
    """When the stored next certificate expires, or None without one."""
    info = settings.get(NEXT_INFO)
    if not info or not info.get("not_after"):
        return None
    return datetime.fromisoformat(str(info["not_after"]))


def tested_next_end(settings: Mapping[str, Any]) -> datetime | None:
    """When the next certificate expires, if it passed its test; else None."""
    test = test_of_next(settings)
    return next_end(settings) if test and test.get("ok") else None


def with_next_test_kept(
    server_type: str,
    stored: Mapping[str, Any],
    public: dict[str, Any],
    changed: Sequence[str],
) -> dict[str, Any]:
    """``public`` (settings about to be stored) with the stored test of the next certificate,
    when a change leaves that test true: the same next certificate, signing in to the same
    tenant, app and account. Otherwise the next certificate is untested again."""
    test = test_of_next(stored)
    moved = set(changed) & {*ENDPOINT_FIELDS[server_type], *NEXT_CERTIFICATE_FIELDS}
    if test is not None and not moved and next_thumbprint(public) == test[_THUMBPRINT]:
        return {**public, NEXT_TEST: test}
    return public
