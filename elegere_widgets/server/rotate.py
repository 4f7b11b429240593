"""Secret-key rotation: every stored secret re-encrypted under a new key.

Running services need not stop: they re-read the key file when it changes (see
``secrets.KeySource``), so from the moment the file holds the new key first, every process
seals with it, and until the old key leaves the file every process still opens what the old
one sealed. A row sealed under the old key by a process that read the file just before it
changed, and committed after the re-encryption, is caught by a second sweep before the old
key is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, Table, select, update

from .config import Settings
from .context import open_keys
from .secrets import SecretBox
from .store.db import make_engine
from .store.tables import EmailServerRow

servers = cast(Table, EmailServerRow.__table__)  # a mapped class is mapped to a Table


@dataclass(frozen=True)
class Rotation:
    new_key: bytes
    #: Servers whose secrets are now sealed under the new key.
    rotated: int
    #: Servers whose secrets no key opened: left as they are, to be entered again.
    unreadable: list[str]


def _write_key_file(path: Path, keys: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"\n".join(keys) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sweep(engine: Engine, box: SecretBox, new_only: SecretBox | None) -> tuple[int, list[str]]:
    """Re-encrypt, in one transaction, the rows not yet sealed under the new key (every row
    when ``new_only`` is None); returns how many and the ids no key opens."""
    count, unreadable = 0, []
    with engine.begin() as conn:
        rows = conn.execute(
            select(servers.c.id, servers.c.secrets_sealed)
            .where(servers.c.secrets_sealed.is_not(None))
            .with_for_update()
        ).all()
        for ident, sealed in rows:
            if new_only is not None and new_only.opens(sealed):
                continue
            try:
                rotated = box.rotate(sealed)
            except InvalidToken:
                unreadable.append(ident)
                continue
            # Core, not the ORM: this is no change a user made, so the version stays and no
            # open form turns stale.
            conn.execute(
                update(EmailServerRow)
                .where(EmailServerRow.id == ident)
                .values(secrets_sealed=rotated)
            )
            count += 1
    return count, unreadable


def rotate_key(settings: Settings, new_key: bytes | None = None) -> Rotation:
    """Re-encrypt every secret under ``new_key`` (made when None).

    With the key file, the file first holds new and old keys, so a crash at any point leaves
    every secret readable; after the sweeps it holds the new key alone. With
    ELEGERE_SECRET_KEY, the caller must store the new key there (and every process must be
    restarted with it). Raises MissingSecretKey when the store holds secrets and no key is
    configured: a rotation would otherwise make one up.
    """
    engine = make_engine(settings.resolved_database_url())
    try:
        source = open_keys(settings, engine)
        old_keys = source.keys()
        new_key = new_key or Fernet.generate_key()
        box = SecretBox([new_key, *old_keys])
        key_file = None if source.from_setting else source.key_file
        if key_file is not None:
            _write_key_file(key_file, [new_key, *old_keys])
        count, unreadable = _sweep(engine, box, None)
        # What a process sealed with an old key while the first sweep ran.
        late, unreadable = _sweep(engine, box, SecretBox([new_key]))
    finally:
        engine.dispose()
    if key_file is not None:
        _write_key_file(key_file, [new_key])
    return Rotation(new_key=new_key, rotated=count + late, unreadable=unreadable)
