"""``make run``: everything starts, the demo SMTP server passes a real connection test, a second
run keeps the user's changes, and Ctrl-C (or SIGTERM, or the launcher's death) leaves nothing
running."""

from __future__ import annotations

import http.client
import signal
import socket
import time
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch, SmtpServerSpec
from tests.dashboard.launcher import Launcher, free_port, port_free, wait_gone

READY = "Ctrl-C stops everything."


@pytest.mark.slow
def test_make_run_starts_everything_and_ctrl_c_stops_it_all(tmp_path: Path) -> None:
    service_port, voila_port = free_port(), free_port()
    first = Launcher(tmp_path, service_port, voila_port)
    try:
        out = first.wait_for(READY)
        assert "demo data added" in out
        assert f"Dashboard:  http://127.0.0.1:{voila_port}" in out
        assert f"Service:    http://127.0.0.1:{service_port}" in out
        assert "signed in as admin@acme.example" in out
        for label in ("Server:", "Port:", "Use SSL:", "Account:", "Sender Address:", "Password:"):
            assert label in out
        voila = http.client.HTTPConnection("127.0.0.1", voila_port, timeout=10)
        voila.request("GET", "/voila/static/")  # answers without taking the preheated kernel
        assert voila.getresponse().status in (200, 404)
        voila.close()
        smtp_port = first.smtp_port()

        with Client(f"http://127.0.0.1:{service_port}", first.token()) as client:
            assert [w.name for w in client.workspaces.list()] == ["Sales"]
            # The demo mail server, as its help text tells a new user to type it: the service
            # trusts its certificate and may reach it on loopback.
            spec = SmtpServerSpec.model_validate(
                {
                    "name": "Demo relay",
                    "settings": {
                        "server": "127.0.0.1",
                        "port": smtp_port,
                        "use_ssl": True,
                        "account": "demo",
                        "sender_address": "demo@acme.example",
                        "password": "demo-smtp-password",
                    },
                }
            )
            result = client.email_servers.test("ws_sales", spec)
            assert result.ok, [(s.name, s.detail, s.hint) for s in result.stages]
            mailer = client.email_servers.get("ws_sales", "srv_sales_mailer")
            client.email_servers.update(
                "ws_sales",
                mailer.id,
                EmailServerPatch(name="Sales Mailer (renamed)"),
                version=mailer.version,
            )

        children = first.descendants()
        assert len(children) >= 4, children  # the service, the worker, Voilà, Voilà's kernel
        [worker] = [c for c in children if "server.cli worker" in " ".join(c.cmdline())]
        # The demo checks every server every 30 s, not daily, and says so.
        assert worker.environ()["ELEGERE_HEALTH_INTERVAL_S"] == "30"
        assert "Health checks of every server: every 30 s (ELEGERE_HEALTH_INTERVAL_S)" in out
        started = time.monotonic()
        assert first.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 20
        assert "Stopped: nothing of `make run` is running any more." in first.output
        assert wait_gone(children, timeout=5) == []
        for port in (service_port, voila_port, smtp_port):
            assert port_free(port), f"port {port} is still taken"
    finally:
        first.kill_everything()

    assert not (tmp_path / ".elegere" / "send.json").exists()  # `elegere send` finds no service

    # A second run keeps what the user changed, and the user's own health interval wins; the
    # demo SMTP server's port is taken this time, and the servers that send through it follow
    # it to the next one.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", smtp_port))
        busy.listen()
        second = Launcher(tmp_path, service_port, voila_port, ELEGERE_HEALTH_INTERVAL_S="7")
        try:
            out = second.wait_for(READY)
            assert "kept as you left it" in out and "demo data added" not in out
            assert "Health checks of every server: every 7 s" in out
            assert "Acme Relay and Sales Mailer (renamed) send through it" in out
            moved = second.smtp_port()
            assert moved != smtp_port
            with Client(f"http://127.0.0.1:{service_port}", second.token()) as client:
                servers = client.email_servers.list("ws_sales")
            assert [s.name for s in servers] == ["Acme Relay", "Sales Mailer (renamed)"]
            assert {s.key_setting for s in servers} == {f"127.0.0.1:{moved}"}
            children = second.descendants()
            assert second.stop(signal.SIGTERM) == 0
            assert wait_gone(children, timeout=5) == []
        finally:
            second.kill_everything()


def test_a_port_in_use_is_a_plain_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        voila_port = busy.getsockname()[1]
        launcher = Launcher(tmp_path, free_port(), voila_port)
        try:
            assert launcher.process.wait(60) == 1
            launcher.wait_for("is in use", timeout=5)
            assert f"VOILA_PORT={voila_port}" in launcher.output
            assert "Traceback" not in launcher.output
        finally:
            launcher.kill_everything()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self").exists(), reason="PR_SET_PDEATHSIG is Linux only")
def test_sign_in_mode_and_children_do_not_outlive_a_killed_launcher(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    launcher = Launcher(tmp_path, free_port(), free_port(), "--sign-in", ELEGERE_SECRET_KEY=key)
    try:
        assert "the sign-in form" in launcher.wait_for(READY)
        children = launcher.descendants()
        by_role = {
            "voila" if "voila" in " ".join(c.cmdline()) else "service": c.environ()
            for c in children
            if any(part in " ".join(c.cmdline()) for part in ("-m voila", "server.cli serve"))
        }
        # The page asks for a password: no token; and the key to stored passwords stays with
        # the service.
        assert "ELEGERE_TOKEN" not in by_role["voila"] and "ELEGERE_URL" in by_role["voila"]
        assert "ELEGERE_SECRET_KEY" not in by_role["voila"]
        assert by_role["service"]["ELEGERE_SECRET_KEY"] == key

        launcher.process.kill()  # no chance to clean up: the kernel's death signal must act
        launcher.process.wait(10)
        # The service and Voilà get SIGTERM at once; Voilà's kernels poll for their parent.
        assert wait_gone(children, timeout=15) == []
    finally:
        launcher.kill_everything()
