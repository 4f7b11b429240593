"""Load the certificate a Microsoft Graph server signs its client assertion with.

Admins upload what their tools export: a ``.pfx``/``.p12`` (Windows, Azure Key Vault, Java
keystores, often with several keys told apart by their *alias*, the friendly name), a ``.pem``
with a key and a certificate (OpenSSL), or a ``.cer``/``.crt`` (the public certificate alone,
DER or PEM). ``load_credential`` turns any of them into one key and its certificate, or raises
one of the errors below, each a plain message that says what to fix::

    CertificateError                   base; ``field`` names the setting to correct
    ├── CertificateTooLarge            over 1 MiB, or more keys, certificates or key-derivation
    │                                  rounds than a keystore holds: refused before the work
    ├── CorruptCertificate             not a .pfx/.p12/.pem/.cer/.crt, or damaged (truncated)
    ├── WrongPassword                  the Certificate Password is missing or does not open it
    ├── NoPrivateKey                   a certificate without its key (a .cer alone)
    ├── AliasRequired                  a multi-key .pfx and no alias (``aliases`` lists them)
    ├── WrongAlias                     no key with that alias (``aliases`` lists the ones there)
    ├── UnsupportedKey                 not an RSA key: Entra ID signs apps in with RSA only
    ├── KeyMismatch                    the key does not belong to the certificate
    ├── CertificateExpired             past its not-after date
    └── CertificateNotYetValid         before its not-before date

No message, repr or log line carries a password or a key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import pkcs12

from ..errors import ElegereError
from ..models.servers import CERTIFICATE_MAX_BYTES, CertificateInfo

__all__ = [
    "CERTIFICATE_MAX_BYTES",
    "MAX_CERTIFICATES",
    "MAX_KDF_ROUNDS",
    "MAX_KEYS",
    "AliasRequired",
    "CertificateError",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateTooLarge",
    "CorruptCertificate",
    "KeyMismatch",
    "LoadedCredential",
    "NoPrivateKey",
    "UnsupportedKey",
    "WrongAlias",
    "WrongPassword",
    "certificate_info",
    "load_credential",
]


#: A keystore holds a few keys, and a chain or at most a CA bundle. A file of thousands (easily
#: under 1 MiB) is a bomb: each one costs parsing, and each key a match against every
#: certificate.
MAX_KEYS = 100
MAX_CERTIFICATES = 500
#: Password-derivation rounds (PBKDF2 / PKCS#12 KDF) the whole file may ask for. Tools export
#: with 2,048 (OpenSSL, Windows) to 10,000 (Java) per key and for the MAC; the count is the
#: file's to choose, and 2**31 rounds would hold a request and a CPU for a quarter of an hour
#: before the password is even checked.
MAX_KDF_ROUNDS = 2_000_000

# ---------------------------------------------------------------- errors


class CertificateError(ElegereError):
    """The uploaded certificate cannot sign in to Microsoft Entra ID; the message says why."""

    #: The setting the admin has to change (the API's field name).
    field: ClassVar[str] = "certificate"


class CertificateTooLarge(CertificateError):
    """Over a limit: too large a file, or too many keys, certificates or key-derivation rounds
    in it. Refused before the work they would cost."""


class CorruptCertificate(CertificateError):
    """Not a certificate file this service reads, or a damaged one."""


class WrongPassword(CertificateError):
    """The Certificate Password is missing, or does not open the file."""

    field = "certificate_password"


class NoPrivateKey(CertificateError):
    """A certificate without its private key: it cannot sign anything."""


class AliasRequired(CertificateError):
    """The .pfx holds several keys and no Certificate Alias says which one to use."""

    field = "certificate_alias"

    def __init__(self, message: str, *, aliases: Sequence[str]) -> None:
        super().__init__(message)
        self.aliases = list(aliases)


class WrongAlias(CertificateError):
    """No key in the .pfx has the Certificate Alias given."""

    field = "certificate_alias"

    def __init__(self, message: str, *, aliases: Sequence[str]) -> None:
        super().__init__(message)
        self.aliases = list(aliases)


class UnsupportedKey(CertificateError):
    """A key of a type Microsoft Entra ID does not accept for client assertions."""


class KeyMismatch(CertificateError):
    """The private key does not belong to the certificate."""


class CertificateExpired(CertificateError):
    """The certificate's validity ended."""


