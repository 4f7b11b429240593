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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from asn1crypto import algos, pem
from asn1crypto import keys as asn1_keys
from asn1crypto import pkcs12 as asn1_pkcs12
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
    blocks = _pem_blocks(data)
    key_blocks = [
        (kind, headers, der) for kind, headers, der in blocks if kind.endswith("PRIVATE KEY")
    ]
    cert_ders = [der for kind, _, der in blocks if kind == "CERTIFICATE"]
    _check_counts(keys=len(key_blocks), certificates=len(cert_ders))
    counted = [_counted_pem_key(*block) for block in key_blocks]
    _check_rounds(sum(rounds for rounds, _ in counted))
    # cryptography reads only the blocks counted above, as they were counted.
    try:
        certs = [x509.load_der_x509_certificate(der) for der in cert_ders]
    except ValueError:
        certs = []
    keys = [_load_pem_key(block, password) for _, block in counted]
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


#: (label, headers, DER) of one PEM block: ``("CERTIFICATE", {}, b"0\x82…")``
_PemBlock = tuple[str, dict[str, str], bytes]


def _pem_blocks(data: bytes) -> list[_PemBlock]:
    """Every ``-----BEGIN …-----`` block; none when the armour or its base64 is damaged."""
    try:
        return [(str(k), dict(h), bytes(d)) for k, h, d in pem.unarmor(data, multiple=True)]
    except Exception:  # asn1crypto: ValueError, or binascii.Error for broken base64
        return []


def _counted_pem_key(kind: str, headers: dict[str, str], der: bytes) -> tuple[int, bytes]:
    """(key-derivation rounds, the PEM block to load). A PKCS#8 ``ENCRYPTED PRIVATE KEY``
    names its rounds; the older OpenSSL form (``Proc-Type: 4,ENCRYPTED``) derives once."""
    if kind == "ENCRYPTED PRIVATE KEY":
        try:
            info = asn1_keys.EncryptedPrivateKeyInfo.load(der, strict=True)
            rounds = _kdf_rounds(info["encryption_algorithm"])
            der = info.dump(force=True)
        except Exception:
            raise _uncountable(".pem's private key") from None
    else:
        rounds = 0
    return rounds, pem.armor(kind, der, headers=headers or None)


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
    candidates = _password_candidates(password)
    census = _count_pfx(data)
    _check_counts(keys=len(census.key_bags), certificates=census.certificates)
    _check_rounds(census.rounds(attempts=len(candidates)))
    p12, pw = _open_pfx(census.der, candidates, password)
    certs = [c for c in (p12.cert, *p12.additional_certs) if c is not None]
    # Certificates in an encrypted safe are counted only now, once OpenSSL has read them.
    _check_counts(keys=0, certificates=len(certs))
    names = {id(c.certificate): _friendly(c.friendly_name) for c in certs}
    all_certs = [c.certificate for c in certs]

    # cryptography (OpenSSL's PKCS12_parse) returns only the first key of the file; a
    # keystore exported from Windows or Java may hold several, told apart by alias: those
    # come from the key bags counted above. Keys inside an encrypted safe are not visible
    # there; OpenSSL's first key stands for them.
    pairs: list[_Pair] = []
    try:
        for bag_alias, key in _bag_keys(census.key_bags, pw):
            cert = _certificate_of(key, all_certs)
            pairs.append((bag_alias or (names.get(id(cert)) if cert else None), key, cert))
    except (ValueError, TypeError, UnsupportedAlgorithm):
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


def _password_candidates(password: str | None) -> list[bytes | None]:
    # A .pfx "without a password" is, depending on the tool, protected by no password or by
    # the empty one: try both before asking for one (and after a password it does not need).
    candidates: list[bytes | None] = [None, b""]
    if password:
        candidates.insert(0, password.encode())
    return candidates


def _open_pfx(
    der: bytes, candidates: list[bytes | None], password: str | None
) -> tuple[pkcs12.PKCS12KeyAndCertificates, bytes | None]:
    for pw in candidates:
        try:
            return pkcs12.load_pkcs12(der, pw), pw
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


def _uncountable(what: str) -> CorruptCertificate:
    # Whatever cannot be counted is not opened: the count is the only bound on the work.
    return CorruptCertificate(
        f"The {what} is encoded in a way this service cannot check before opening it (its "
        "password protection cannot be measured); export it again with your tool's default "
        "settings."
    )


# ---------------------------------------------------------------- counting before opening

# PKCS#12 (RFC 7292), read with asn1crypto before OpenSSL sees the file: PFX → authSafe
# (data) → ContentInfo* → SafeContents (data) or encryptedData → SafeBag*. Every count that
# bounds the work comes from here, and OpenSSL is handed the DER of exactly what was read,
# so an encoding the two parsers read differently (BER's indefinite lengths) cannot hide
# rounds from the count.

