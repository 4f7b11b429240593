"""No lost updates and nothing half-done, under concurrent requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from elegere_widgets.client import Client
from elegere_widgets.errors import BadReplacement, ElegereError, ServerInUse, StaleVersion
from elegere_widgets.models import EmailServerPatch
from elegere_widgets.server.store.tables import CustomActionRow, EmailServerRow, SchedulerJobRow
from tests.fixtures.service import RunningService, add_server_row

SALES = "ws_sales"
MAILER, RELAY = "srv_sales_mailer", "srv_acme_relay"


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same moment; each result is a value or the exception raised."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return call()
        except ElegereError as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_two_admins_update_the_same_version_exactly_one_wins(
    client_for: Callable[[str], Client], service: RunningService
) -> None:
    admin = client_for("admin@acme.example")
    admin.workspaces.grant_admin(SALES, "analyst@acme.example")
    other = client_for("analyst@acme.example")
    for round_ in range(5):
        version = admin.email_servers.get(SALES, MAILER).version
        results = race(
            partial(
                admin.email_servers.update,
                SALES,
                MAILER,
                EmailServerPatch(settings={"sender_address": f"a{round_}@acme.example"}),
                version=version,
            ),
            partial(
                other.email_servers.update,
                SALES,
                MAILER,
                EmailServerPatch(settings={"sender_address": f"b{round_}@acme.example"}),
                version=version,
            ),
        )
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], StaleVersion)
        stored = admin.email_servers.get(SALES, MAILER)
        assert stored.version == version + 1
        assert stored.settings.sender_address == winners[0].settings.sender_address  # type: ignore[union-attr]


def _dangling_usages(service: RunningService) -> list[str]:
    with service.ctx.sessions() as s:
        servers = set(s.scalars(select(EmailServerRow.id)))
        return [
            f"{row.name} -> {row.email_server_id}"
            for model in (CustomActionRow, SchedulerJobRow)
            for row in s.scalars(select(model))
            if row.email_server_id not in servers
        ]


def test_delete_with_replacement_racing_the_replacements_delete_stays_consistent(
    admin: Client, service: RunningService
) -> None:
    for round_ in range(4):
        backup = f"srv_backup_{round_}"
        add_server_row(service, backup, f"Backup {round_}", SALES)
        # Mailer's usages move to Backup while Backup itself is being deleted.
        current = admin.email_servers.list(SALES)
        in_use = next(s for s in current if s.usage.total and not s.inherited)
        results = race(
            partial(admin.email_servers.delete, SALES, in_use.id, replacement_id=backup),
            partial(admin.email_servers.delete, SALES, backup),
        )
        assert not _dangling_usages(service), results
        moved, removed = results
        # Either the move won (and Backup, now in use, refused to go), or Backup went first
        # (and the move found no replacement): never both, never neither.
        assert (moved is None and isinstance(removed, ServerInUse)) or (
            isinstance(moved, BadReplacement) and removed is None
        ), results
    usages = {a.name for a in admin.custom_actions.list(SALES)}
    assert usages == {"Send quote"}


def test_deleting_an_unused_server_racing_a_new_usage_of_it_stays_consistent(
    admin: Client, service: RunningService
) -> None:
    """The product has no endpoint that adds a usage (eLegere's designers do), so the new
    custom action is written straight into the store, in its own transaction."""
    from sqlalchemy.exc import IntegrityError

    for round_ in range(4):
        target = f"srv_target_{round_}"
        add_server_row(service, target, f"Target {round_}", SALES)

        def add_usage(target: str = target, round_: int = round_) -> str:
            try:
                with service.ctx.sessions() as s:
                    s.add(
                        CustomActionRow(
                            id=f"ca_race_{round_}",
                            workspace_id=SALES,
                            name=f"Race {round_}",
                            email_server_id=target,
                        )
                    )
                    s.commit()
                return "added"
            except IntegrityError:
                return "refused"

        deleted, usage = race(partial(admin.email_servers.delete, SALES, target), add_usage)
        assert not _dangling_usages(service), (deleted, usage)
        # Either the delete went first (and the store refused a usage of a gone server), or
        # the usage went first (and the delete, finding it, asked for a replacement).
        assert (deleted is None and usage == "refused") or (
            isinstance(deleted, ServerInUse) and usage == "added"
        ), (deleted, usage)


def test_reads_answer_while_a_writer_holds_the_store(service: RunningService) -> None:
    """A GET never queues behind a write in progress (SQLite: WAL readers with a plain BEGIN;
    the writers' BEGIN IMMEDIATE would make it wait for the lock, up to its 30 s timeout)."""
    reader = Client(service.url, service.tokens["admin@acme.example"], timeout=5)
    table = EmailServerRow.__table__
    with service.ctx.engine.connect() as writer, writer.begin():
        writer.execute(
            table.update().where(table.c.id == MAILER).values(name="Renamed, not committed")
        )
        listed = {s.id: s.name for s in reader.email_servers.list(SALES)}
        fetched = reader.email_servers.get(SALES, MAILER)
        writer.rollback()
    reader.close()
    assert listed[MAILER] == "Sales Mailer"
    assert fetched.name == "Sales Mailer"


def test_a_writer_waits_for_the_writer_before_it_then_writes(service: RunningService) -> None:
    """SQLite: a second writer tries for the lock again and again (never "database is
    locked" while the first holds it), goes in once it is free, and leaves its connection with
    the usual busy timeout."""
    if service.ctx.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock; PostgreSQL locks rows")
    table = EmailServerRow.__table__
    rename = table.update().where(table.c.id == MAILER)
    outcome: list[object] = []
    finished = threading.Event()

    def second_writer() -> None:
        try:
            with service.ctx.engine.begin() as conn:
                conn.execute(rename.values(name="Second"))
                raw = conn.connection.dbapi_connection
                assert raw is not None
                outcome.append(raw.execute("PRAGMA busy_timeout").fetchone()[0])
        except Exception as exc:  # shown by the assert below
            outcome.append(exc)
        finished.set()

    with service.ctx.engine.connect() as first, first.begin():
        first.execute(rename.values(name="First"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert not finished.wait(0.5), outcome  # it waits while the first holds the lock
    thread.join(30)
    assert outcome == [30_000]
    with service.ctx.sessions() as session:
        assert session.get(EmailServerRow, MAILER).name == "Second"  # type: ignore[union-attr]
