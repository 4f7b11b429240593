"""List servers: GET /workspaces/{ws}/email-servers through the client, 1,000 own + 100
inherited servers with usages, against the same rows read by one SQL query (SQLAlchemy Core).

Targets (issue 7): p50 ≤ 3× the baseline, and no N+1: the number of SQL statements one call
runs is the same for 100 servers as for 1,100 (counted with a ``before_cursor_execute`` listener
on the service's own engine; the service runs in this process, in a thread).

Then with health to compute (issue 14): every server gets a month of daily checks (30 each;
one server in ten failing its last three, one in ten its last one) and the day's deliveries
(10 each, one server in ten with a third failed or deferred; plus older ones the health must
skip), and the list is timed again against the same baseline: target still ≤ 3×, the health
shown must be what the history says, and the statements per call stay as many.

    .venv/bin/python benchmarks/bench_list_servers.py [--quick] [--database sqlite|postgresql|both]
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import (
    ORG,
    SALES,
    Figure,
    database,
    database_kinds,
    interleaved,
    median,
    ms,
    note,
    parse_args,
    percentile,
    report,
    seed_servers,
    service_in_thread,
)
from sqlalchemy import Engine, and_, create_engine, event, func, insert, or_, select

from elegere_widgets.client import Client
from elegere_widgets.server.services.server_checks import summarize_checks
from elegere_widgets.server.store.tables import (
    CustomActionRow,
    DeliveryRow,
    EmailServerRow,
    SchedulerJobRow,
    ServerCheckRow,
)

OWN, INHERITED = 1000, 100
SMALL_OWN, SMALL_INHERITED = 90, 10  # with the demo's two servers: about 100
CHECKS, DELIVERIES_TODAY, DELIVERIES_BEFORE = 30, 10, 20


class StatementCounter:
    """Counts the statements an engine sends to the database (every thread)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        with self._lock:
            self.count += 1

    def during(self, fn: Any) -> int:
        before = self.count
        fn()
        return self.count - before


def baseline_query(workspace: str, organization: str) -> Any:
    """The rows the endpoint shows, with their usage counts, in one statement.

    Counts come from grouped derived tables joined once; correlated subqueries would make
    SQLite pick the workspace index and scan every usage row once per server.
    """
    s = EmailServerRow.__table__
    counts = [
        select(u.c.email_server_id, func.count().label("n"))
        .where(u.c.workspace_id == workspace)
        .group_by(u.c.email_server_id)
        .subquery()
        for u in (CustomActionRow.__table__, SchedulerJobRow.__table__)
    ]
    visible = or_(
        s.c.workspace_id == workspace,
        and_(s.c.organization_id == organization, s.c.workspace_id.is_(None)),
    )
    joined = s
    for c in counts:
        joined = joined.outerjoin(c, c.c.email_server_id == s.c.id)
    return (
        select(
            s.c.id,
            s.c.workspace_id,
            s.c.organization_id,
            s.c.type,
            s.c.name,
            s.c.version,
            s.c.settings,
            s.c.secrets_set,
            s.c.created_at,
            s.c.updated_at,
            s.c.last_test,
            *(func.coalesce(c.c.n, 0) for c in counts),
        )
        .select_from(joined)
        .where(visible)
        .order_by(s.c.workspace_id.is_not(None), s.c.name_key)
    )


def add_history(engine: Engine, server_ids: list[str]) -> dict[str, int]:
    """A month of daily checks and the deliveries of the last two days for every server, in
    the store's own tables; the health statuses the list must then show, counted."""
    now = datetime.now(UTC)
    checks: list[dict[str, object]] = []
    deliveries: list[dict[str, object]] = []
    expected = {"healthy": 0, "degraded": 0, "failing": 0}
    for n, server_id in enumerate(server_ids):
        # Newest first: failing = the last three failed; degraded = the last one did, or a
        # third of the day's deliveries failed or were deferred.
        failed_checks = 3 if n % 10 == 1 else 1 if n % 10 == 2 else 0
        bad_deliveries = n % 10 == 3
        expected[
            "failing"
            if failed_checks == 3
            else "degraded"
            if failed_checks or bad_deliveries
            else "healthy"
        ] += 1
        for day in range(CHECKS):
            ok = day >= failed_checks
            checks.append(
                {
                    "id": f"chk_bench_{n:05d}_{day:02d}",
                    "email_server_id": server_id,
                    "checked_at": now - timedelta(days=day, minutes=n % 600),
                    "ok": ok,
                    "failed_stage": None if ok else "connect",
                    "elapsed_ms": 120 if ok else 15000,
                    "detail": "passed" if ok else "failed at connect: timed out",
                    "source": "scheduled",
                }
            )
        for i in range(DELIVERIES_TODAY + DELIVERIES_BEFORE):
            today = i < DELIVERIES_TODAY
            status = "deferred" if bad_deliveries and today and i % 3 == 0 else "sent"
            deliveries.append(
                {
                    "id": f"dlv_bench_{n:05d}_{i:02d}",
                    "workspace_id": SALES,
                    "email_server_id": server_id,
                    "email_server_name": f"Bench {n}",
                    "kind": "custom_action",
                    "recipients": ["r@example.org"],
                    "status": status,
                    "error": "451 4.7.1 try again later" if status == "deferred" else None,
                    "created_at": now - timedelta(hours=(i % 20) + (0 if today else 30)),
                    "history": False,
                }
            )
    with engine.begin() as conn:
        conn.execute(insert(ServerCheckRow), checks)
        conn.execute(insert(DeliveryRow), deliveries)
        summarize_checks(conn)  # what recording them one by one would have left on the rows
        # What autovacuum would have done by then: the planner sees the rows just added
        # (and the servers seeded before, which it took for a handful).
        conn.exec_driver_sql("ANALYZE")
    return expected


