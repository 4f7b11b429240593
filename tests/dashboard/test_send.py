"""``make run``, then the ``elegere send`` line it prints, pasted into a second terminal: the
message reaches the demo SMTP server, whose line in the launcher's output names it (From, To,
Subject, Message-ID), and the service and the audit show it sent by the demo's Sales Mailer."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from elegere_widgets.client import Client
from tests.dashboard.launcher import Launcher, free_port

READY = "Ctrl-C stops everything."
SEND_HINT = "in a second terminal, in this directory, run"


def _printed_send_command(output: str) -> list[str]:
    lines = output.splitlines()
    [at] = [i for i, line in enumerate(lines) if SEND_HINT in line]
    return shlex.split(lines[at + 1])


@pytest.mark.slow
def test_the_elegere_send_that_make_run_prints_shows_up_at_the_demo_smtp_server(
    tmp_path: Path,
) -> None:
    service_port = free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    launcher = Launcher(tmp_path, service_port, free_port())
    try:
        command = _printed_send_command(launcher.wait_for(READY))
        assert command[1:6] == ["send", "--workspace", "Sales", "--custom-action", "Send quote"]
        # A second terminal in the same directory: none of the launcher's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
        sent = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert sent.returncode == 0, sent.stderr
        found = re.fullmatch(r"(msg_\S+) (<\S+>) queued via srv_sales_mailer", sent.stdout.strip())
        assert found, sent.stdout
        ident, message_id = found.groups()

        out = launcher.wait_for(f"Message-ID: {message_id}", timeout=60)
        [line] = [x for x in out.splitlines() if message_id in x]
        assert line == (
            "[demo SMTP] From: sales@acme.example  To: you@example.org  "
            f"Subject: 'Hello'  Message-ID: {message_id}"
        )

        # The service says it was sent (the sender token `elegere send` used may read it) ...
        saved = json.loads((tmp_path / ".elegere" / "send.json").read_text())
        assert saved["url"] == service_url
        with Client(service_url, saved["token"]) as sender:
            message = sender.messages.get("Sales", ident)
        assert message.status == "sent"
        assert [(a.outcome, a.email_server_name) for a in message.attempts] == [
            ("sent", "Sales Mailer")
        ]
        # ... and the audit notebook's frame has the delivery, apart from the seeded history.
        from elegere_widgets.audit import deliveries_frame

        with Client(service_url, launcher.token()) as admin:
            since = datetime.now(UTC) - timedelta(hours=1)
            frame = deliveries_frame(admin, "Sales", since=since)
            real = frame[~frame.history]
            assert list(zip(real.message_id, real.server_name, real.status, strict=True)) == [
                (ident, "Sales Mailer", "sent")
            ]
            # The dashboard's "Used by": the demo's senders still send through it.
            usages = admin.email_servers.usages("ws_sales", "srv_sales_mailer")
            assert {"Send quote", "Weekly digest"} <= {u.name for u in usages}
        assert launcher.stop() == 0
        assert not (tmp_path / ".elegere" / "send.json").exists()  # no gone service to find
    finally:
        launcher.kill_everything()