class CertificateNotYetValid(CertificateError):
    """The certificate's validity has not started."""


# ---------------------------------------------------------------- the loaded credential


@dataclass(frozen=True)
class LoadedCredential:
    """One private key (PKCS#8 PEM, unencrypted, or None for a bare certificate), the
    certificate it belongs to, and the other certificates of the file (its chain)."""

    private_key_pem: bytes | None = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    alias: str | None = None

    @property
    def has_private_key(self) -> bool:
        return self.private_key_pem is not None

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def thumbprint_sha1(self) -> str:
        return (
            self.certificate.fingerprint(hashes.SHA1()).hex().upper()
        )  # SHA-1: what the Azure portal shows

    @property
    def thumbprint_sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()


def certificate_info(
    cert: x509.Certificate | LoadedCredential, *, now: datetime | None = None
) -> CertificateInfo:
    """What may be shown of a certificate. A bare ``x509.Certificate`` has no private key."""
    has_key = False
    if isinstance(cert, LoadedCredential):
        has_key = cert.has_private_key
        cert = cert.certificate
    now = now or datetime.now(UTC)
    not_after = cert.not_valid_after_utc
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        thumbprint_sha1=cert.fingerprint(hashes.SHA1()).hex().upper(),
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
        not_after=not_after,
        # Floor division: 23 hours left is 0 days left, one hour past is -1.
        days_left=int((not_after - now).total_seconds() // 86400),
        has_private_key=has_key,
    )


# ---------------------------------------------------------------- loading


_CER_ONLY = (
    "a .cer holds only the public certificate; upload it to the Azure app registration "
    "(Certificates & secrets) and upload the .pfx (with its private key) here."
)


def load_credential(
    data: bytes,
    *,
    password: str | None,
    alias: str | None,
    require_private_key: bool = True,
    check_validity: bool = True,
    now: datetime | None = None,
) -> LoadedCredential:
    """Read a .pfx/.p12, .pem, or .cer/.crt and pick the key to sign with.

    ``require_private_key=False`` lets a bare certificate through (to show its details);
    ``check_validity=False`` lets an expired one through (to show that it expired).
    Raises a ``CertificateError``; never anything else for bad input.
    """
    if len(data) > CERTIFICATE_MAX_BYTES:
        raise CertificateTooLarge(
            "Certificate file is over 1 MiB, too large for a certificate; upload the .pfx or "
            ".cer itself, not an archive or a bundle."
        )
    data = bytes(data)
    if not data.strip():
        raise CorruptCertificate("Certificate file is empty; upload the .pfx again.")
    is_pfx = False
    if b"-----BEGIN" in data:
        loaded = _load_pem(data, password)
    elif _looks_like_pfx(data):
        is_pfx = True
        loaded = _load_pfx(data, password, alias)
    else:
        loaded = _load_der_certificate(data)
    if require_private_key and loaded.private_key_pem is None:
        raise NoPrivateKey(
            "The .pfx holds certificates but no private key; export it again with its private "
            "key ('Yes, export the private key')."
            if is_pfx
            else f"Certificate has no private key: {_CER_ONLY}"
        )
    if check_validity:
        _check_validity(loaded.certificate, now or datetime.now(UTC))
    return loaded


def _check_validity(cert: x509.Certificate, now: datetime) -> None:
    if now > cert.not_valid_after_utc:
        raise CertificateExpired(
            f"Certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}; create a new one, "
            "upload its .cer to the app registration and its .pfx here."
        )
    if now < cert.not_valid_before_utc:
        raise CertificateNotYetValid(
            f"Certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; "
            "wait until then, or check the clock of the machine that made it."
        )


def _load_der_certificate(data: bytes) -> LoadedCredential:
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise CorruptCertificate(
            "Certificate file is not a .pfx/.p12, .pem, .cer or .crt, or it is damaged "
            "(cut short in the upload?); export it again and upload the .pfx."
        ) from None
    return LoadedCredential(private_key_pem=None, certificate=cert)


