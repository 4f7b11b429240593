"""The service's files are its owner's alone: the data directory 0700, the store and key 0600.

The store holds password hashes and recipients, the key opens every stored secret: no other
local user may read them. What the service creates it creates with these modes; what exists
already is left as the operator made it, with a warning when others can read it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("elegere.files")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) mode 0700; an existing directory is left as it is."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return  # made by another process meanwhile
    os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask


def private_file(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 unless it exists.

    SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database file, so a
    store file made here keeps all three private.
    """
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def exposed(path: Path) -> bool:
    """Whether users other than the owner may read (or, for a directory, enter) ``path``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def warn_if_exposed(*paths: Path) -> list[Path]:
    """Log a warning for each existing path that others can read; returns those paths."""
    found = [p for p in paths if exposed(p)]
    for path in found:
        mode = DIR_MODE if path.is_dir() else FILE_MODE
        log.warning(
            "%s can be read by other users of this machine (mode %s); make it private with: "
            "chmod %o %s",
            path,
            oct(path.stat().st_mode & 0o777),
            mode,
            path,
        )
    return found
