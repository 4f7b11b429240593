"""Secret-key rotation: every stored secret re-encrypted under a new key, in one transaction."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from cryptography.fernet import Fernet
from sqlalchemy import Table, select, update

from .config import Settings
from .secrets import SecretBox, load_keys
from .store.db import make_engine
from .store.tables import EmailServerRow

servers = cast(Table, EmailServerRow.__table__)  # a mapped class is mapped to a Table


def _write_key_file(path: Path, keys: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(keys) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rotate_key(settings: Settings, new_key: bytes | None = None) -> tuple[bytes, int]:
    """Re-encrypt every secret under ``new_key`` (made when None); returns it and the count.

    With the key file, the file first holds new and old keys, so a crash at any point leaves
    every secret readable; after the commit it holds the new key alone. With
    ELEGERE_SECRET_KEY, the caller must store the new key there.
    """
    old_keys = load_keys(settings.secret_key, settings.data_dir)
    new_key = new_key or Fernet.generate_key()
    box = SecretBox([new_key, *old_keys])
    key_file = None if settings.secret_key else settings.data_dir / "secret.key"
    if key_file is not None:
        _write_key_file(key_file, [new_key, *old_keys])
    engine = make_engine(settings.resolved_database_url())
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                select(servers.c.id, servers.c.secrets_sealed)
                .where(servers.c.secrets_sealed.is_not(None))
                .with_for_update()
            ).all()
            # Core, not the ORM: this is no change a user made, so the version stays and no
            # open form turns stale.
            for ident, sealed in rows:
                conn.execute(
                    update(servers)
                    .where(servers.c.id == ident)
                    .values(secrets_sealed=box.rotate(sealed))
                )
    finally:
        engine.dispose()
    if key_file is not None:
        _write_key_file(key_file, [new_key])
    return new_key, len(rows)
