"""`elegere send` and `elegere token create --sender`, run as a person runs them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from elegere_widgets.server.store.tables import MessageRow
from tests.fixtures.service import RunningService
from tests.server.test_cli import run


def test_sender_token_create(tmp_path: Path) -> None:
    assert run(["seed", "--demo"], tmp_path).returncode == 0
    for workspace in ("Sales", "sales", "ws_sales"):
        token = run(["token", "create", "--sender", "--workspace", workspace], tmp_path)
        assert token.returncode == 0, token.stderr
        assert re.fullmatch(r"elg_[A-Za-z0-9_-]{40,}\n", token.stdout)
    half = run(["token", "create", "--sender"], tmp_path)
    assert half.returncode == 2 and "--workspace" in half.stderr
    unknown = run(["token", "create", "--sender", "--workspace", "Nowhere"], tmp_path)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "no workspace named 'Nowhere'; the workspaces are: Sales, Support." in unknown.stderr
    nobody = run(
        ["token", "create", "--sender", "--workspace", "Sales", "--user", "no@acme.example"],
        tmp_path,
    )
    assert nobody.returncode == 1 and "no user 'no@acme.example'" in nobody.stderr
    owner = ["--user", "DELEGATE@acme.example", "--expires-in", "2h"]
    expiring = run(["token", "create", "--sender", "--workspace", "Support", *owner], tmp_path)
    assert expiring.returncode == 0, expiring.stderr
    listed = run(["token", "list"], tmp_path).stdout.splitlines()
    assert [line.split()[1:3] for line in listed[1:]] == [["admin@acme.example", "sender"]] * 3 + [
        ["delegate@acme.example", "sender"]
    ]
    assert listed[-1].split()[-1] == "UTC" and "never" not in listed[-1]  # it expires


def _send(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    message = ["--to", "x@example.org", "--subject", "Quote", "--text", "Hi"]
    return run(["send", *args, *message], tmp_path, **env)


def test_send_by_names_prints_the_id_and_message_id(
    service: RunningService, tmp_path: Path
) -> None:
    env = {"ELEGERE_URL": service.url, "ELEGERE_TOKEN": service.tokens["admin@acme.example"]}
    args = ["send", "--workspace", "Sales", "--custom-action", "Send quote"]
    sent = run(
        [*args, "--to", "x@example.org", "--subject", "Grüße", "--text", "Hallo"], tmp_path, **env
    )
    assert sent.returncode == 0, sent.stderr
    ident, message_id, status, _, server = sent.stdout.split()
    assert status == "queued" and server == "srv_sales_mailer" and message_id.startswith("<")
    with service.ctx.sessions() as s:
        row = s.get(MessageRow, ident)
        assert row is not None and row.subject == "Grüße" and row.message_id == message_id
    bad = run([*args, "--to", "x@example.org", "--subject", "a\nb"], tmp_path, **env)
    assert bad.returncode == 2 and "subject" in bad.stderr and "Traceback" not in bad.stderr
    no_token = run([*args, "--to", "x@example.org", "--subject", "s"], tmp_path)
    assert no_token.returncode == 2 and "token create" in no_token.stderr
    # A name that is not there: the ones that are.
    nowhere = _send(tmp_path, "--workspace", "Nowhere", "--notification", "reply", **env)
    assert nowhere.returncode == 2
    assert "no workspace 'Nowhere' you can see; yours: 'Sales'." in nowhere.stderr
    typo = _send(tmp_path, "--workspace", "sales", "--scheduler-job", "Weekly", **env)
    assert typo.returncode == 2
    assert "no scheduler job 'Weekly' in Sales; its scheduler jobs: 'Weekly digest'" in typo.stderr


def test_a_sender_token_sends_by_names_or_ids(service: RunningService, tmp_path: Path) -> None:
    from elegere_widgets.server.seed import create_sender_token

    env = {"ELEGERE_URL": service.url, "ELEGERE_TOKEN": create_sender_token(service.ctx, "Sales")}
    for names in (
        ["--workspace", "Sales", "--custom-action", "Send quote"],
        ["--workspace", "sales", "--custom-action", "SEND QUOTE"],
        ["--workspace", "ws_sales", "--custom-action", "ca_send_quote"],
    ):
        sent = _send(tmp_path, *names, **env)
        assert sent.returncode == 0, (names, sent.stderr)
        assert sent.stdout.split()[2:] == ["queued", "via", "srv_sales_mailer"]
        assert "HTTP Request" not in sent.stderr  # no log line per request
    typo = _send(tmp_path, "--workspace", "Sales", "--custom-action", "Send quotes", **env)
    assert typo.returncode == 1
    assert "no custom action named 'Send quotes' in Sales; its custom actions: 'Send quote'" in (
        typo.stderr
    )
    elsewhere = _send(tmp_path, "--workspace", "Support", "--notification", "reply", **env)
    assert elsewhere.returncode == 1
    assert "its own workspace, Sales (ws_sales); make a sender token for 'Support'" in (
        elsewhere.stderr
    )


def test_send_finds_the_service_make_run_wrote_down(
    service: RunningService, tmp_path: Path
) -> None:
    """With no URL and no token, `elegere send` uses the data directory's send.json (what
    `make run` writes); a URL or token given makes it use none of the file."""
    from elegere_widgets.server.seed import create_sender_token
    from elegere_widgets.server.send_cli import write_send_file

    data_dir = tmp_path / ".elegere"
    data_dir.mkdir(mode=0o700)
    path = write_send_file(data_dir, service.url, create_sender_token(service.ctx, "Sales"))
    assert path.stat().st_mode & 0o777 == 0o600
    sent = _send(tmp_path, "--workspace", "Sales", "--custom-action", "Send quote")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.split()[2:] == ["queued", "via", "srv_sales_mailer"]
    not_the_file = _send(
        tmp_path, "--url", service.url, "--workspace", "Sales", "--notification", "reply"
    )
    assert not_the_file.returncode == 2 and "no token" in not_the_file.stderr
    write_send_file(data_dir, "http://127.0.0.1:9", "elg_gone")  # make run was killed
    gone = _send(tmp_path, "--workspace", "Sales", "--notification", "reply")
    assert gone.returncode == 1
    assert "the URL came from .elegere/send.json" in gone.stderr
    assert "is it still running?" in gone.stderr
