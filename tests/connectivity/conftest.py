"""Peers for the connectivity tests: real aiosmtpd servers on 127.0.0.1 and a test PKI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from elegere_widgets.connectivity import EgressPolicy
from tests.fixtures.certs import Pki, make_pki
from tests.fixtures.smtp import SmtpPeer


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def egress() -> EgressPolicy:
    """The tests' peers live on loopback and on high ports, which the default policy refuses."""
    return EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1024-65535"])


@pytest.fixture
def tls_peer(pki: Pki) -> Iterator[SmtpPeer]:
    with SmtpPeer("implicit_tls", pki=pki) as peer:
        yield peer


@pytest.fixture
def starttls_peer(pki: Pki) -> Iterator[SmtpPeer]:
    with SmtpPeer("starttls", pki=pki) as peer:
        yield peer


@pytest.fixture
def plain_peer() -> Iterator[SmtpPeer]:
    with SmtpPeer("plain") as peer:
        yield peer
