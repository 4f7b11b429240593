"""The list serves each row's stored part from what it made before, for as long as the row's
stored values stay the same: any change to a row shows on the next list, and a server's checks
are summed up on its row exactly as the history says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from elegere_widgets.client import Client
from elegere_widgets.models import ConnectionTestResult, EmailServer, EmailServerPatch, Stage
from elegere_widgets.server.services.server_checks import record_check, summarize_checks
from elegere_widgets.server.store.tables import EmailServerRow
from tests.fixtures.service import RunningService, add_server_row

SALES = "ws_sales"


def _listed(admin: Client, server_id: str) -> EmailServer:
    return next(s for s in admin.email_servers.list(SALES) if s.id == server_id)


def test_a_change_to_a_row_shows_on_the_next_list_whoever_made_it(
    admin: Client, service: RunningService
) -> None:
    add_server_row(service, "srv_memo", "Memo", SALES)
    first = admin.email_servers.get(SALES, "srv_memo")
    assert _listed(admin, "srv_memo") == first
    assert _listed(admin, "srv_memo") == first  # the second list, from what it made before

    # Through the API: a rename and a pace.
    patch = EmailServerPatch(name="Memo renamed", max_per_minute=30)
    admin.email_servers.update(SALES, "srv_memo", patch, version=first.version)
    renamed = _listed(admin, "srv_memo")
    assert (renamed.name, renamed.max_per_minute) == ("Memo renamed", 30)
    assert renamed == admin.email_servers.get(SALES, "srv_memo")

    # Behind the service's back (another process, a script): the settings' text changes.
    with service.ctx.sessions.begin() as s:
        row = s.get(EmailServerRow, "srv_memo")
        assert row is not None
        s.execute(
            update(EmailServerRow)
            .where(EmailServerRow.id == "srv_memo")
            .values(settings={**row.settings, "port": 2525})
        )
    assert _listed(admin, "srv_memo").settings.port == 2525

    # A check: the last test and the health follow.
    with service.ctx.sessions.begin() as s:
        record_check(s, "srv_memo", _result(False), "scheduled")
    checked = _listed(admin, "srv_memo")
    assert checked.last_test is not None and not checked.last_test.ok
    assert checked.health is not None and checked.health.status == "degraded"
    assert checked == admin.email_servers.get(SALES, "srv_memo")


def _result(ok: bool) -> ConnectionTestResult:
    detail = "220 ready" if ok else "connection refused"
    stage = Stage(name="connect", ok=ok, elapsed_ms=8, detail=detail)
    return ConnectionTestResult(ok=ok, server_type="smtp", elapsed_ms=8, stages=[stage])


def _summary(service: RunningService, server_id: str) -> tuple[object, ...]:
    with service.ctx.sessions() as s:
        row = s.execute(
            select(
                EmailServerRow.last_checked_at,
                EmailServerRow.last_check_detail,
                EmailServerRow.failed_checks,
                EmailServerRow.failing_since,
            ).where(EmailServerRow.id == server_id)
        ).one()
    return tuple(row)


def test_checks_recorded_one_by_one_sum_up_as_the_history_does(service: RunningService) -> None:
    add_server_row(service, "srv_sum", "Sum", SALES)
    start = datetime.now(UTC) - timedelta(hours=1)
    sequence = [_result(ok) for ok in (True, False, True, False, False, False)]
    summaries = []
    for i, result in enumerate(sequence):
        with service.ctx.sessions.begin() as s:
            record_check(s, "srv_sum", result, "scheduled", start + timedelta(minutes=i))
        summaries.append(_summary(service, "srv_sum"))
    # After the last one: three failed in a row since the fourth check.
    at, detail, failed, since = summaries[-1]
    assert (failed, detail) == (3, "failed at connect: connection refused")
    assert at == start + timedelta(minutes=5) and since == start + timedelta(minutes=3)
    assert summaries[2][2:] == (0, None)  # a pass ends the run

    # Summed up again from the kept checks: the same.
    with service.ctx.sessions.begin() as s:
        s.execute(
            update(EmailServerRow)
            .where(EmailServerRow.id == "srv_sum")
            .values(
                last_checked_at=None, last_check_detail=None, failed_checks=0, failing_since=None
            )
        )
        summarize_checks(s.connection())
    assert _summary(service, "srv_sum") == summaries[-1]
