"""A local CA and a certificate for 127.0.0.1, so that the demo SMTP server speaks real TLS.

The service verifies SMTP certificates (and never sends a password in clear), so the demo
server needs one the service trusts: ``make run`` passes ``ca.pem`` as
``ELEGERE_SMTP_CA_FILE``. The files live under ``.elegere/demo-smtp/`` and are reused while
they are valid, so a server the user added in an earlier run still passes its test.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..pki import issue

VALID_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)
NAMES = ("127.0.0.1", "localhost")
ORGANIZATION = "elegere-widgets demo"


@dataclass(frozen=True)
class DemoPki:
    """Where the files are: the CA to trust, and what the server presents."""

    ca_file: Path
    cert_file: Path  # the server's certificate, then the CA's
    key_file: Path


def ensure_pki(directory: Path) -> DemoPki:
    """The demo CA and server certificate under ``directory``: reused, or made anew."""
    pki = DemoPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if not _still_good(pki):
        _make(pki)
    return pki


def _still_good(pki: DemoPki) -> bool:
    try:
        chain = x509.load_pem_x509_certificates(pki.cert_file.read_bytes())
        ca = x509.load_pem_x509_certificate(pki.ca_file.read_bytes())
        serialization.load_pem_private_key(pki.key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    soon = dt.datetime.now(dt.UTC) + RENEW_BEFORE
    return all(c.not_valid_after_utc > soon for c in (chain[0], ca)) and chain[0].issuer == (
        ca.subject
    )


def _make(pki: DemoPki) -> None:
    ca_name = "elegere-widgets demo CA (this machine only)"
    ca = issue(ca_name, ca=True, organization=ORGANIZATION, days=VALID_DAYS)
    server = issue(NAMES[0], issuer=ca, names=NAMES, organization=ORGANIZATION, days=VALID_DAYS)
    pki.ca_file.parent.mkdir(parents=True, exist_ok=True)
    _write(pki.ca_file, ca.cert_pem)
    _write(pki.cert_file, server.cert_pem + ca.cert_pem)
    _write(pki.key_file, server.key_pem, mode=0o600)
    # The CA's key is not kept: nothing else will ever be signed with it.


def _write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    # Written whole under a temporary name, then renamed: a crash leaves the old file or none.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
