"""Certificates that are not what they claim, or are built to exhaust the service.

Already covered in tests/connectivity/test_certificates.py: truncated and corrupt files, and
a file over 1 MiB handed to the loader. Here: other file types, .pfx bombs (thousands of
certificates or keys, or password-derivation rounds by the billion), and oversized uploads
through the API, which must be refused before the service reads or parses them whole.
"""

from __future__ import annotations

import base64
import io
import socket
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import parser as asn1_parser
from asn1crypto import pem as asn1_pem
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from elegere_widgets.connectivity.certificates import (
    MAX_CERTIFICATES,
    MAX_KDF_ROUNDS,
    MAX_KEYS,
    CertificateError,
    CertificateTooLarge,
    CorruptCertificate,
    NoPrivateKey,
    load_credential,
)
from elegere_widgets.models.servers import CERTIFICATE_MAX_BYTES
from elegere_widgets.pki import issue
from tests.fixtures.graph_certs import (
    CertAndKey,
    make_cert,
    multi_key_pfx,
    rsa_key,
    to_pem,
    to_pfx,
)
from tests.fixtures.service import RunningService
from tests.hostile.conftest import ADMIN, SALES, assert_problem, store_snapshot

#: What parsing any certificate file under 1 MiB may take, bombs included (2 cores, CI).
PARSE_BOUND_S = 1.0

GRAPH_SETTINGS: dict[str, Any] = {
    "account": "sales@contoso.com",
    "tenant_id": "contoso.onmicrosoft.com",
    "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def app_cert() -> CertAndKey:
    return make_cert("elegere-hostile", key=rsa_key(20))


def _ec_certificates(count: int) -> list[tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]:
    """``count`` self-signed EC certificates: cheap to make, small, and each one distinct."""
    out = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        out.append((key, issue(f"bomb-{i}", key=key, days=30).cert))
    return out


@pytest.fixture(scope="module")
def many_ec() -> list[tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]:
    return _ec_certificates(2000)


@pytest.fixture(scope="module")
def certificate_bomb(app_cert: CertAndKey, many_ec: list[Any]) -> bytes:
    """One signing key and 2,000 more certificates in one .pfx, well under 1 MiB."""
    bomb = pkcs12.serialize_key_and_certificates(
        b"sales",
        app_cert.key,
        app_cert.cert,
        [cert for _, cert in many_ec],
        serialization.NoEncryption(),
    )
    assert len(bomb) < CERTIFICATE_MAX_BYTES
    return bomb


def _load(data: bytes, password: str | None = None, alias: str | None = None) -> float:
    """Load ``data`` expecting a CertificateError; returns the seconds it took."""
    started = time.monotonic()
    with pytest.raises(CertificateError) as caught:
        load_credential(data, password=password, alias=alias)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    # Plain words for the admin: no library internals, no bytes of the file.
    assert message.endswith(".") and "Traceback" not in message and "\\x" not in message
    assert len(message) < 400
    return elapsed


# ---------------------------------------------------------------- wrong file types


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


def _zip(app_cert: CertAndKey) -> bytes:
    buffer = io.BytesIO()
    # Compressed, as zip tools do. (A stored .pem inside would load: like OpenSSL, the loader
    # reads PEM blocks wherever they are in a file.)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("sales.pfx", to_pfx(app_cert))
        archive.writestr("sales.pem", to_pem(app_cert))
    return buffer.getvalue()


def _csr(app_cert: CertAndKey) -> bytes:
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sales")]))
        .sign(app_cert.key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def _public_key(app_cert: CertAndKey) -> bytes:
    return app_cert.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _utf16(app_cert: CertAndKey) -> bytes:
    # What PowerShell 5's `>` writes: the .pem re-encoded as UTF-16 with a byte-order mark.
    return to_pem(app_cert).decode("ascii").encode("utf-16")


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda c: _png(), CorruptCertificate),
        (_zip, CorruptCertificate),
        (_csr, CorruptCertificate),
        (_public_key, CorruptCertificate),
        (_utf16, CorruptCertificate),
        (
            lambda c: c.key.private_bytes(  # a key without its certificate
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            NoPrivateKey,
        ),
    ],
    ids=["png", "zip", "pem-csr", "pem-public-key", "utf-16-pem", "pem-key-only"],
)
def test_wrong_file_type_is_refused_in_plain_words(
    app_cert: CertAndKey, make: Any, error: type[CertificateError]
) -> None:
    data = make(app_cert)
    with pytest.raises(error):
        load_credential(data, password=None, alias=None)
    assert _load(data) < PARSE_BOUND_S


# ---------------------------------------------------------------- bombs


