"""The migrations build exactly the tables the code declares, and go back down cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

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
