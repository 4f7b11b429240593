"""``make run``, then ``elegere send``: the message reaches the demo SMTP server, whose line in
the launcher's output names it (From, To, Subject, Message-ID)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from elegere_widgets.models import SmtpServerSpec
from tests.dashboard.launcher import Launcher, free_port

READY = "Ctrl-C stops everything."
CLI = [sys.executable, "-m", "elegere_widgets.server.cli"]


def _elegere(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`elegere …` in the launcher's directory: the same store (``.elegere/``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_message_sent_with_elegere_send_shows_up_at_the_demo_smtp_server(
    tmp_path: Path,
) -> None:
    service_port = free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    launcher = Launcher(tmp_path, service_port, free_port())
    try:
        launcher.wait_for(READY)
        smtp_port = launcher.smtp_port()
        # The demo's "Send quote" sends through Sales Mailer, a host that does not exist: the
        # user adds the demo SMTP server, as the launcher's help lists it, and points the
        # custom action at it.
        with Client(service_url, launcher.token()) as client:
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
            assert result.ok and result.test_token, [(s.name, s.detail) for s in result.stages]
            relay = client.email_servers.create("ws_sales", spec, test_token=result.test_token)
            client.custom_actions.update("ws_sales", "ca_send_quote", email_server_id=relay.id)

        # A token of the demo Workspace Admin, made against the launcher's store. (A sender
        # token may not look names up: with one, `elegere send` needs the ids.)
        made = _elegere(tmp_path, "token", "create", "--user", "admin@acme.example")
        assert made.returncode == 0, made.stderr
        admin_token = made.stdout.strip()

        sent = _elegere(
            tmp_path,
            "send",
            "--url",
            service_url,
            "--token",
            admin_token,
            "--workspace",
            "Sales",
            "--custom-action",
            "Send quote",
            "--to",
            "x@example.org",
            "--subject",
            "Quote 7 für Zoë",
            "--text",
            "Here is the quote.",
        )
        assert sent.returncode == 0, sent.stderr
        found = re.search(r"^(msg_\S+) (<\S+>) queued via (\S+)$", sent.stdout.strip())
        assert found, sent.stdout
        message_id = found.group(2)
        assert found.group(3) == relay.id

        out = launcher.wait_for(f"Message-ID: {message_id}", timeout=120)
        [line] = [x for x in out.splitlines() if message_id in x]
        assert line == (
            "[demo SMTP] From: demo@acme.example  To: x@example.org  "
            f"Subject: 'Quote 7 für Zoë'  Message-ID: {message_id}"
        )
        assert launcher.stop() == 0
    finally:
        launcher.kill_everything()
