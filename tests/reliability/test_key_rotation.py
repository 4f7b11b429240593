"""`elegere rotate-key` while `elegere serve` runs loses nothing (issue 11.5).

The running service re-reads the key file when it changes: a server it creates after the
rotation is sealed under the new key, which is the only key the file holds after it. After a
restart every stored secret opens: each server sends a real message through its password.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from elegere_widgets.client import Client
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SmtpPeer

from .test_crash import _free_port, _token, _wait_up

SALES = "ws_sales"
ELEGERE = [sys.executable, "-m", "elegere_widgets.server.cli"]


def _env(pki: Pki) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    return env | {"ELEGERE_SMTP_CA_FILE": str(pki.ca.cert_path)}


class Service:
    def __init__(self, cwd: Path, pki: Pki) -> None:
        self.cwd, self.pki = cwd, pki
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        self.proc = subprocess.Popen(
            [
                *ELEGERE,
                "serve",
                "--port",
                str(port),
                "--egress-allow",
                "127.0.0.0/8",
                "--egress-allow-port",
                "1024-65535",
                "--log-level",
                "warning",
            ],
            cwd=self.cwd,
            env=_env(self.pki),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        _wait_up(self.url)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None


@pytest.fixture
def service(tmp_path: Path, pki: Pki) -> Iterator[Service]:
    subprocess.run([*ELEGERE, "seed", "--demo"], cwd=tmp_path, env=_env(pki), check=True)
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
    token = _token(tmp_path)
    key_file = tmp_path / ".elegere" / "secret.key"
    old_key = key_file.read_bytes().strip()
    service.start()
    with Client(service.url, token, timeout=30) as client:
        before = _add(client, peer, "Before rotation")

        rotated = subprocess.run(
            [*ELEGERE, "rotate-key"],
            cwd=tmp_path,
            env=_env(service.pki),
            capture_output=True,
            text=True,
        )
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
