"""Test receipts: proof that exactly these settings passed a connection test.

A receipt is ``<payload>.<signature>``: the payload names the scope, the caller, a digest of the
settings and secrets that were tested and an expiry; the signature is HMAC-SHA256 under a key
derived from the service's secret key. Adding a server needs a receipt whose digest matches the
settings being added, so "you will not be able to proceed if the test fails" holds in the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from ..errors import TestRequired


def settings_digest(scope_key: str, server_type: str, settings: dict[str, Any]) -> str:
    """A digest of the settings *and* secrets (wire form, canonical JSON)."""
    canonical = json.dumps(
        {"scope": scope_key, "type": server_type, "settings": settings},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ReceiptSigner:
    def __init__(self, secret_key: bytes, ttl_s: int) -> None:
        self._key = hmac.new(secret_key, b"elegere test receipts v1", hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return "ReceiptSigner(<key hidden>)"

    def issue(self, *, digest: str, user_id: str, elapsed_ms: int) -> str:
        payload = {
            "d": digest,
            "u": user_id,
            "exp": int(time.time()) + self.ttl_s,
            "ms": elapsed_ms,
            "at": int(time.time()),
        }
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body.decode()}.{self._sign(body)}"

    def verify(self, token: str | None, *, digest: str, user_id: str) -> dict[str, Any]:
        """The receipt's payload, or TestRequired saying what to do."""
        if not token:
            raise TestRequired(
                "Run Test Connection on these settings first; a server is added only after its "
                "test passed."
            )
        body, _, signature = token.encode().partition(b".")
        if not hmac.compare_digest(self._sign(body), signature.decode(errors="replace")):
            raise TestRequired("The test token is not valid; run Test Connection again.")
        try:
            payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
        except ValueError:
            raise TestRequired("The test token is not valid; run Test Connection again.") from None
        if payload.get("exp", 0) < time.time():
            raise TestRequired("The connection test is too old; run Test Connection again.")
        if payload.get("u") != user_id or not hmac.compare_digest(str(payload.get("d")), digest):
            raise TestRequired(
                "The settings changed since the last passing test; run Test Connection on exactly "
                "these settings."
            )
        return payload

    def _sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()
