"""The secret key and the service's files, as an operator meets them (issue 11.4 and 11.6).

A store that holds sealed secrets never gets a new key: `serve`, `migrate` and `rotate-key`
refuse with a message naming the key file and ELEGERE_SECRET_KEY; only an empty store gets
one. The data directory is 0700, the store (with its -wal and -shm) and the key 0600, and a
start warns when an existing key file or store can be read by others.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from elegere_widgets.server.config import Settings
from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.seed import seed_demo
from elegere_widgets.server.store.db import migrate
from tests.fixtures.processes import free_port

from .test_cli import run


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_missing_key_for_a_store_with_secrets_is_refused_not_made(tmp_path: Path) -> None:
    assert run(["seed", "--demo"], tmp_path).returncode == 0
    key_file = tmp_path / ".elegere" / "secret.key"
    key_file.unlink()

    for args in (["serve", "--port", str(free_port())], ["rotate-key"], ["migrate"]):
        result = run(args, tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert f"{key_file} does not exist" in result.stderr
        assert "ELEGERE_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr
        assert not key_file.exists(), args  # no new key was made


def test_the_key_from_the_variable_serves_a_store_without_its_key_file(tmp_path: Path) -> None:
    assert run(["seed", "--demo"], tmp_path).returncode == 0
    key_file = tmp_path / ".elegere" / "secret.key"
    key = key_file.read_text().strip()
    key_file.unlink()
    assert run(["migrate"], tmp_path, ELEGERE_SECRET_KEY=key).returncode == 0
    assert not key_file.exists()


def test_an_empty_store_gets_a_key_and_private_files(tmp_path: Path) -> None:
    """What the first `make run` does: its launcher prepares an empty .elegere in-process."""
    from elegere_widgets.dashboard.launch import prepare_store

    data_dir = tmp_path / ".elegere"
    added, token = prepare_store(data_dir)
    assert added and token.startswith("elg_")
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "secret.key") == 0o600
    assert _mode(data_dir / "elegere.db") == 0o600


def test_the_write_ahead_log_files_are_private_too(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # type: ignore[call-arg]
    ctx = ServiceContext.build(settings)
    try:
        migrate(ctx.engine)
        seed_demo(ctx)
        with ctx.engine.connect() as conn:  # held open: SQLite keeps -wal and -shm meanwhile
            conn.execute(text("SELECT count(*) FROM email_servers")).scalar()
            db = tmp_path / "data" / "elegere.db"
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                assert path.exists() and _mode(path) == 0o600, path
        assert _mode(tmp_path / "data") == 0o700
    finally:
        ctx.engine.dispose()


def test_a_start_warns_when_others_can_read_the_key_or_the_store(tmp_path: Path) -> None:
    assert run(["seed", "--demo"], tmp_path).returncode == 0
    data_dir = tmp_path / ".elegere"
    quiet = run(["migrate"], tmp_path)
    assert quiet.returncode == 0 and "other users" not in quiet.stderr
    os.chmod(data_dir / "secret.key", 0o644)
    os.chmod(data_dir / "elegere.db", 0o640)

    result = run(["migrate"], tmp_path)

    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "other users" in line]
    assert len(warnings) == 2, result.stderr
    assert any("secret.key" in w and "chmod 600" in w for w in warnings)
    assert any("elegere.db" in w and "chmod 600" in w for w in warnings)


def test_the_embedded_queue_is_private_too(tmp_path: Path) -> None:
    # It names the messages to send (and SQLite gives its -wal and -shm the file's mode).
    from elegere_widgets.server.worker.queue import build_huey

    settings = Settings(data_dir=tmp_path / "data")  # type: ignore[call-arg]
    huey = build_huey(settings)
    assert len(huey) == 0  # opened: the file and its tables exist
    assert _mode(tmp_path / "data") == 0o700
    assert _mode(tmp_path / "data" / "queue.db") == 0o600
