"""The `elegere` command as a person runs it: migrate, seed, token create, serve --demo."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ELEGERE = [sys.executable, "-m", "elegere_widgets.server.cli"]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")} | env
    return subprocess.run(
        [*ELEGERE, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_seed_is_idempotent_and_token_create_prints_only_a_token(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0
    first = run(["seed", "--demo"], tmp_path)
    assert first.returncode == 0 and "Demo data added" in first.stderr
    second = run(["seed", "--demo"], tmp_path)
    assert second.returncode == 0 and "left it as it is" in second.stderr
    token = run(["token", "create", "--user", "admin@acme.example"], tmp_path)
    assert token.returncode == 0
    assert re.fullmatch(r"elg_[A-Za-z0-9_-]{40,}\n", token.stdout)
    # The embedded default: a SQLite file and a key readable by its owner only.
    assert (tmp_path / ".elegere" / "elegere.db").exists()
    assert (tmp_path / ".elegere" / "secret.key").stat().st_mode & 0o777 == 0o600
    unknown = run(["token", "create", "--user", "nobody@acme.example"], tmp_path)
    assert unknown.returncode == 1 and "no user" in unknown.stderr and unknown.stdout == ""


def test_bad_secret_key_is_a_plain_error(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path, ELEGERE_SECRET_KEY="not-a-key")
    assert result.returncode == 2
    assert "ELEGERE_SECRET_KEY must be a Fernet key" in result.stderr
    assert "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_prints_address_and_working_tokens(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
    proc = subprocess.Popen(
        [*ELEGERE, "serve", "--demo", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("analyst@acme.example" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                pytest.fail("serve exited early:\n" + "".join(lines))
            lines.append(line)
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output
        token = re.search(r"admin@acme\.example\s+(elg_\S+)", output)
        assert token, output
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/workspaces",
                    headers={"Authorization": f"Bearer {token.group(1)}"},
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert [w["name"] for w in r.json()] == ["Sales"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode in (0, -15)
