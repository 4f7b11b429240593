"""Secrets at rest: Fernet under a key from ELEGERE_SECRET_KEY or a 0600 key file.

Several keys may be given (comma-separated, or one per line in the file, newest first): the
first encrypts, all decrypt, so a key can be rotated without losing what the old one sealed.

A key is made only for a store that holds no sealed secret: a missing key never silently
becomes a new one (every stored secret would be lost). The key file is re-read when it
changes, so a running process seals with the key ``elegere rotate-key`` just wrote and opens
what another process sealed with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .files import FILE_MODE, private_dir

KEY_ENV = "ELEGERE_SECRET_KEY"
KEY_FILE_NAME = "secret.key"
_MAKE_A_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretKeyError(Exception):
    """The secret key is missing, malformed or does not open the stored secrets."""


class MissingSecretKey(SecretKeyError):
    """The store holds sealed secrets and no key was given: no new one may be made."""


def missing_key_message(key_file: Path) -> str:
    return (
        f"The store holds encrypted secrets, but there is no secret key: {key_file} does not "
        f"exist and {KEY_ENV} is not set. Copy the key file the store was used with to "
        f"{key_file} (mode 0600), or set {KEY_ENV} to that key. A new key would leave every "
        "stored password and certificate unreadable, so none is made."
    )


def _parse(raw: bytes) -> list[bytes]:
    return [k.strip() for k in raw.replace(b",", b"\n").split(b"\n") if k.strip()]


def key_id(key: bytes) -> str:
    """A short fingerprint that names a key in messages without revealing it."""
    return hashlib.sha256(key).hexdigest()[:8]


class KeySource:
    """Where the keys come from: ELEGERE_SECRET_KEY (fixed for the process) or the key file
    (re-read whenever its size, time or inode changes: a stat per seal, microseconds)."""

    def __init__(self, secret_key: str | None, key_file: Path) -> None:
        self._setting = _parse(secret_key.encode()) if secret_key else None
        self.key_file = key_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[bytes] = []
        self.generation = 0

    def __repr__(self) -> str:
        return f"KeySource({KEY_ENV if self._setting is not None else self.key_file})"

    @property
    def from_setting(self) -> bool:
        return self._setting is not None

    def describe(self) -> str:
        return KEY_ENV if self._setting is not None else str(self.key_file)

    def keys(self) -> list[bytes]:
        """The current keys, newest first (empty when the key file is gone)."""
        if self._setting is not None:
            return self._setting
        try:
            st = os.stat(self.key_file)
        except FileNotFoundError:
            return self._keys  # keep what was read: a file being replaced is briefly absent
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                keys = _parse(self.key_file.read_bytes())
                if keys:  # a file caught mid-write (empty) is read again next time
                    self._stamp, self._keys = stamp, keys
                    self.generation += 1
            return self._keys


class SecretBox:
    """Seals a dict of secrets into one opaque string, and opens it again."""

    def __init__(self, keys: list[bytes] | KeySource) -> None:
        if isinstance(keys, KeySource):
            self.source: KeySource | None = keys
            keys = keys.keys()
        else:
            self.source = None
        if not keys:
            raise SecretKeyError("No secret key given.")
        self._keys: list[bytes] = []
        self._fernet = self._make(keys)

    def _make(self, keys: list[bytes]) -> MultiFernet:
        try:
            fernet = MultiFernet([Fernet(k) for k in keys])
        except (ValueError, TypeError):
            where = (
                f"{KEY_ENV} must be a Fernet key"
                if self.source is None or self.source.from_setting
                else f"{self.source.key_file} must hold Fernet keys, one a line"
            )
            raise SecretKeyError(
                f"{where} (32 url-safe base64 bytes); make one with: {_MAKE_A_KEY}"
            ) from None
        self._keys = list(keys)
        return fernet

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    @property
    def primary_key(self) -> bytes:
        self._current()
        return self._keys[0]

    @property
    def generation(self) -> int:
        """Changes whenever the keys do: what was unreadable may open now, and back."""
        return self.source.generation if self.source is not None else 0

    def _current(self) -> MultiFernet:
        if self.source is not None:
            keys = self.source.keys()
            if keys and keys != self._keys:
                self._fernet = self._make(keys)
        return self._fernet

    def seal(self, values: dict[str, str]) -> str:
        return self._current().encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, str]:
        if not sealed:
            return {}
        try:
            data: dict[str, str] = json.loads(self._current().decrypt(sealed.encode()))
        except InvalidToken:
            raise SecretKeyError(
                "The stored secrets cannot be decrypted with the configured secret key "
                f"({self.source.describe() if self.source else KEY_ENV}); set it to the key "
                "they were saved with, or enter the secrets again."
            ) from None
        return data

    def opens(self, sealed: str | None) -> bool:
        """Whether ``sealed`` opens with the current keys."""
        try:
            self.open(sealed)
        except SecretKeyError:
            return False
        return True

    def rotate(self, sealed: str) -> str:
        return self._current().rotate(sealed.encode()).decode()


def load_keys(
    secret_key: str | None,
    data_dir: Path,
    *,
    store_has_secrets: Callable[[], bool] = lambda: True,
) -> KeySource:
    """The key source: the setting, else data_dir/secret.key.

    The key file is made (mode 0600) only when it is missing *and* the store holds no sealed
    secret; otherwise MissingSecretKey says which key is missing and how to supply it.
    """
    key_file = data_dir / KEY_FILE_NAME
    source = KeySource(secret_key, key_file)
    if secret_key:
        if not source.keys():
            raise SecretKeyError(f"{KEY_ENV} is set but holds no key; make one with: {_MAKE_A_KEY}")
        return source
    if not key_file.exists():
        if store_has_secrets():
            raise MissingSecretKey(missing_key_message(key_file.absolute()))
        private_dir(data_dir)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # another process made it meanwhile: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key() + b"\n")
                f.flush()
                os.fsync(f.fileno())
    if not source.keys():
        raise SecretKeyError(
            f"{key_file} holds no key. Restore the key the store was used with, or (only for a "
            f"store without servers) delete the file to have one made."
        )
    return source
