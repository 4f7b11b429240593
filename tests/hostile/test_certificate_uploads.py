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
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from elegere_widgets.connectivity.certificates import (
    MAX_CERTIFICATES,
    MAX_KEYS,
    CertificateError,
    CertificateTooLarge,
    CorruptCertificate,
    NoPrivateKey,
    load_credential,
)
from elegere_widgets.models.servers import CERTIFICATE_MAX_BYTES
from tests.fixtures.graph_certs import (
    CertAndKey,
    _children,
    _der,
    _read,
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
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bomb-{i}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(i + 1)
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        out.append((key, cert))
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
    _, body, _ = _read(pfx)
    version, auth_safe, mac = _children(body)
    _, mac_body, _ = _read(mac)
    digest_info, salt, _ = _children(mac_body)
    count = rounds.to_bytes((rounds.bit_length() + 8) // 8, "big")  # DER: minimal, positive
    return _der(0x30, version + auth_safe + _der(0x30, digest_info + salt + _der(0x02, count)))


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
