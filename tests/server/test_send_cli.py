"""`elegere send` and `elegere token create --sender`, run as a person runs them."""

from __future__ import annotations

import re
from pathlib import Path

from elegere_widgets.server.store.tables import MessageRow
from tests.fixtures.service import RunningService
from tests.server.test_cli import run


def test_sender_token_create(tmp_path: Path) -> None:
    assert run(["seed", "--demo"], tmp_path).returncode == 0
    token = run(["token", "create", "--sender", "--workspace", "Sales"], tmp_path)
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"elg_[A-Za-z0-9_-]{40,}\n", token.stdout)
    half = run(["token", "create", "--sender"], tmp_path)
    assert half.returncode == 2 and "--workspace" in half.stderr
    unknown = run(["token", "create", "--sender", "--workspace", "Nowhere"], tmp_path)
    assert unknown.returncode == 1 and "no workspace" in unknown.stderr


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


def test_a_sender_token_sends_by_ids_and_is_told_to_use_them_for_names(
    service: RunningService, tmp_path: Path
) -> None:
    from elegere_widgets.server.seed import create_sender_token

    env = {"ELEGERE_URL": service.url, "ELEGERE_TOKEN": create_sender_token(service.ctx, "Sales")}
    message = ["--to", "x@example.org", "--subject", "Quote"]
    by_names = run(
        ["send", "--workspace", "Sales", "--custom-action", "Send quote", *message],
        tmp_path,
        **env,
    )
    assert by_names.returncode == 1
    assert "pass ids instead" in by_names.stderr and "'Send quote'" in by_names.stderr
    assert "HTTP Request" not in by_names.stderr  # no log line per request
    by_ids = run(
        ["send", "--workspace", "ws_sales", "--custom-action", "ca_send_quote", *message],
        tmp_path,
        **env,
    )
    assert by_ids.returncode == 0, by_ids.stderr
    assert by_ids.stdout.split()[2:] == ["queued", "via", "srv_sales_mailer"]