def _load_pem(data: bytes, password: str | None) -> LoadedCredential:
    blocks = list(_pem_key_blocks(data))
    _check_counts(keys=len(blocks), certificates=data.count(b"-----BEGIN CERTIFICATE-----"))
    _check_rounds(sum(_pem_kdf_rounds(block) for block in blocks))
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    keys = [_load_pem_key(block, password) for block in blocks]
    if not certs:
        if keys:
            raise NoPrivateKey(
                "The .pem holds a private key but no certificate; put the certificate "
                "(-----BEGIN CERTIFICATE-----) in the same file, or upload the .pfx."
            )
        raise CorruptCertificate(
            "The .pem holds no readable certificate; export it again, or upload the .pfx."
        )
    if not keys:
        return LoadedCredential(private_key_pem=None, certificate=certs[0], chain=tuple(certs[1:]))
    key = keys[0]
    cert = _certificate_of(key, certs)
    if cert is None:
        raise KeyMismatch(
            "The private key in the .pem does not belong to its certificate; put the key and "
            "the certificate of the same pair in the file, or upload the .pfx."
        )
    return LoadedCredential(
        private_key_pem=_to_pem(key),
        certificate=cert,
        chain=tuple(c for c in certs if c is not cert),
    )


def _pem_key_blocks(data: bytes) -> Iterator[bytes]:
    """Each ``-----BEGIN … PRIVATE KEY-----`` block, whatever its kind (PKCS#8, RSA, EC)."""
    text = data.decode("ascii", errors="replace")
    pos = 0
    while True:
        start = text.find("-----BEGIN ", pos)
        if start < 0:
            return
        header_end = text.find("-----", start + 11)
        if header_end < 0:
            return
        label = text[start + 11 : header_end]
        end_marker = f"-----END {label}-----"
        end = text.find(end_marker, header_end)
        if end < 0:
            return
        pos = end + len(end_marker)
        if label.endswith("PRIVATE KEY"):
            yield text[start:pos].encode("ascii")


def _load_pem_key(block: bytes, password: str | None) -> PrivateKeyTypes:
    pw = password.encode() if password else None
    try:
        key = serialization.load_pem_private_key(block, pw)
    except TypeError:
        # cryptography: "Password was not given but private key is encrypted", or a password
        # was given for a key that is not encrypted. Only the first is a mistake to report.
        if pw is None:
            raise WrongPassword(
                "The private key in the .pem is encrypted; enter its Certificate Password."
            ) from None
        key = _load_unencrypted_pem_key(block)
    except ValueError:
        if b"ENCRYPTED" in block:
            raise WrongPassword(
                "Certificate Password does not open the private key in the .pem; check it "
                "(it is case-sensitive)."
            ) from None
        raise CorruptCertificate(
            "The private key in the .pem is damaged or of an unknown kind; export it again, "
            "or upload the .pfx."
        ) from None
    _require_rsa(key)
    return key


def _load_unencrypted_pem_key(block: bytes) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(block, None)
    except (TypeError, ValueError):
        raise CorruptCertificate(
            "The private key in the .pem cannot be read; export it again, or upload the .pfx."
        ) from None


def _require_rsa(key: PrivateKeyTypes) -> None:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UnsupportedKey(
            "The key is not an RSA key; Microsoft Entra ID accepts only RSA certificates "
            "(2048 bits or more) for app sign-in. Create an RSA certificate and upload its .pfx."
        )