def test_pfx_of_two_thousand_certificates_is_refused_quickly(certificate_bomb: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(CertificateTooLarge, match=f"2,001 certificates.*{MAX_CERTIFICATES}"):
        load_credential(certificate_bomb, password=None, alias=None)
    assert time.monotonic() - started < PARSE_BOUND_S


def test_pem_bundle_of_two_thousand_certificates_is_refused_quickly(
    app_cert: CertAndKey, many_ec: list[Any]
) -> None:
    bundle = to_pem(app_cert) + b"".join(
        cert.public_bytes(serialization.Encoding.PEM) for _, cert in many_ec
    )
    assert len(bundle) < CERTIFICATE_MAX_BYTES
    started = time.monotonic()
    with pytest.raises(CertificateTooLarge, match="certificates"):
        load_credential(bundle, password=None, alias=None)
    assert time.monotonic() - started < PARSE_BOUND_S


def test_pfx_of_a_thousand_keys_is_refused_before_matching_them(many_ec: list[Any]) -> None:
    # Each key is matched against every certificate: a thousand of each took 5.5 s to refuse.
    entries = [(f"k{i}", CertAndKey(cert, key)) for i, (key, cert) in enumerate(many_ec[:1000])]
    bomb = multi_key_pfx(entries, password=None)
    assert len(bomb) < CERTIFICATE_MAX_BYTES
    started = time.monotonic()
    with pytest.raises(CertificateTooLarge, match=f"1,000 private keys.*{MAX_KEYS}"):
        load_credential(bomb, password=None, alias="k5")
    assert time.monotonic() - started < PARSE_BOUND_S


def _with_mac_rounds(pfx: bytes, rounds: int) -> bytes:
    """``pfx`` with its MAC's iteration count replaced (the MAC no longer matches: it is
    never computed, which is the point)."""
    parsed = asn1_pkcs12.Pfx.load(pfx)
    parsed["mac_data"]["iterations"] = rounds
    return bytes(parsed.dump(force=True))


def test_pfx_asking_for_billions_of_rounds_is_refused_before_deriving(
    app_cert: CertAndKey,
) -> None:
    # 2**31 - 1 PBKDF rounds, tried for each password candidate: a quarter of an hour of CPU
    # for a 3 KB upload, before the password was even known to be wrong.
    bomb = _with_mac_rounds(to_pfx(app_cert, password="pw"), 2**31 - 1)
    started = time.monotonic()
    with pytest.raises(CertificateTooLarge, match="key-derivation rounds"):
        load_credential(bomb, password="pw", alias=None)
    assert time.monotonic() - started < PARSE_BOUND_S


def test_ordinary_rounds_are_not_refused(app_cert: CertAndKey) -> None:
    for rounds in (1, 2048, 10_000, 100_000):
        # The MAC no longer matches unless the count is the one it was made with (2048): the
        # file may be refused, but never for its rounds.
        pfx = _with_mac_rounds(to_pfx(app_cert, password="pw"), rounds)
        try:
            load_credential(pfx, password="pw", alias=None)
        except CertificateError as exc:
            assert not isinstance(exc, CertificateTooLarge), exc


# ---------------------------------------------------------------- through the API


def _graph_body(certificate: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "microsoft_graph",
        "name": "Contoso mailbox",
        "settings": {**GRAPH_SETTINGS, "certificate": certificate},
        **extra,
    }


def test_certificate_over_one_mebibyte_is_a_field_error(
    admin_http: httpx.Client, hostile_service: RunningService
) -> None:
    before = store_snapshot(hostile_service)
    body = _graph_body(_b64(b"\x30" * (CERTIFICATE_MAX_BYTES + 1)))  # ~1.4 MB of JSON
    for path in ("/email-servers/test", "/email-servers"):
        response = admin_http.post(f"/workspaces/{SALES}{path}", json=body)
        assert response.status_code == 422
        problem = assert_problem(response)
        assert problem["errors"] == [
            {
                "field": "certificate",
                "message": "Certificate file is over 1 MiB; upload the .pfx or .cer itself.",
            }
        ]
    assert store_snapshot(hostile_service) == before


def test_pfx_bomb_through_the_api_fails_fast_and_in_words(
    admin_http: httpx.Client, hostile_service: RunningService, certificate_bomb: bytes
) -> None:
    before = store_snapshot(hostile_service)
    started = time.monotonic()
    response = admin_http.post(
        f"/workspaces/{SALES}/email-servers/test", json=_graph_body(_b64(certificate_bomb))
    )
    assert time.monotonic() - started < 2 * PARSE_BOUND_S
    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is False
    [stage] = result["stages"]
    # The graph test shows the kind of error as detail and the loader's message as hint.
    assert stage["name"] == "certificate" and "2,001 certificates" in stage["hint"]
    # The test is recorded (an audit event); the servers are not touched.
    assert store_snapshot(hostile_service)["servers"] == before["servers"]

    response = admin_http.post(
        f"/workspaces/{SALES}/email-servers",
        json=_graph_body(_b64(certificate_bomb), test_token="forged"),
    )
    assert response.status_code in (422, 428)
    assert_problem(response)


# ---------------------------------------------------------------- over the body limit


def _raw_request(service: RunningService, head: str) -> socket.socket:
    port = int(service.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    token = service.tokens[ADMIN]
    sock.sendall(
        (
            f"POST /api/v1/workspaces/{SALES}/email-servers/test HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{head}\r\n"
        ).encode()
    )
    return sock


def _read_status(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_declared_length_over_the_limit_is_refused_before_any_body(
    hostile_service: RunningService,
) -> None:
    # 50 MiB announced, not one byte sent: the answer cannot have waited for the body.
    with _raw_request(hostile_service, f"Content-Length: {50 * 1024 * 1024}\r\n") as sock:
        assert _read_status(sock) == b"HTTP/1.1 413 Request Entity Too Large"


def test_chunked_body_over_the_limit_is_refused_before_its_end(
    hostile_service: RunningService,
) -> None:
    # 3 MiB of a body that never ends: the 413 must come from counting, not from the end.
    with _raw_request(hostile_service, "Transfer-Encoding: chunked\r\n") as sock:
        chunk = b"[" * 65536
        for _ in range(48):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert _read_status(sock) == b"HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.slow
def test_slow_streamed_upload_gets_its_413_early(
    admin_http: httpx.Client, hostile_service: RunningService
) -> None:
    """A client streaming 50 MiB over 10 s hears 413 after the first 2 MiB, and nothing of it
    was stored: the service stops reading (Connection: close) instead of draining it."""
    before = store_snapshot(hostile_service)

    def upload() -> Iterator[bytes]:
        for _ in range(200):
            yield b" " * (256 * 1024)
            time.sleep(0.05)

    started = time.monotonic()
    response = admin_http.post(
        f"/workspaces/{SALES}/email-servers/test",
        content=upload(),
        headers={"Content-Type": "application/json"},
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 413
    assert "limit" in assert_problem(response)["detail"]
    assert response.headers.get("connection") == "close"
    assert elapsed < 3, f"{elapsed:.1f} s: the service read on after the limit"
    assert store_snapshot(hostile_service) == before


# ---------------------------------------------------------------- rounds the pre-check must see


def _indefinite(element: bytes) -> bytes:
    """``element`` (DER, constructed) re-encoded with BER's indefinite length: what OpenSSL
    accepts and a DER-only reader cannot measure."""
    _, _, _, header, contents, _ = asn1_parser.parse(element)
    return bytes([header[0]]) + b"\x80" + bytes(contents) + b"\x00\x00"


def _sequence(*children: bytes) -> bytes:
    return bytes(asn1_core.Sequence(contents=b"".join(children)).dump())


def _mac_bomb(pfx: bytes, rounds: int) -> bytes:
    """``pfx`` with only its MAC block re-encoded with indefinite length, asking ``rounds``."""
    parsed = asn1_pkcs12.Pfx.load(pfx)
    mac = parsed["mac_data"]
    ber_mac = _indefinite(
        _sequence(mac["mac"].dump(), mac["mac_salt"].dump(), asn1_core.Integer(rounds).dump())
    )
    return _sequence(parsed["version"].dump(), parsed["auth_safe"].dump(), ber_mac)


def _with_safe_rounds(pfx: bytes, rounds: int, *, where: str, ber: bool) -> bytes:
    """``pfx`` whose encrypted safe (``where="safe"``) or shrouded key bag (``"key"``) asks
    for ``rounds`` PBKDF2 rounds, optionally BER-encoded (indefinite lengths)."""
    parsed = asn1_pkcs12.Pfx.load(pfx)
    infos = asn1_pkcs12.AuthenticatedSafe.load(parsed["auth_safe"]["content"].native)
    encoded: list[bytes] = []
    for info in infos:
        if info["content_type"].native == "encrypted_data" and where == "safe":
            algorithm = info["content"]["encrypted_content_info"]["content_encryption_algorithm"]
            kdf = algorithm["parameters"]["key_derivation_func"]["parameters"]
            kdf["iteration_count"] = rounds
            element = info.dump(force=True)
            encoded.append(_indefinite(element) if ber else element)
        elif info["content_type"].native == "data" and where == "key":
            bags = asn1_pkcs12.SafeContents.load(info["content"].native)
            for bag in bags:
                if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                    kdf = bag["bag_value"]["encryption_algorithm"]["parameters"]
                    kdf["key_derivation_func"]["parameters"]["iteration_count"] = rounds
            contents = bags.dump(force=True)
            info["content"] = asn1_core.OctetString(_indefinite(contents) if ber else contents)
            encoded.append(info.dump(force=True))
        else:
            encoded.append(info.dump())
    auth_safe = parsed["auth_safe"]
    auth_safe["content"] = asn1_core.OctetString(_sequence(*encoded))
    return _sequence(
        parsed["version"].dump(), auth_safe.dump(force=True), parsed["mac_data"].dump()
    )


def test_mac_in_indefinite_length_is_counted_not_skipped(app_cert: CertAndKey) -> None:
    # Issue 11.3: the MAC re-encoded with BER's indefinite length passed the old pre-check,
    # and OpenSSL then ran every round it asked for.
    bomb = _mac_bomb(to_pfx(app_cert, password="pw"), MAX_KDF_ROUNDS + 1)
    with pytest.raises(CertificateTooLarge, match="key-derivation rounds"):
        load_credential(bomb, password="pw", alias=None)
    _load(bomb, password="pw")  # in plain words


def test_mac_in_indefinite_length_with_ordinary_rounds_still_loads(app_cert: CertAndKey) -> None:
    # Some tools (NSS's pk12util) write BER: a file whose rounds can be counted is accepted.
    pfx = to_pfx(app_cert, password="pw")
    ber = _mac_bomb(pfx, asn1_pkcs12.Pfx.load(pfx)["mac_data"]["iterations"].native)
    assert ber != pfx
    assert load_credential(ber, password="pw", alias=None).certificate == app_cert.cert


@pytest.mark.parametrize("ber", [False, True], ids=["der", "ber"])
@pytest.mark.parametrize("where", ["safe", "key"], ids=["encrypted-safe", "shrouded-key"])
def test_huge_rounds_in_an_encrypted_safe_or_key_are_refused(
    app_cert: CertAndKey, where: str, ber: bool
) -> None:
    bomb = _with_safe_rounds(to_pfx(app_cert, password="pw"), 2**31 - 1, where=where, ber=ber)
    with pytest.raises(CertificateTooLarge, match="key-derivation rounds"):
        load_credential(bomb, password="pw", alias=None)


def _with_mac_algorithm(pfx: bytes, oid: str) -> bytes:
    parsed = asn1_pkcs12.Pfx.load(pfx)
    parsed["mac_data"]["mac"]["digest_algorithm"]["algorithm"] = oid
    return bytes(parsed.dump(force=True))


@pytest.mark.parametrize(
    "make",
    [
        # PBMAC1 (RFC 9579) keeps its rounds in parameters this service does not read.
        lambda c: _with_mac_algorithm(to_pfx(c, password="pw"), "1.2.840.113549.1.5.14"),
        # A safe in public-key privacy mode (envelopedData): nothing to count.
        lambda c: _with_content_type(to_pfx(c, password="pw"), "1.2.840.113549.1.7.3"),
    ],
    ids=["pbmac1", "enveloped-safe"],
)
def test_pfx_whose_rounds_cannot_be_counted_is_refused(app_cert: CertAndKey, make: Any) -> None:
    with pytest.raises(CorruptCertificate, match="cannot check before opening it"):
        load_credential(make(app_cert), password="pw", alias=None)


def _with_content_type(pfx: bytes, oid: str) -> bytes:
    parsed = asn1_pkcs12.Pfx.load(pfx)
    infos = asn1_pkcs12.AuthenticatedSafe.load(parsed["auth_safe"]["content"].native)
    encrypted = [i for i in infos if i["content_type"].native == "encrypted_data"]
    raw = encrypted[0].dump()
    # Same length OIDs (…1.7.6 → …1.7.3): the file stays well-formed, only the type changes.
    changed = raw.replace(
        bytes.fromhex("2a864886f70d010706"), asn1_core.ObjectIdentifier(oid).contents, 1
    )
    auth_safe = parsed["auth_safe"]
    auth_safe["content"] = asn1_core.OctetString(
        _sequence(*(changed if i is encrypted[0] else i.dump() for i in infos))
    )
    return _sequence(
        parsed["version"].dump(), auth_safe.dump(force=True), parsed["mac_data"].dump()
    )


def test_encrypted_pem_key_with_huge_rounds_is_refused(app_cert: CertAndKey) -> None:
    pem_key = app_cert.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    [(kind, _, der)] = asn1_pem.unarmor(pem_key, multiple=True)
    info = asn1_keys.EncryptedPrivateKeyInfo.load(der)
    info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"][
        "iteration_count"
    ] = 2**31 - 1
    bomb = asn1_pem.armor(kind, info.dump(force=True)) + app_cert.cert_pem
    with pytest.raises(CertificateTooLarge, match="key-derivation rounds"):
        load_credential(bomb, password="pw", alias=None)