def timed_list(
    kind: str, label: str, runs: int, api: Any, core: Any, note_text: str
) -> tuple[Figure, str]:
    load = note(f"{kind}: timing {runs} interleaved runs of each{note_text}")
    times = interleaved({"api": api, "core": core}, runs=runs, warmup=3)
    p50_api, p50_core = median(times["api"]), median(times["core"])
    print(
        f"  client list: p50 {ms(p50_api)}, p90 {ms(percentile(times['api'], 90))}; "
        f"Core query: p50 {ms(p50_core)}, p90 {ms(percentile(times['core'], 90))}"
    )
    figure = Figure(
        name=label,
        measured=p50_api * 1000,
        baseline=p50_core * 1000,
        unit="ms",
        target="≤ 3×",
        met=p50_api <= 3 * p50_core,
        note=f"median of {runs} interleaved runs",
        load=load,
    )
    return figure, load


def run(kind: str, runs: int) -> list[Figure]:
    figures: list[Figure] = []
    with database(kind, "list") as url, service_in_thread(url) as svc:
        counter = StatementCounter(svc.ctx.engine)
        client = Client(svc.url, svc.token, timeout=60)
        plain = create_engine(url)
        query = baseline_query(SALES, ORG)

        def api() -> list[Any]:
            return client.email_servers.list(SALES)

        def core() -> list[Any]:
            with plain.connect() as conn:
                return list(conn.execute(query).all())

        ids = seed_servers(svc.ctx, own=SMALL_OWN, inherited=SMALL_INHERITED)
        api()  # warm: connections, caches
        small_n = len(api())
        small_statements = counter.during(api)
        ids += seed_servers(
            svc.ctx,
            own=OWN - SMALL_OWN,
            inherited=INHERITED - SMALL_INHERITED,
            start=SMALL_OWN,
        )
        servers = api()
        large_statements = counter.during(api)
        rows = core()
        assert len(servers) == len(rows), (len(servers), len(rows))
        assert servers[-1].usage.custom_actions == 1, servers[-1].usage
        inherited = sum(s.inherited for s in servers)
        note(
            f"{kind}: {len(servers)} servers ({inherited} inherited), each with usages; "
            f"statements per call: {small_statements} at {small_n} servers, "
            f"{large_statements} at {len(servers)}"
        )

        figure, load = timed_list(
            kind, f"List {len(servers):,} servers, p50 ({kind})", runs, api, core, ""
        )
        figures.append(figure)
        figures.append(
            Figure(
                name=f"List servers: SQL statements per call, {len(servers):,} vs {small_n} ({kind})",
                measured=large_statements,
                baseline=small_statements,
                unit="stmts",
                target="constant (no N+1)",
                met=large_statements == small_statements,
                load=load,
            )
        )

        expected = add_history(svc.ctx.engine, ids)
        servers = api()
        shown, seeded = dict.fromkeys(expected, 0), set(ids)
        for server in servers:
            if server.id in seeded and server.health is not None:
                shown[server.health.status] = shown.get(server.health.status, 0) + 1
        assert shown == expected, (shown, expected)
        history_statements = counter.during(api)
        assert history_statements == large_statements, (history_statements, large_statements)
        figure, _ = timed_list(
            kind,
            f"List {len(servers):,} servers with health from {CHECKS} checks each and the "
            f"day's deliveries, p50 ({kind})",
            runs,
            api,
            core,
            f"; health {expected}",
        )
        figure.note += (
            f"; {len(ids) * CHECKS:,} checks, "
            f"{len(ids) * (DELIVERIES_TODAY + DELIVERIES_BEFORE):,} deliveries; "
            f"{history_statements} statements per call"
        )
        figures.append(figure)
        client.close()
        plain.dispose()
    return figures


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        add=lambda p: p.add_argument(
            "--database", choices=["sqlite", "postgresql", "both"], default="both"
        ),
    )
    runs = 10 if args.quick else 30
    for kind in database_kinds(args.database):
        for fig in run(kind, runs):
            report(fig)


if __name__ == "__main__":
    main()
