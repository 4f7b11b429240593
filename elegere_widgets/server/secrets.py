"""Secrets at rest: Fernet under a key from ELEGERE_SECRET_KEY or a 0600 key file.

Several keys may be given (comma-separated, newest first): the first encrypts, all decrypt,
so a key can be rotated without losing what the old one sealed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(Exception):
    """The secret key is missing, malformed or does not open the stored secrets."""


class SecretBox:
    """Seals a dict of secrets into one opaque string, and opens it again."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise SecretKeyError("No secret key given.")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(
                "ELEGERE_SECRET_KEY must be a Fernet key (32 url-safe base64 bytes); make one "
                "with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
        self.primary_key = keys[0]

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    def seal(self, values: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            data: dict[str, str] = json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretKeyError(
                "The stored secrets cannot be decrypted with the configured secret key; "
                "set ELEGERE_SECRET_KEY to the key they were saved with."
            ) from None
        return data

    def rotate(self, sealed: str) -> str:
        return self._fernet.rotate(sealed.encode()).decode()


def load_keys(secret_key: str | None, data_dir: Path) -> list[bytes]:
    """Keys from the setting, else from data_dir/secret.key, made (mode 0600) when missing."""
    if secret_key:
        return [k.strip().encode() for k in secret_key.split(",") if k.strip()]
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return [k.strip() for k in path.read_bytes().split(b"\n") if k.strip()]
