"""`elegere worker` checks the servers on its own: a stopped peer turns failing, one alert
reaches the sink through the delivery path, and the peer's return is told too."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.scope import Scope
from elegere_widgets.server.seed import ORG_ID, SALES_ID
from elegere_widgets.server.services.email_servers import EmailServerQueries
from tests.fixtures.messages import add_peer_server
from tests.fixtures.smtp import SmtpPeer

from .conftest import wait_until, worker_env
from .test_health import _point_seeded_servers_at

FAILING = "Email server 'Peer srv_peer' is failing"
HEALTHY = "Email server 'Peer srv_peer' is healthy again"


def _status(ctx: ServiceContext) -> str:
    with ctx.sessions() as s:
        server = EmailServerQueries(s, Scope(ORG_ID, SALES_ID, "Sales")).get("srv_peer")
    assert server.health is not None
    return server.health.status


def test_a_worker_process_alerts_on_a_stopped_peer_and_on_its_return(
    store: ServiceContext, sink: SmtpPeer, tmp_path: Path
) -> None:
    _point_seeded_servers_at(store, sink)
    peer = SmtpPeer("plain").start()
    add_peer_server(store, peer, "srv_peer")
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "elegere_widgets.server.cli", "worker", "--threads", "2"],
        env=worker_env(store, ELEGERE_HEALTH_INTERVAL_S="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port = peer.port
        peer.stop()
        wait_until("srv_peer failing", lambda: _status(store) == "failing")
        wait_until("the failing alert at the sink", lambda: len(sink.messages) >= 1)
        peer.start(port)
        wait_until("srv_peer healthy", lambda: _status(store) == "healthy")
        wait_until("the recovery alert at the sink", lambda: len(sink.messages) >= 2)
        assert [m.subject for m in sink.messages] == [FAILING, HEALTHY]
        assert all(m.to == "admin@acme.example" for m in sink.messages)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()
        peer.stop()
