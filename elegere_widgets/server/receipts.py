"""Test receipts: proof that exactly these settings passed a connection test.

A receipt is a Fernet token (encrypted and signed, with its issue time) under a key derived
from the service's secret key. It names the caller, a digest of the settings and secrets that
were tested (bound to the scope) and a unique id: adding a server needs a receipt whose digest
matches the settings being added, so "you will not be able to proceed if the test fails" holds
in the API, and the create it allowed spends its id, so one passing test adds one server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import TestRequired

_INVALID = "The test token is not valid; run Test Connection again."


def settings_digest(scope_key: str, server_type: str, settings: dict[str, Any]) -> str:
    """A digest of the settings *and* secrets (wire form, canonical JSON)."""
    canonical = json.dumps(
        {"scope": scope_key, "type": server_type, "settings": settings},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Receipt:
    """What a valid receipt proves: which test passed, when, and how long it took."""

    id: str
    tested_at: datetime
    elapsed_ms: int
    #: The TLS mode the test found out (Use SSL on a port other than 465/587/25), if any.
    tls_mode: str | None = None


def _receipt_key(secret_key: bytes) -> bytes:
    # A key of its own: a receipt must never open as a sealed secret, nor the reverse.
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"elegere test receipts v2"
    ).derive(secret_key)
    return base64.urlsafe_b64encode(derived)


class ReceiptSigner:
    def __init__(self, secret_key: bytes, ttl_s: int) -> None:
        self._fernet = Fernet(_receipt_key(secret_key))
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return "ReceiptSigner(<key hidden>)"

    def issue(
        self, *, digest: str, user_id: str, elapsed_ms: int, tls_mode: str | None = None
    ) -> str:
        payload: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "d": digest,
            "u": user_id,
            "ms": elapsed_ms,
        }
        if tls_mode is not None:
            payload["tls"] = tls_mode
        return self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()

    def verify(self, token: str | None, *, digest: str, user_id: str) -> Receipt:
        """The receipt, or TestRequired saying what to do. Any malformed token is refused."""
        if not token:
            raise TestRequired(
                "Run Test Connection on these settings first; a server is added only after its "
                "test passed."
            )
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise TestRequired(_INVALID) from None
        try:
            payload = json.loads(self._fernet.decrypt(raw, ttl=self.ttl_s))
        except InvalidToken:
            raise TestRequired(self._why_refused(raw)) from None
        except ValueError:
            raise TestRequired(_INVALID) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise TestRequired(_INVALID)
        if payload.get("u") != user_id or not hmac.compare_digest(str(payload.get("d")), digest):
            raise TestRequired(
                "The settings changed since the last passing test; run Test Connection on exactly "
                "these settings."
            )
        elapsed = payload.get("ms")
        return Receipt(
            id=payload["id"],
            tested_at=datetime.fromtimestamp(self._fernet.extract_timestamp(raw), UTC),
            elapsed_ms=elapsed if isinstance(elapsed, int) else 0,
            tls_mode=payload["tls"] if payload.get("tls") in ("implicit", "starttls") else None,
        )

    def _why_refused(self, raw: bytes) -> str:
        try:
            self._fernet.extract_timestamp(raw)  # checks the signature, not the age
        except InvalidToken:
            return _INVALID
        return "The connection test is too old; run Test Connection again."
