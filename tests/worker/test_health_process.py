"""`elegere worker` checks the servers on its own, as `make run` starts it with a short
interval: a stopped SMTP peer turns the server degraded, then failing, as the API shows; one
alert reaches the organization's default server (the sink), however many checks keep failing;
the peer's return turns it healthy and is told once too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from elegere_widgets.server.seed import SALES_ID
from tests.fixtures.messages import add_peer_server
from tests.fixtures.processes import stop_all
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .conftest import wait_until, worker_env
from .test_health import _point_seeded_servers_at

PEER = "srv_peer"
FAILING = "Email server 'Peer srv_peer' is failing"
HEALTHY = "Email server 'Peer srv_peer' is healthy again"
# Short, as for the demo; long enough that "degraded" (one or two failed checks) lasts two
# intervals, seconds of polling.
INTERVAL_S = 2


def _status(admin: Client) -> str:
    health = admin.email_servers.get(SALES_ID, PEER).health
    assert health is not None
    return health.status


def _statuses_until(admin: Client, wanted: str) -> list[str]:
    """What the API says about the server, each change once, until it says ``wanted``."""
    seen: list[str] = []

    def reached() -> bool:
        status = _status(admin)
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == wanted

    wait_until(f"{PEER} {wanted}", reached)
    return seen


def _failed_in_a_row(admin: Client) -> int:
    """The server's latest checks that failed, newest first, as the API lists them."""
    count = 0
    for check in admin.email_servers.checks(SALES_ID, PEER):
        if check.ok:
            break
        count += 1
    return count


def _alert_events(admin: Client) -> list[str]:
    return [
        e.detail
        for e in admin.audit_events.list(SALES_ID)
        if e.action == "health_alert" and e.email_server_id == PEER
    ]


@pytest.mark.slow
def test_a_worker_process_takes_a_stopped_peer_to_degraded_then_failing_and_back(
    service: RunningService, admin: Client, sink: SmtpPeer, tmp_path: Path
) -> None:
    # The organization's default server (the relay) reaches the sink: alerts arrive there.
    _point_seeded_servers_at(service.ctx, sink)
    peer = SmtpPeer("plain").start()
    add_peer_server(service.ctx, peer, PEER)
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "elegere_widgets.server.cli", "worker", "--threads", "2"],
        env=worker_env(service.ctx, ELEGERE_HEALTH_INTERVAL_S=str(INTERVAL_S)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            "a scheduled check that passed",
            lambda: any(
                c.source == "scheduled" for c in admin.email_servers.checks(SALES_ID, PEER)
            ),
        )
        assert _status(admin) == "healthy"

        port = peer.port
        peer.stop()
        assert _statuses_until(admin, "failing") == ["healthy", "degraded", "failing"]
        health = admin.email_servers.get(SALES_ID, PEER).health
        assert health is not None
        assert health.reason.startswith("The last 3 checks failed; the latest failed at connect")
        # Two more failed checks: still the one alert, not one per check.
        wait_until("five failed checks in a row", lambda: _failed_in_a_row(admin) >= 5)
        assert len(_alert_events(admin)) == 1
        wait_until("the failing alert at the sink", lambda: len(sink.messages) >= 1)
        [alert] = sink.messages
        assert (alert.subject, alert.to) == (FAILING, "admin@acme.example")

        peer.start(port)  # the peer comes back where it was
        assert _statuses_until(admin, "healthy") == ["failing", "healthy"]
        wait_until("the recovery alert at the sink", lambda: len(sink.messages) >= 2)
        assert [(m.subject, m.to) for m in sink.messages] == [
            (FAILING, "admin@acme.example"),
            (HEALTHY, "admin@acme.example"),
        ]
        events = _alert_events(admin)
        assert len(events) == 2
        assert events[0].startswith(HEALTHY) and events[1].startswith(FAILING)
        assert "through 'Acme Relay'" in events[1]
    finally:
        stop_all([proc])
        log.close()
        peer.stop()
