"""SIGKILL in the middle of a burst of writes: after a restart every acknowledged write is
there and the store is consistent."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ADMIN
from tests.fixtures.processes import clean_env, elegere, serving, token_for

# Starts the service as a process and SIGKILLs it in a burst of writes.
pytestmark = pytest.mark.slow

SALES = "ws_sales"
SERVERS = ("srv_sales_mailer",)


def test_sigkill_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    elegere("seed", "--demo", cwd=tmp_path, check=True)
    token = token_for(ADMIN, tmp_path)
    with serving(tmp_path, clean_env()) as service:
        url = service.url
        acked: dict[str, tuple[int, int]] = {}  # server -> (version, n) last acknowledged
        stop = threading.Event()

        def writer(server_id: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=5) as http:
                version = http.get(f"/workspaces/{SALES}/email-servers/{server_id}").json()[
                    "version"
                ]
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        r = http.patch(
                            f"/workspaces/{SALES}/email-servers/{server_id}",
                            json={"settings": {"sender_address": f"s{n}@acme.example"}},
                            headers={"If-Match": f'"{version}"'},
                        )
                    except httpx.TransportError:
                        return  # the service is gone
                    if r.status_code == 200:
                        version = r.json()["version"]
                        acked[server_id] = (version, n)

        threads = [threading.Thread(target=writer, args=(s,)) for s in SERVERS]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < len(SERVERS) or min(v for v, _ in acked.values()) < 20:
            assert time.monotonic() < deadline, "the writes did not get going"
            time.sleep(0.05)
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(10)
        stop.set()
        for t in threads:
            t.join(10)

    engine = create_engine(f"sqlite:///{tmp_path / '.elegere' / 'elegere.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        for server_id, (version, n_value) in acked.items():
            stored_version, settings = conn.execute(
                text("SELECT version, settings FROM email_servers WHERE id = :i"), {"i": server_id}
            ).one()
            # At most one write may have landed after the last acknowledgement was read.
            assert stored_version in (version, version + 1)
            if stored_version == version:
                assert f"s{n_value}@acme.example" in settings
    engine.dispose()

    # And the service starts again on that store and serves it.
    with serving(tmp_path, clean_env()) as restarted:
        r = httpx.get(
            f"{restarted.url}/api/v1/workspaces/{SALES}/email-servers",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and len(r.json()) == 2
