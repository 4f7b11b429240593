"""``make run`` points the demo's mail at the demo SMTP server, and leaves what the user
changed alone (the store as the launcher prepares it, without starting anything)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from elegere_widgets.dashboard.demo import DemoSmtp
from elegere_widgets.dashboard.demo_mail import prepare_demo
from elegere_widgets.dashboard.launch import ADMIN, prepare_store, send_command
from elegere_widgets.server.config import Settings
from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import ApiToken, EmailServerRow

DEMO = DemoSmtp("127.0.0.1", 2525, True, "demo", "demo-smtp-password", "demo@acme.example")


def _servers(data_dir: Path) -> dict[str, dict[str, object]]:
    ctx = ServiceContext.build(Settings(data_dir=data_dir))
    try:
        with ctx.sessions() as s:
            rows = s.scalars(select(EmailServerRow))
            return {r.id: {**r.settings, "secret": ctx.box.open(r.secrets_sealed)} for r in rows}
    finally:
        ctx.engine.dispose()


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("ELEGERE_")]:
        monkeypatch.delenv(name)


def test_the_demo_servers_send_through_the_demo_smtp_server(tmp_path: Path) -> None:
    data_dir = tmp_path / ".elegere"
    demo = prepare_demo(data_dir, ADMIN, DEMO)
    assert demo.added and demo.routed == ["Acme Relay", "Sales Mailer"]
    servers = _servers(data_dir)
    for ident, sender in (("srv_acme_relay", "notifications"), ("srv_sales_mailer", "sales")):
        settings = servers[ident]
        assert (settings["server"], settings["port"], settings["account"]) == (
            "127.0.0.1",
            2525,
            "demo",
        )
        assert settings["sender_address"] == f"{sender}@acme.example"  # who sent: on each line
        assert settings["secret"] == {"password": "demo-smtp-password"}
    ctx = ServiceContext.build(Settings(data_dir=data_dir))
    try:
        with ctx.sessions() as s:
            kinds = sorted((t.kind, t.workspace_id) for t in s.scalars(select(ApiToken)))
    finally:
        ctx.engine.dispose()
    assert kinds == [("api", None), ("sender", "ws_sales")]


def test_a_later_run_follows_the_demo_server_to_its_port_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / ".elegere"
    assert prepare_store(data_dir)[0]  # the seed as it is: made-up hosts (the tests' store)
    assert _servers(data_dir)["srv_sales_mailer"]["server"] == "mail.acme.example"
    # The user points the relay at a server of their own.
    ctx = ServiceContext.build(Settings(data_dir=data_dir))
    try:
        with ctx.sessions() as s:
            relay = s.get(EmailServerRow, "srv_acme_relay")
            assert relay is not None
            relay.settings = {**relay.settings, "server": "smtp.mine.org"}
            s.commit()
    finally:
        ctx.engine.dispose()
    moved = dataclasses.replace(DEMO, port=2526)
    first = prepare_demo(data_dir, ADMIN, DEMO)
    assert not first.added and first.routed == ["Sales Mailer"]
    again = prepare_demo(data_dir, ADMIN, moved)
    assert again.routed == ["Sales Mailer"]
    servers = _servers(data_dir)
    assert servers["srv_sales_mailer"]["port"] == 2526
    assert servers["srv_acme_relay"]["server"] == "smtp.mine.org"


def test_the_printed_send_command_names_the_data_directory_only_when_not_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    plain = send_command((tmp_path / ".elegere").resolve())
    assert "ELEGERE_DATA_DIR" not in plain
    assert "send --workspace Sales --custom-action 'Send quote' --to you@example.org" in plain
    elsewhere = send_command(tmp_path / "data dir")
    assert elsewhere.startswith(f"ELEGERE_DATA_DIR='{tmp_path}/data dir' ")
    # As a shell runs it: the variable reaches the command.
    shown = subprocess.run(
        ["sh", "-c", elsewhere.split(" send ")[0].rsplit(" ", 1)[0] + " env"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"ELEGERE_DATA_DIR={tmp_path}/data dir\n" in shown.stdout