def _certificate_of(
    key: PrivateKeyTypes, certs: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The certificate whose public key is the key's: a key belongs to that certificate."""
    wanted = _spki(key.public_key())
    return next((c for c in certs if _spki(c.public_key()) == wanted), None)


def _spki(public_key: PublicKeyTypes | CertificatePublicKeyTypes) -> bytes:
    try:
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except ValueError:  # a key kind without a SubjectPublicKeyInfo form: matches nothing
        return b""


def _to_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# ---------------------------------------------------------------- .pfx / .p12


#: (alias, private key, its certificate or None) for each key in a .pfx
_Pair = tuple[str | None, PrivateKeyTypes, x509.Certificate | None]


def _load_pfx(data: bytes, password: str | None, alias: str | None) -> LoadedCredential:
    _check_pfx_work(data)
    p12, pw = _open_pfx(data, password)
    certs = [c for c in (p12.cert, *p12.additional_certs) if c is not None]
    # Certificates in an encrypted safe are counted only now, once OpenSSL has read them.
    _check_counts(keys=0, certificates=len(certs))
    names = {id(c.certificate): _friendly(c.friendly_name) for c in certs}
    all_certs = [c.certificate for c in certs]

    # cryptography (OpenSSL's PKCS12_parse) returns only the first key of the file; a
    # keystore exported from Windows or Java may hold several, told apart by alias. Read the
    # key bags ourselves for those; if the file is laid out in a way the walk does not know,
    # the first key is still there.
    pairs: list[_Pair] = []
    try:
        for bag_alias, key in _pfx_key_bags(data, pw):
            cert = _certificate_of(key, all_certs)
            pairs.append((bag_alias or (names.get(id(cert)) if cert else None), key, cert))
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm):
        pairs = []  # all or nothing: a half-read list would hide keys
    if not pairs and p12.key is not None:
        cert = p12.cert.certificate if p12.cert else None
        pairs = [(names.get(id(cert)) if cert else None, p12.key, cert)]

    if not pairs:
        if not all_certs:
            raise CorruptCertificate(
                "The .pfx holds neither a key nor a certificate; export it again."
            )
        # Certificates only: load_credential refuses it for signing, or shows it.
        return LoadedCredential(None, all_certs[0], chain=tuple(all_certs[1:]))

    chosen = _choose(pairs, alias)
    key_alias, key, cert = chosen
    if cert is None:
        raise KeyMismatch(
            "The .pfx holds a private key without its certificate (no certificate matches the "
            "key); export the key together with its certificate."
        )
    _require_rsa(key)
    chain = tuple(c for c in all_certs if c is not cert and all(c is not p[2] for p in pairs))
    return LoadedCredential(
        private_key_pem=_to_pem(key), certificate=cert, chain=chain, alias=key_alias
    )


def _open_pfx(
    data: bytes, password: str | None
) -> tuple[pkcs12.PKCS12KeyAndCertificates, bytes | None]:
    # A .pfx "without a password" is, depending on the tool, protected by no password or by
    # the empty one: try both before asking for one (and after a password it does not need).
    candidates: list[bytes | None] = [None, b""]
    if password:
        candidates.insert(0, password.encode())
    for pw in candidates:
        try:
            return pkcs12.load_pkcs12(data, pw), pw
        except ValueError as exc:
            if "deserialize" in str(exc):  # OpenSSL could not even parse the structure
                raise CorruptCertificate(
                    "The .pfx is damaged (cut short in the upload?); export it again."
                ) from None
    if password:
        raise WrongPassword(
            "Certificate Password does not open this .pfx; check it (it is case-sensitive)."
        )
    raise WrongPassword("This .pfx is protected by a password; enter its Certificate Password.")


def _friendly(name: bytes | None) -> str | None:
    return name.decode("utf-8", errors="replace") if name else None


def _choose(pairs: list[_Pair], alias: str | None) -> _Pair:
    aliases = [a for a, _, _ in pairs if a]
    listed = ", ".join(repr(a) for a in aliases) or "none"
    if alias is None:
        if len(pairs) > 1:
            raise AliasRequired(
                f"This .pfx holds {len(pairs)} keys; enter the Certificate Alias of the one to "
                f"use: {listed}.",
                aliases=aliases,
            )
        return pairs[0]
    exact = [p for p in pairs if p[0] == alias]
    # Aliases are typed by hand; Windows and Java disagree on case, so a case-insensitive
    # match is accepted when it is the only one.
    loose = [p for p in pairs if p[0] and p[0].casefold() == alias.casefold()]
    if exact or len(loose) == 1:
        return (exact or loose)[0]
    if not aliases:
        raise WrongAlias(
            f"This .pfx holds no key named {alias!r} (its key has no alias); leave Certificate "
            "Alias empty.",
            aliases=aliases,
        )
    raise WrongAlias(
        f"This .pfx holds no key named {alias!r}; the aliases in it are: {listed}.",
        aliases=aliases,
    )


# ---------------------------------------------------------------- limits