#: MAC digests of password integrity mode: plain hashes, no parameters to derive with.
_MAC_DIGESTS = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class _PfxCensus:
    der: bytes  # the file as read, in DER
    key_bags: list[asn1_pkcs12.SafeBag]  # key bags in clear, shrouded or not
    certificates: int  # certificate bags in clear
    mac_rounds: int
    encryption_rounds: int  # of every encrypted safe and every shrouded key

    def rounds(self, *, attempts: int) -> int:
        """The rounds OpenSSL and this module may run: the MAC is checked for each password
        tried (and for "none" both as absent and as empty); without a MAC, a wrong password
        is found only by decrypting; each shrouded key is opened twice (OpenSSL, then here)."""
        if self.mac_rounds:
            return (attempts + 1) * self.mac_rounds + 2 * self.encryption_rounds
        return (attempts + 1) * self.encryption_rounds


def _count_pfx(data: bytes) -> _PfxCensus:
    try:
        return _read_pfx(data)
    except Exception:  # asn1crypto parses lazily: any failure here means "cannot count"
        raise _uncountable(".pfx") from None


def _read_pfx(data: bytes) -> _PfxCensus:
    pfx = asn1_pkcs12.Pfx.load(data, strict=True)
    mac_rounds = 0
    if pfx["mac_data"].native is not None:
        mac = pfx["mac_data"]
        if mac["mac"]["digest_algorithm"]["algorithm"].native not in _MAC_DIGESTS:
            raise ValueError("a MAC that derives its key in its own way (PBMAC1)")
        mac_rounds = _positive(mac["iterations"].native)
    auth_safe = pfx["auth_safe"]
    if auth_safe["content_type"].native != "data":
        raise ValueError("public-key integrity mode")
    infos = asn1_pkcs12.AuthenticatedSafe.load(auth_safe["content"].native, strict=True)
    rounds = 0
    bags: list[asn1_pkcs12.SafeBag] = []
    for info in infos:
        kind = info["content_type"].native
        if kind == "data":
            bags.extend(asn1_pkcs12.SafeContents.load(info["content"].native, strict=True))
        elif kind == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            rounds += _kdf_rounds(encrypted["content_encryption_algorithm"])
        else:
            raise ValueError("public-key privacy mode")
    key_bags: list[asn1_pkcs12.SafeBag] = []
    certificates = 0
    while bags:  # a loop, not recursion: a hostile file may nest deeper than the stack
        bag = bags.pop()
        kind = bag["bag_id"].native
        if kind == "key_bag":
            key_bags.append(bag)
        elif kind == "pkcs8_shrouded_key_bag":
            key_bags.append(bag)
            rounds += _kdf_rounds(bag["bag_value"]["encryption_algorithm"])
        elif kind == "cert_bag":
            certificates += 1
        elif kind == "safe_contents":
            bags.extend(bag["bag_value"])
        _ = bag["bag_attributes"].native  # parsed now: nothing read later may fail
    key_bags.reverse()  # popped from the end: back to the file's order
    return _PfxCensus(
        der=pfx.dump(force=True),
        key_bags=key_bags,
        certificates=certificates,
        mac_rounds=mac_rounds,
        encryption_rounds=rounds,
    )


def _kdf_rounds(algorithm: algos.EncryptionAlgorithm) -> int:
    """The rounds of a password-based encryption: PBES2 with PBKDF2, or PKCS#12's PBE.
    Anything else (scrypt, an unknown scheme) raises: it cannot be counted."""
    if algorithm.kdf not in ("pbkdf2", "pkcs12_kdf", "pbkdf1"):
        raise ValueError("unknown key derivation")
    return _positive(algorithm.kdf_iterations)


def _positive(count: object) -> int:
    if not isinstance(count, int) or count < 1:
        raise ValueError("iteration count")
    return count


def _bag_keys(
    bags: list[asn1_pkcs12.SafeBag], password: bytes | None
) -> Iterator[tuple[str | None, PrivateKeyTypes]]:
    for bag in bags:
        shrouded = bag["bag_id"].native == "pkcs8_shrouded_key_bag"
        # A PrivateKeyInfo, or an EncryptedPrivateKeyInfo that cryptography decrypts.
        key = serialization.load_der_private_key(
            bag["bag_value"].untag().dump(force=True), password if shrouded else None
        )
        yield _bag_friendly_name(bag), key


def _bag_friendly_name(bag: asn1_pkcs12.SafeBag) -> str | None:
    for attribute in bag["bag_attributes"]:
        if attribute["type"].native == "friendly_name" and len(attribute["values"]):
            return str(attribute["values"][0].native) or None
    return None


def _looks_like_pfx(data: bytes) -> bool:
    """One PKCS#12 PFX spanning the whole file, opening with version 3.

    A truncated upload fails here, and is reported as damaged rather than as a wrong
    password (OpenSSL says "invalid password or PKCS12 data" to both).
    """
    try:
        return bool(asn1_pkcs12.Pfx.load(data, strict=True)["version"].native == "v3")
    except Exception:
        return False
