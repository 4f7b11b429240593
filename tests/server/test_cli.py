"""The `elegere` command as a person runs it: migrate, seed, token create, serve --demo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import clean_env, elegere, serving


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return elegere(*args, cwd=cwd, env=clean_env(**env))


@pytest.mark.slow
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


def test_serve_demo_prints_address_and_working_tokens(tmp_path: Path) -> None:
    with serving(tmp_path, clean_env(), "--demo", stdout=subprocess.PIPE) as service:
        proc = service.process
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("analyst@acme.example" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                pytest.fail("serve exited early:\n" + "".join(lines) + service.stderr())
            lines.append(line)
        output = "".join(lines)
        assert service.url in output
        token = re.search(r"admin@acme\.example\s+(elg_\S+)", output)
        assert token, output
        r = httpx.get(
            f"{service.url}/api/v1/workspaces",
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert [w["name"] for w in r.json()] == ["Sales"]
    assert proc.returncode in (0, -15)


@pytest.mark.slow
def test_rotate_key_re_encrypts_every_secret_under_a_new_key(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import create_engine, text

    assert run(["seed", "--demo"], tmp_path).returncode == 0
    key_file = tmp_path / ".elegere" / "secret.key"
    old_key = key_file.read_bytes().strip()
    engine = create_engine(f"sqlite:///{tmp_path / '.elegere' / 'elegere.db'}")

    def sealed() -> dict[str, tuple[str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, secrets_sealed, version FROM email_servers"))
            return {i: (s, v) for i, s, v in rows}

    before = sealed()
    result = run(["rotate-key"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Re-encrypted the secrets of 2 server(s)" in result.stderr
    new_key = key_file.read_bytes().strip()
    assert new_key != old_key and b"\n" not in new_key
    assert key_file.stat().st_mode & 0o777 == 0o600
    after = sealed()
    for ident, (token, version) in after.items():
        assert token != before[ident][0] and version == before[ident][1]
        # Readable with the new key alone, with the same value as before.
        assert Fernet(new_key).decrypt(token) == Fernet(old_key).decrypt(before[ident][0])
    engine.dispose()
    # With the key in the environment, the new key must be given.
    env_key = Fernet.generate_key().decode()
    (tmp_path / "other").mkdir()
    refused = run(["rotate-key"], tmp_path / "other", ELEGERE_SECRET_KEY=env_key)
    assert refused.returncode == 2 and "--new-key" in refused.stderr
