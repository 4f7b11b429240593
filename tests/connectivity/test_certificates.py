"""Loading the certificate a Graph server signs in with: every file an admin may upload, and
every way it can be wrong. Certificates are made here with cryptography."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from elegere_widgets.connectivity.certificates import (
    AliasRequired,
    CertificateError,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateTooLarge,
    CorruptCertificate,
    KeyMismatch,
    LoadedCredential,
    NoPrivateKey,
    UnsupportedKey,
    WrongAlias,
    WrongPassword,
    certificate_info,
    load_credential,
)
from elegere_widgets.errors import ElegereError
from tests.fixtures.graph_certs import (
    CertAndKey,
    make_ca,
    make_cert,
    multi_key_pfx,
    rsa_key,
    to_cer,
    to_pem,
    to_pfx,
)

PASSWORD = "c0rrect-Horse"


@pytest.fixture(scope="module")
def app_a() -> CertAndKey:
    return make_cert("elegere-app-a", key=rsa_key(10))


@pytest.fixture(scope="module")
def app_b() -> CertAndKey:
    return make_cert("elegere-app-b", key=rsa_key(11))


def load(
    data: bytes, *, password: str | None = None, alias: str | None = None, **kwargs: object
) -> LoadedCredential:
    return load_credential(data, password=password, alias=alias, **kwargs)  # type: ignore[arg-type]


def assert_pair(loaded: LoadedCredential, expected: CertAndKey) -> None:
    assert loaded.certificate == expected.cert
    assert loaded.private_key_pem is not None
    assert loaded.private_key_pem == expected.key_pem


# ---------------------------------------------------------------- files that work


def test_pfx_without_password(app_a: CertAndKey) -> None:
    loaded = load(to_pfx(app_a, alias="sales"))
    assert_pair(loaded, app_a)
    assert loaded.alias == "sales"
    assert loaded.has_private_key


@pytest.mark.parametrize("legacy", [False, True], ids=["aes256", "sha1-3des"])
def test_pfx_with_password(app_a: CertAndKey, legacy: bool) -> None:
    assert_pair(load(to_pfx(app_a, password=PASSWORD, legacy=legacy), password=PASSWORD), app_a)


def test_pfx_without_password_ignores_a_password_it_does_not_need(app_a: CertAndKey) -> None:
    assert_pair(load(to_pfx(app_a), password="typed anyway"), app_a)


def test_pfx_chain_comes_along(app_a: CertAndKey) -> None:
    ca = make_ca("Issuing CA")
    leaf = make_cert("issued-app", key=rsa_key(12), issuer=ca)
    loaded = load(to_pfx(leaf, password=PASSWORD, chain=[ca.cert]), password=PASSWORD)
    assert loaded.certificate == leaf.cert
    assert loaded.chain == (ca.cert,)


def test_pem_with_key_and_certificate(app_a: CertAndKey) -> None:
    assert_pair(load(to_pem(app_a)), app_a)


def test_pem_with_encrypted_key(app_a: CertAndKey) -> None:
    assert_pair(load(to_pem(app_a, password=PASSWORD), password=PASSWORD), app_a)


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_cer_alone_loads_for_display_only(app_a: CertAndKey, pem: bool) -> None:
    loaded = load(to_cer(app_a, pem=pem), require_private_key=False)
    assert loaded.certificate == app_a.cert
    assert loaded.private_key_pem is None
    assert not certificate_info(loaded).has_private_key


# ---------------------------------------------------------------- several keys, one alias each


@pytest.mark.parametrize("password", [None, PASSWORD], ids=["no-password", "password"])
def test_multi_key_pfx_with_alias_picks_that_key(
    app_a: CertAndKey, app_b: CertAndKey, password: str | None
) -> None:
    data = multi_key_pfx([("first", app_a), ("second", app_b)], password=password)
    assert_pair(load(data, password=password, alias="second"), app_b)
    assert_pair(load(data, password=password, alias="first"), app_a)
    # typed by hand: case is forgiven when only one alias matches
    assert load(data, password=password, alias="SECOND").alias == "second"


def test_multi_key_pfx_without_alias_lists_the_aliases(
    app_a: CertAndKey, app_b: CertAndKey
) -> None:
    data = multi_key_pfx([("first", app_a), ("second", app_b)], password=PASSWORD)
    with pytest.raises(AliasRequired) as caught:
        load(data, password=PASSWORD)
    assert caught.value.aliases == ["first", "second"]
    assert "'first'" in str(caught.value) and "'second'" in str(caught.value)
    assert caught.value.field == "certificate_alias"


def test_multi_key_pfx_wrong_alias_names_the_ones_there(
    app_a: CertAndKey, app_b: CertAndKey
) -> None:
    data = multi_key_pfx([("first", app_a), ("second", app_b)], password=PASSWORD)
    with pytest.raises(WrongAlias) as caught:
        load(data, password=PASSWORD, alias="third")
    assert caught.value.aliases == ["first", "second"]
    assert "'third'" in str(caught.value) and "'first', 'second'" in str(caught.value)


def test_alias_for_a_pfx_whose_key_has_none(app_a: CertAndKey) -> None:
    with pytest.raises(WrongAlias, match="leave Certificate Alias empty"):
        load(to_pfx(app_a), alias="sales")


# ---------------------------------------------------------------- files that do not


def test_pfx_password_missing(app_a: CertAndKey) -> None:
    with pytest.raises(WrongPassword, match="enter its Certificate Password") as caught:
        load(to_pfx(app_a, password=PASSWORD))
    assert caught.value.field == "certificate_password"


def test_pfx_password_wrong_and_never_repeated(app_a: CertAndKey) -> None:
    with pytest.raises(WrongPassword, match=r"does not open this \.pfx") as caught:
        load(to_pfx(app_a, password=PASSWORD), password="Tr0ub4dor&3")
    assert "Tr0ub4dor" not in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("password", [None, "wrong"])
def test_pem_encrypted_key_password_missing_or_wrong(
    app_a: CertAndKey, password: str | None
) -> None:
    with pytest.raises(WrongPassword):
        load(to_pem(app_a, password=PASSWORD), password=password)


@pytest.mark.parametrize("pem", [False, True], ids=["der", "pem"])
def test_cer_alone_is_refused_for_sending(app_a: CertAndKey, pem: bool) -> None:
    with pytest.raises(NoPrivateKey) as caught:
        load(to_cer(app_a, pem=pem))
    message = str(caught.value)
    assert "a .cer holds only the public certificate" in message
    assert "upload it to the Azure app registration" in message
    assert "upload the .pfx (with its private key) here" in message


def test_key_that_does_not_match_the_certificate(app_a: CertAndKey, app_b: CertAndKey) -> None:
    mixed = app_b.key_pem + app_a.cert_pem
    with pytest.raises(KeyMismatch, match="does not belong"):
        load(mixed)


def test_expired(app_a: CertAndKey) -> None:
    now = datetime.now(UTC)
    old = make_cert(
        "old",
        key=rsa_key(10),
        not_before=now - timedelta(days=400),
        not_after=now - timedelta(days=2),
    )
    with pytest.raises(CertificateExpired, match="expired on"):
        load(to_pfx(old, password=PASSWORD), password=PASSWORD)
    # still readable, to show an admin what expired
    loaded = load(to_pfx(old, password=PASSWORD), password=PASSWORD, check_validity=False)
    assert certificate_info(loaded).days_left < 0


def test_not_yet_valid() -> None:
    now = datetime.now(UTC)
    future = make_cert(
        "future",
        key=rsa_key(10),
        not_before=now + timedelta(days=3),
        not_after=now + timedelta(days=300),
    )
    with pytest.raises(CertificateNotYetValid, match="valid only from"):
        load(to_pfx(future))


def test_validity_uses_the_given_clock(app_a: CertAndKey) -> None:
    later = datetime.now(UTC) + timedelta(days=400)
    with pytest.raises(CertificateExpired):
        load(to_pfx(app_a), now=later)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[: len(d) // 2],
        lambda d: d[:-7],
        lambda d: b"\x00" * 64,
        lambda d: b"PK\x03\x04 not a certificate",
        lambda d: b"   ",
    ],
    ids=["half", "cut-short", "zeros", "zip", "blank"],
)
def test_truncated_or_corrupt(app_a: CertAndKey, mangle: object) -> None:
    data = mangle(to_pfx(app_a, password=PASSWORD))  # type: ignore[operator]
    with pytest.raises(CorruptCertificate):
        load(data, password=PASSWORD)


def test_pem_without_a_certificate_is_corrupt() -> None:
    with pytest.raises(CorruptCertificate):
        load(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")


def test_over_one_mebibyte_is_refused_before_parsing(app_a: CertAndKey) -> None:
    data = to_pfx(app_a) + b"\x00" * (1024 * 1024)
    started = time.perf_counter()
    with pytest.raises(CertificateTooLarge, match="over 1 MiB"):
        load(data)
    assert time.perf_counter() - started < 0.05


def test_ec_key_is_not_accepted_by_entra_id() -> None:
    ec_cert = make_cert("ec-app", key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(UnsupportedKey, match="RSA"):
        load(to_pfx(ec_cert))


def test_every_error_is_a_certificate_error() -> None:
    for cls in (
        CertificateTooLarge,
        CorruptCertificate,
        WrongPassword,
        NoPrivateKey,
        AliasRequired,
        WrongAlias,
        UnsupportedKey,
        KeyMismatch,
        CertificateExpired,
        CertificateNotYetValid,
    ):
        assert issubclass(cls, CertificateError)
        assert issubclass(cls, ElegereError)
        assert cls.field in ("certificate", "certificate_password", "certificate_alias")


# ---------------------------------------------------------------- what may be shown


def test_certificate_info(app_a: CertAndKey) -> None:
    loaded = load(to_pfx(app_a, password=PASSWORD), password=PASSWORD)
    now = app_a.cert.not_valid_after_utc - timedelta(days=10, hours=3)
    info = certificate_info(loaded, now=now)
    assert info.subject == "CN=elegere-app-a"
    assert info.thumbprint_sha1 == app_a.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert info.thumbprint_sha256 == app_a.cert.fingerprint(hashes.SHA256()).hex().upper()
    assert len(info.thumbprint_sha1) == 40 and len(info.thumbprint_sha256) == 64
    assert info.not_after == app_a.cert.not_valid_after_utc
    assert info.days_left == 10
    assert info.has_private_key
    assert certificate_info(app_a.cert, now=now).has_private_key is False


def test_no_secret_in_repr(app_a: CertAndKey) -> None:
    loaded = load(to_pfx(app_a, password=PASSWORD), password=PASSWORD)
    text = repr(loaded)
    assert "PRIVATE KEY" not in text
    assert "private_key_pem" not in text
    assert PASSWORD not in text


def test_pfx_with_certificates_only(app_a: CertAndKey) -> None:
    data = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(app_a.cert, b"trusted")], serialization.NoEncryption()
    )
    with pytest.raises(NoPrivateKey, match="no private key"):
        load(data)
    assert load(data, require_private_key=False).certificate == app_a.cert
