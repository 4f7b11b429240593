"""The migrations build exactly the tables the code declares, and go back down cleanly."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from elegere_widgets.server.store.db import alembic_config, migrate
from elegere_widgets.server.store.tables import Base


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return [d for d in compare_metadata(ctx, Base.metadata)]
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert _differences(database_url) == []


def test_the_migrations_go_down_and_up_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine)
        config = alembic_config(engine)
        command.downgrade(config, "0001")
        command.upgrade(config, "head")
    finally:
        engine.dispose()
    assert _differences(database_url) == []


def test_names_that_repeat_in_a_workspace_are_numbered_when_they_become_unique(
    database_url: str,
) -> None:
    """A store written before the names were unique: the first keeps its name, a repeat
    (whatever its case) gets a number, another workspace's same name is left alone."""
    engine = create_engine(database_url)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0004")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, name) VALUES ('org', 'Org')"))
            for ws in ("ws_a", "ws_b"):
                conn.execute(
                    text(
                        "INSERT INTO workspaces (id, organization_id, name) VALUES (:id, 'org', :id)"
                    ),
                    {"id": ws},
                )
            conn.execute(
                text(
                    "INSERT INTO email_servers (id, organization_id, scope_key, type, name, "
                    "name_key, settings, secrets_set, version, created_at, updated_at) VALUES "
                    "('srv', 'org', 'org:org', 'smtp', 'S', 's', '{}', '{}', 1, :now, :now)"
                ),
                {"now": datetime.now(UTC)},
            )
            for ident, ws, name in (
                ("ca_1", "ws_a", "Send quote"),
                ("ca_2", "ws_a", "SEND QUOTE"),
                ("ca_3", "ws_a", "Send quote (2)"),
                ("ca_4", "ws_b", "Send quote"),
            ):
                conn.execute(
                    text(
                        "INSERT INTO custom_actions (id, workspace_id, name, email_server_id) "
                        "VALUES (:id, :ws, :name, 'srv')"
                    ),
                    {"id": ident, "ws": ws, "name": name},
                )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, name, name_key FROM custom_actions ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("ca_1", "Send quote", "send quote"),
        ("ca_2", "SEND QUOTE (3)", "send quote (3)"),
        ("ca_3", "Send quote (2)", "send quote (2)"),
        ("ca_4", "Send quote", "send quote"),
    ]


def test_servers_get_their_checks_summed_up_from_the_history_kept(database_url: str) -> None:
    """A store written before the rows summed up their checks (0008): each server's summary
    is made from its kept checks."""
    engine = create_engine(database_url)
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    try:
        config = alembic_config(engine)
        command.upgrade(config, "0007")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO organizations (id, name) VALUES ('org', 'Org')"))
            for ident in ("srv_failing", "srv_recovered", "srv_unchecked"):
                conn.execute(
                    text(
                        "INSERT INTO email_servers (id, organization_id, scope_key, type, name, "
                        "name_key, settings, secrets_set, version, created_at, updated_at) "
                        "VALUES (:id, 'org', 'org:org', 'smtp', :id, :id, '{}', '{}', 1, "
                        ":now, :now)"
                    ),
                    {"id": ident, "now": start},
                )
            checks = [
                ("srv_failing", True),
                ("srv_failing", False),
                ("srv_failing", False),
                ("srv_recovered", False),
                ("srv_recovered", True),
            ]
            for minute, (server, ok) in enumerate(checks):
                conn.execute(
                    text(
                        "INSERT INTO server_checks (id, email_server_id, checked_at, ok, "
                        "elapsed_ms, detail, source) VALUES (:id, :server, :at, :ok, 5, "
                        ":detail, 'scheduled')"
                    ),
                    {
                        "id": f"chk_{minute}",
                        "server": server,
                        "at": start.replace(minute=minute),
                        "ok": ok,
                        "detail": "passed" if ok else f"failed at connect: refused ({minute})",
                    },
                )
        command.upgrade(config, "head")
        with engine.connect() as conn:
            rows = {
                r[0]: tuple(r[1:])
                for r in conn.execute(
                    text(
                        "SELECT id, last_check_detail, failed_checks, failing_since IS NOT NULL "
                        "FROM email_servers"
                    )
                )
            }
            since = conn.execute(
                text("SELECT failing_since FROM email_servers WHERE id = 'srv_failing'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert rows == {
        "srv_failing": ("failed at connect: refused (2)", 2, True),
        "srv_recovered": ("passed", 0, False),
        "srv_unchecked": (None, 0, False),
    }
    # SQLite gives the stored text back (its separator depends on who wrote it), PostgreSQL a
    # time: the first failed check of the run, either way.
    moment = datetime.fromisoformat(str(since))
    assert moment.replace(tzinfo=moment.tzinfo or UTC) == start.replace(minute=1)
