"""A local CA and a certificate for 127.0.0.1, so that the demo SMTP server speaks real TLS.

The service verifies SMTP certificates (and never sends a password in clear), so the demo
server needs one the service trusts: ``make run`` passes ``ca.pem`` as
``ELEGERE_SMTP_CA_FILE``. The files live under ``.elegere/demo-smtp/`` and are reused while
they are valid, so a server the user added in an earlier run still passes its test.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=7)
NAMES = ("127.0.0.1", "localhost")


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


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "elegere-widgets demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make(pki: DemoPki) -> None:
    now = dt.datetime.now(dt.UTC)
    start, end = now - dt.timedelta(hours=1), now + dt.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("elegere-widgets demo CA (this machine only)")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address(NAMES[0])), x509.DNSName(NAMES[1])]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(NAMES[0]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki.ca_file.parent.mkdir(parents=True, exist_ok=True)
    _write(pki.ca_file, ca.public_bytes(pem))
    _write(pki.cert_file, cert.public_bytes(pem) + ca.public_bytes(pem))
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(pki.key_file, key_pem, mode=0o600)
    # The CA's key is not kept: nothing else will ever be signed with it.


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    # Written whole under a temporary name, then renamed: a crash leaves the old file or none.
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
