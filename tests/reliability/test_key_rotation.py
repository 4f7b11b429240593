"""`elegere rotate-key` while `elegere serve` runs loses nothing (issue 11.5).

The running service re-reads the key file when it changes: a server it creates after the
rotation is sealed under the new key, which is the only key the file holds after it. After a
restart every stored secret opens: each server sends a real message through its password.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from elegere_widgets.client import Client
from tests.conftest import ADMIN
from tests.fixtures.certs import Pki
from tests.fixtures.processes import Serving, clean_env, elegere, start_serving, token_for
from tests.fixtures.smtp import SmtpPeer

SALES = "ws_sales"


def _env(pki: Pki) -> dict[str, str]:
    return clean_env(ELEGERE_SMTP_CA_FILE=str(pki.ca.cert_path))


class Service:
    """``elegere serve`` on one store, stopped and started again by the test."""

    def __init__(self, cwd: Path, pki: Pki) -> None:
        self.cwd, self.pki = cwd, pki
        self.running: Serving | None = None

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    def start(self) -> None:
        egress = ["--egress-allow", "127.0.0.0/8", "--egress-allow-port", "1024-65535"]
        self.running = start_serving(self.cwd, _env(self.pki), *egress)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture
def service(tmp_path: Path, pki: Pki) -> Iterator[Service]:
    elegere("seed", "--demo", cwd=tmp_path, env=_env(pki), check=True)
    running = Service(tmp_path, pki)
    yield running
    running.stop()


def _add(client: Client, peer: SmtpPeer, name: str) -> str:
    spec = peer.spec(name=name)
    result = client.email_servers.test(SALES, spec)
    assert result.ok, result.stages
    return client.email_servers.create(SALES, spec, test_token=result.test_token or "").id


def test_rotate_while_serving_then_restart_and_every_secret_opens(
    service: Service, peer: SmtpPeer, tmp_path: Path
) -> None:
    token = token_for(ADMIN, tmp_path)
    key_file = tmp_path / ".elegere" / "secret.key"
    old_key = key_file.read_bytes().strip()
    service.start()
    with Client(service.url, token, timeout=30) as client:
        before = _add(client, peer, "Before rotation")

        rotated = elegere("rotate-key", cwd=tmp_path, env=_env(service.pki))
        assert rotated.returncode == 0, rotated.stderr
        assert "without a restart" in rotated.stderr
        new_key = key_file.read_bytes().strip()
        assert new_key != old_key and b"\n" not in new_key  # the old key is gone

        after = _add(client, peer, "After rotation")
    service.stop()

    service.start()
    with Client(service.url, token, timeout=30) as client:
        listed = client.email_servers.list(SALES)
        assert [s.name for s in listed if s.secrets_unreadable] == []
        for server_id in (before, after):
            sent = client.email_servers.send_test(SALES, server_id, to="someone@example.com")
            assert sent.ok, sent.detail
    deadline = time.monotonic() + 10
    while len(peer.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(peer.messages) == 2
    # Every stored secret, the demo's included, opens under the new key alone.
    from sqlalchemy import create_engine, text

    from elegere_widgets.server.secrets import SecretBox

    box = SecretBox([new_key])
    engine = create_engine(f"sqlite:///{tmp_path / '.elegere' / 'elegere.db'}")
    with engine.connect() as conn:
        sealed = (
            conn.execute(
                text("SELECT secrets_sealed FROM email_servers WHERE secrets_sealed IS NOT NULL")
            )
            .scalars()
            .all()
        )
    engine.dispose()
    assert len(sealed) >= 3 and all(box.opens(s) for s in sealed)
    assert httpx.get(f"{service.url}/healthz").status_code == 200