def _check_counts(*, keys: int, certificates: int) -> None:
    if keys > MAX_KEYS:
        raise CertificateTooLarge(
            f"The file holds {keys:,} private keys, more than the {MAX_KEYS} a certificate "
            "file may hold; export only the key this server signs in with (and its certificate)."
        )
    if certificates > MAX_CERTIFICATES:
        raise CertificateTooLarge(
            f"The file holds {certificates:,} certificates, more than the {MAX_CERTIFICATES} a "
            "certificate file may hold; export the key with its own certificate and chain only."
        )


def _check_rounds(rounds: int) -> None:
    if rounds > MAX_KDF_ROUNDS:
        raise CertificateTooLarge(
            f"The file's password protection asks for {rounds:,} key-derivation rounds, more "
            f"than the {MAX_KDF_ROUNDS:,} this service runs; export it again with your tool's "
            "default encryption settings."
        )


def _check_pfx_work(data: bytes) -> None:
    """Count keys, certificates and key-derivation rounds before OpenSSL opens the file."""
    try:
        keys, certificates, rounds = _pfx_work(data)
    except (ValueError, IndexError):
        return  # a layout this walk does not know: OpenSSL judges it, and says it is damaged
    _check_counts(keys=keys, certificates=certificates)
    _check_rounds(rounds)


def _pem_kdf_rounds(block: bytes) -> int:
    """The rounds of an ``ENCRYPTED PRIVATE KEY`` (PKCS#8); the older OpenSSL form has one."""
    if b"BEGIN ENCRYPTED PRIVATE KEY" not in block:
        return 0
    body = b"".join(line for line in block.splitlines() if not line.startswith(b"-----"))
    try:
        return _kdf_rounds(base64.b64decode(body))
    except (binascii.Error, ValueError, IndexError):
        return 0  # unreadable: cryptography will say so, without deriving anything


# ---------------------------------------------------------------- a small DER reader

# Just enough of PKCS#12 (RFC 7292) to list the key bags: PFX → authSafe (data) →
# ContentInfo* → (data) SafeContents → SafeBag*. Encrypted ContentInfos (where tools put the
# certificates) are skipped: cryptography already read those.

_OID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0101")  # 1.2.840.113549.1.12.10.1.1
_OID_SHROUDED_KEY_BAG = bytes.fromhex("2a864886f70d010c0a0102")  # ….1.2
_OID_CERT_BAG = bytes.fromhex("2a864886f70d010c0a0103")  # ….1.3
_OID_FRIENDLY_NAME = bytes.fromhex("2a864886f70d010914")  # 1.2.840.113549.1.9.20

_SEQUENCE, _SET, _INTEGER, _OCTET_STRING, _OID, _BMP_STRING = 0x30, 0x31, 0x02, 0x04, 0x06, 0x1E
_EXPLICIT_0 = 0xA0


def _tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the DER element at ``pos``; ValueError if cut short."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("unsupported length")  # BER's indefinite length included
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated")
    return tag, data[pos : pos + length], pos + length


