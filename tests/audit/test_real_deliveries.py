"""Deliveries are real: messages sent through the API and a real worker process show up in
the CSV export and ``audit.deliveries_frame`` with their outcome, apart from the seeded
history."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from elegere_widgets import audit
from elegere_widgets.client import Client
from elegere_widgets.models import MessageSender
from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.store.tables import CustomActionRow, MessageRow, SchedulerJobRow
from tests.fixtures.messages import add_peer_server
from tests.fixtures.processes import store_env
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .support import SALES


def _wait_until(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    """A generous deadline against hanging forever; not a speed check."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.05)


def _waiting(ctx: ServiceContext) -> int:
    """Messages a worker still has to try (a deferred one waits for its retry: not counted)."""
    with ctx.sessions() as s:
        return (
            s.scalar(select(func.count()).where(MessageRow.status.in_(("queued", "sending")))) or 0
        )


@pytest.fixture
def worker(service: RunningService, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Starts ``elegere worker`` on the service's store (once), for the test to call."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        env = store_env(service.ctx, ELEGERE_SWEEP_INTERVAL_S="0.5")
        with open(tmp_path / "worker.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "elegere_widgets.server.cli", "worker"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sent_deferred_and_failed_messages_are_real_deliveries_in_the_frame_and_csv(
    admin: Client, service: RunningService, worker: Callable[[], None]
) -> None:
    ctx = service.ctx
    with (
        SmtpPeer("plain", refuse_recipients=("nobody@example.org",)) as good,
        SmtpPeer(
            "plain",
            refuse_senders=("sales@acme.example",),
            refuse_reply="451 4.3.0 Mailbox busy, try again later",
        ) as busy,
    ):
        add_peer_server(ctx, good, "srv_good")
        add_peer_server(ctx, busy, "srv_busy")
        with ctx.sessions.begin() as s:
            s.execute(
                update(CustomActionRow)
                .where(CustomActionRow.id == "ca_send_quote")
                .values(email_server_id="srv_good")
            )
            s.execute(
                update(SchedulerJobRow)
                .where(SchedulerJobRow.id == "job_weekly_digest")
                .values(email_server_id="srv_busy")
            )
        quote = MessageSender(kind="custom_action", id="ca_send_quote")
        digest = MessageSender(kind="scheduler_job", id="job_weekly_digest")
        sent = admin.messages.send(SALES, sender=quote, to=["ann@example.org"], subject="Q1")
        failed = admin.messages.send(SALES, sender=quote, to=["nobody@example.org"], subject="Q2")
        deferred = admin.messages.send(SALES, sender=digest, to=["bob@example.org"], subject="D")
        worker()
        _wait_until("every message tried", lambda: _waiting(ctx) == 0)

    frame = audit.deliveries_frame(admin, SALES)

    real = frame[~frame["history"]]
    assert frame["history"].dtype == bool and frame["history"].sum() > 100  # the seed's rows
    assert frame.loc[frame["history"], "message_id"].isna().all()
    by_message = {row.message_id: row for row in real.itertuples()}
    assert set(by_message) == {sent.id, failed.id, deferred.id}
    ok, refused, later = by_message[sent.id], by_message[failed.id], by_message[deferred.id]
    assert (ok.status, ok.server_id, ok.kind, ok.reply_code, ok.stage) == (
        "sent",
        "srv_good",
        "custom_action",
        250,
        "data",
    )
    assert (refused.status, refused.reply_code, refused.stage) == ("failed", 550, "recipient")
    assert "User unknown" in refused.error
    assert (later.status, later.server_id, later.kind, later.reply_code) == (
        "deferred",
        "srv_busy",
        "scheduler_job",
        451,
    )
    assert "try again later" in later.error
    assert str(frame["reply_code"].dtype) == "Int64"
    assert list(frame["status"].cat.categories) == list(audit.DELIVERY_STATUSES)

    # The CSV says the same, cell for cell.
    with admin.deliveries.export(SALES) as body:
        rows = list(csv.DictReader(io.TextIOWrapper(body, encoding="utf-8", newline="")))
    real_rows = {r["message_id"]: r for r in rows if r["history"] == "false"}
    assert set(real_rows) == {sent.id, failed.id, deferred.id}
    assert real_rows[failed.id]["reply_code"] == "550"
    assert real_rows[deferred.id]["status"] == "deferred"
    assert {r["history"] for r in rows} == {"true", "false"}