def _items(body: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        tag, value, pos = _tlv(body, pos)
        out.append((tag, value))
    return out


def _looks_like_pfx(data: bytes) -> bool:
    """A SEQUENCE spanning the whole file that opens with version 3: PKCS#12's PFX.

    A truncated upload fails here, and is reported as damaged rather than as a wrong
    password (OpenSSL says "invalid password or PKCS12 data" to both).
    """
    try:
        tag, body, end = _tlv(data)
        if tag != _SEQUENCE or end != len(data):
            return False
        first_tag, first, _ = _tlv(body)
    except ValueError:
        return False
    return first_tag == _INTEGER and first == b"\x03"


def _kdf_rounds(der: bytes) -> int:
    """The rounds every password-derivation in ``der`` asks for, summed.

    PBKDF2-params and PKCS#12's PBEParameter both open with ``SEQUENCE { salt OCTET STRING,
    iterations INTEGER, ... }``: any such SEQUENCE is counted. A loop, not recursion: a
    hostile file may nest deeper than Python's stack.
    """
    rounds = 0
    stack = [der]
    while stack:
        for tag, value in _items(stack.pop()):
            if not tag & 0x20:  # primitive: nothing inside
                continue
            if tag == _SEQUENCE:
                inner = _items(value)
                if len(inner) >= 2 and inner[0][0] == _OCTET_STRING and inner[1][0] == _INTEGER:
                    # Negative counts are nonsense, not a credit against a huge one elsewhere.
                    rounds += max(0, int.from_bytes(inner[1][1], "big", signed=True))
                    continue
            stack.append(value)
    return rounds


def _pfx_work(data: bytes) -> tuple[int, int, int]:
    """(keys, certificates, key-derivation rounds) of a .pfx, from what is readable in clear.

    The MAC is checked once for each password ``_open_pfx`` tries: its rounds count three
    times. Certificates inside an encrypted safe are not visible here (counted after OpenSSL
    read them); the rounds of that safe's encryption are.
    """
    _, pfx, _ = _tlv(data)
    parts = _items(pfx)
    rounds = 0
    if len(parts) > 2:
        mac = _items(parts[2][1])
        iterations = int.from_bytes(mac[2][1], "big", signed=True) if len(mac) > 2 else 1
        rounds += 3 * max(0, iterations)
    keys = certificates = 0
    auth_safe = _data_content(parts[1][1])
    if auth_safe is None:
        return keys, certificates, rounds
    _, content_infos, _ = _tlv(auth_safe)
    for _, content_info in _items(content_infos):
        safe_contents = _data_content(content_info)
        if safe_contents is None:  # encryptedData: its algorithm and parameters are in clear
            rounds += _kdf_rounds(content_info)
            continue
        _, bags, _ = _tlv(safe_contents)
        for _, bag in _items(bags):
            bag_parts = _items(bag)
            bag_id = bag_parts[0][1]
            if bag_id in (_OID_KEY_BAG, _OID_SHROUDED_KEY_BAG):
                keys += 1
                if bag_id == _OID_SHROUDED_KEY_BAG:
                    rounds += _kdf_rounds(bag_parts[1][1])
            elif bag_id == _OID_CERT_BAG:
                certificates += 1
    return keys, certificates, rounds


def _data_content(content_info: bytes) -> bytes | None:
    """The octets of a ContentInfo of type data, or None for any other type."""
    parts = _items(content_info)
    if parts[0] != (_OID, _OID_DATA):
        return None
    tag, octets, _ = _tlv(parts[1][1])
    if parts[1][0] != _EXPLICIT_0 or tag != _OCTET_STRING:
        raise ValueError("unexpected ContentInfo")
    return octets


def _pfx_key_bags(
    data: bytes, password: bytes | None
) -> Iterator[tuple[str | None, PrivateKeyTypes]]:
    _, pfx, _ = _tlv(data)
    auth_safe = _data_content(_items(pfx)[1][1])
    if auth_safe is None:
        return  # signed (public-key integrity) PFX: rare; the first key will do
    _, content_infos, _ = _tlv(auth_safe)
    for tag, content_info in _items(content_infos):
        safe_contents = _data_content(content_info) if tag == _SEQUENCE else None
        if safe_contents is None:
            continue
        _, bags, _ = _tlv(safe_contents)
        for _, bag in _items(bags):
            parts = _items(bag)
            bag_id = parts[0][1]
            if bag_id not in (_OID_KEY_BAG, _OID_SHROUDED_KEY_BAG):
                continue
            # The element as a whole: a PrivateKeyInfo, or an EncryptedPrivateKeyInfo that
            # cryptography decrypts with the file's password.
            der = _tlv_bytes(parts[1][1])
            key = serialization.load_der_private_key(
                der, password if bag_id == _OID_SHROUDED_KEY_BAG else None
            )
            name = _bag_friendly_name(parts[2][1]) if len(parts) > 2 else None
            yield name, key


def _tlv_bytes(explicit_body: bytes) -> bytes:
    """The first complete element (tag, length and value) inside an explicit [0] wrapper."""
    _, _, end = _tlv(explicit_body)
    return explicit_body[:end]


def _bag_friendly_name(attributes: bytes) -> str | None:
    for _, attribute in _items(attributes):
        parts = _items(attribute)
        if parts[0] == (_OID, _OID_FRIENDLY_NAME):
            values = _items(parts[1][1])
            if values and values[0][0] == _BMP_STRING:
                return values[0][1].decode("utf-16-be", errors="replace") or None
    return None
