"""Panel refresh: the Python side of showing a new list of email servers in the panel's table
(``ServersTable.show``, what ``EmailServersPanel`` does after every list call: first load,
Refresh, and the reload after an add or a delete), for 200 and for 2,000 servers, against
building the same number of plain ``ipywidgets.HTML`` rows (one per server, its cells as
HTML, in a VBox). Targets (issue 7): ≤ 2× the baseline at each size (medians, interleaved),
and linear growth: the cost per server at 2,000 at most 1.5× the cost per server at 200.

Not like for like, on purpose: the table shows one page (25 rows, each with a Settings and a
Delete button) and reuses its rows; the baseline builds every row, with no buttons. So the
cost of the plain baseline for one page of 25 rows is printed too, to show both sides.

No HTTP, no kernel: the servers are ``EmailServer`` models made here (as the client parses
them: 1 in 8 inherited, listed first as the service lists them; some Microsoft Graph; usage
counts; passed, failed and never-run last tests), and ipywidgets run on their dummy comm.

    .venv/bin/python benchmarks/bench_panel_refresh.py [--quick] [--runs 15]
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import ipywidgets
from _common import (
    ORG,
    SALES,
    Figure,
    median,
    ms,
    note,
    parse_args,
    percentile,
    report,
)

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServer, Workspace
from elegere_widgets.widgets import EmailServersPanel, ServersTable
from elegere_widgets.widgets.common import close_tree, esc
from elegere_widgets.widgets.formatting import (
    INHERITED_MARK,
    OWN_MARK,
    certificate_cell,
    health_text,
    last_test,
    used_by,
)
from elegere_widgets.widgets.table import COLUMNS, PAGE_SIZE

TARGET = 2.0
#: Linear growth with room for noise and caches: 10× the servers may cost at most 15× the time.
GROWTH_LIMIT = 1.5
SIZES = (200, 2000)
NOW = datetime.now(UTC)
WORKSPACE = Workspace(
    id=SALES, name="Sales", organization_id=ORG, organization_name="Acme Corporation"
)


# ---------------------------------------------------------------- the servers


def server(i: int, *, inherited: bool, name: str | None = None) -> EmailServer:
    """One server as the client would parse it from the service's answer."""
    graph = not inherited and i % 7 == 3
    settings: dict[str, Any] = (
        {
            "account": f"mailer{i}@acme.example",
            "tenant_id": "acme.example",
            "client_id": "0f5a3c1e-8d2b-4c6e-9a7f-1b2c3d4e5f60",
            "certificate_alias": f"mailer-{i}",
        }
        if graph
        else {
            "server": f"smtp{i}.acme.example",
            "port": 465 if i % 2 else 587,
            "use_ssl": True,
            "account": f"relay{i}",
            "sender_address": f"relay{i}@acme.example",
        }
    )
    tested: dict[str, Any] | None = (
        None
        if i % 5 == 4
        else {
            "ok": i % 9 != 1,
            "at": (NOW - timedelta(minutes=37 * i + 1)).isoformat(),
            "elapsed_ms": 40 + i % 300,
            "detail": "" if i % 9 != 1 else "535 5.7.8 Authentication credentials invalid",
        }
    )
    kind = "inh" if inherited else "own"
    return EmailServer.model_validate(
        {
            "id": f"srv_bench_{kind}_{i:05d}",
            "workspace_id": None if inherited else SALES,
            "organization_id": ORG,
            "scope": "organization" if inherited else "workspace",
            "inherited": inherited,
            "type": "microsoft_graph" if graph else "smtp",
            "name": name or f"Bench {kind} {i:05d}",
            "version": 1 + i % 4,
            "settings": settings,
            "secrets_set": {"certificate": True} if graph else {"password": True},
            "usage": {"custom_actions": i % 4, "scheduler_jobs": (i // 3) % 3},
            "created_at": NOW.isoformat(),
            "updated_at": NOW.isoformat(),
            "last_test": tested,
            "health": {
                "status": "degraded" if i % 9 == 1 else "healthy",
                "since": (NOW - timedelta(minutes=37 * i + 1)).isoformat(),
                "reason": "The last check failed at authenticate: 535 5.7.8."
                if i % 9 == 1
                else "The last check passed.",
            },
        }
    )


@dataclass
class Lists:
    """A workspace's list before and after adding one server, and where the new one lands."""

    before: list[EmailServer]
    after: list[EmailServer]
    added: str
    page: int


def make_lists(n: int) -> Lists:
    # n // 8 inherited (a multiple of 25 at both sizes): the added server, first of the own
    # ones by name, then tops a page, and an add or a delete changes every row on that page.
    inherited = n // 8
    before = [server(i, inherited=True) for i in range(inherited)]
    before += [server(i, inherited=False) for i in range(n - inherited)]
    added = server(n, inherited=False, name="A new relay")
    after = [*before[:inherited], added, *before[inherited:]]
    return Lists(before, after, added.id, inherited // PAGE_SIZE)


# ---------------------------------------------------------------- the baseline


def plain_row(s: EmailServer) -> str:
    """A row's cells as HTML, with the column widths of the table."""
    scope = INHERITED_MARK if s.inherited else OWN_MARK
    text, _tip = last_test(s.last_test)
    cells = (
        s.name,
        s.type_label,
        s.key_setting,
        scope,
        used_by(s.usage),
        text,
        health_text(s.health),
        certificate_cell(s).text,
    )
    spans = "".join(
        f'<span style="display:inline-block;width:{width}">{esc(cell)}</span>'
        for cell, (_title, width) in zip(cells, COLUMNS, strict=True)
    )
    return f'<div class="plain-row">{spans}</div>'


def plain_rows(servers: Sequence[EmailServer]) -> ipywidgets.VBox:
    return ipywidgets.VBox([ipywidgets.HTML(plain_row(s)) for s in servers])


# ---------------------------------------------------------------- a panel without HTTP


class _StubServers:
    def __init__(self, answers: Iterator[list[EmailServer]]) -> None:
        self._answers = answers

    def list(self, owner: str, /) -> list[EmailServer]:
        return next(self._answers)


class _StubWorkspaces:
    def get(self, name_or_id: str, /) -> Workspace:
        return WORKSPACE


class StubClient:
    """What the panel asks of a client, answered from memory: no socket, no service."""

    def __init__(self, answers: Iterator[list[EmailServer]]) -> None:
        self.email_servers = _StubServers(answers)
        self.workspaces = _StubWorkspaces()


# ---------------------------------------------------------------- timing


@dataclass
class Case:
    run: Callable[[], object]
    #: Untimed, after each run: what the run built is closed so that the kernel-side registry
    #: of widgets (``Widget._instances``) does not grow from run to run.
    dispose: Callable[[Any], None] = lambda _built: None


@dataclass
class Times:
    wall: dict[str, list[float]]
    #: This thread's CPU time: what the rebuild costs without the time other processes of a
    #: loaded machine take from it (the measured part does no I/O and starts no thread).
    cpu: dict[str, list[float]]


def measure(cases: dict[str, Case], *, runs: int, warmup: int) -> Times:
    """Like ``_common.interleaved`` (alternating order), with an untimed ``dispose`` after
    each run and a garbage collection before it, so no case pays for another's widgets."""
    names = list(cases)
    for _ in range(warmup):
        for case in cases.values():
            case.dispose(case.run())
    times = Times({name: [] for name in names}, {name: [] for name in names})
    for i in range(runs):
        for name in names if i % 2 == 0 else names[::-1]:
            case = cases[name]
            gc.collect()
            wall, cpu = time.perf_counter(), time.thread_time()
            built = case.run()
            times.cpu[name].append(time.thread_time() - cpu)
            times.wall[name].append(time.perf_counter() - wall)
            case.dispose(built)
            # Else the next case's run, rebinding `built`, would free these widgets in its time.
            del built
    return times


def cycle_show(table: ServersTable, lists: Lists) -> Callable[[], object]:
    """Each call is the next reload: after adding the server (its page, highlighted), then
    after deleting it again."""
    steps = itertools.cycle(((lists.after, lists.added), (lists.before, None)))

    def run() -> None:
        servers, focus = next(steps)
        table.show(servers, focus=focus)

    return run


def cycle_values(box: ipywidgets.VBox, lists: Lists) -> Callable[[], object]:
    """The baseline's own refresh, for information: set every existing row's HTML again."""
    steps = itertools.cycle((lists.after, lists.before))

    def run() -> None:
        for row, s in zip(box.children, next(steps), strict=False):
            row.value = plain_row(s)

    return run


def no_callback(_server: EmailServer) -> None:
    pass


def new_table(servers: Sequence[EmailServer]) -> ServersTable:
    table = ServersTable(on_settings=no_callback, on_delete=no_callback)
    table.show(servers)
    return table


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        add=lambda p: p.add_argument("--runs", type=int, default=None),
    )
    runs = args.runs or (5 if args.quick else 15)
    warmup = 1 if args.quick else 2
    lists = {n: make_lists(n) for n in SIZES}

    one_page = lists[SIZES[0]].before[:PAGE_SIZE]
    cases: dict[str, Case] = {"plain 25": Case(lambda: plain_rows(one_page), close_tree)}
    kept: list[ipywidgets.Widget] = []  # the long-lived tables, panels and boxes, closed at the end
    for n in SIZES:
        before = lists[n].before
        cases[f"first {n}"] = Case(partial(new_table, before), lambda t: t.close())
        cases[f"plain {n}"] = Case(partial(plain_rows, before), close_tree)
        table = new_table(before)
        table.go_to_page(lists[n].page)
        cases[f"refresh {n}"] = Case(cycle_show(table, lists[n]))
        box = plain_rows(before)
        cases[f"plain update {n}"] = Case(cycle_values(box, lists[n]))
        answers = itertools.cycle((lists[n].before, lists[n].after))
        panel = EmailServersPanel(cast(Client, StubClient(answers)), "Sales")
        panel.table.go_to_page(lists[n].page)
        cases[f"panel refresh {n}"] = Case(panel.refresh)
        kept += [table, box, panel]

    load = note(
        f"{' and '.join(f'{n:,}' for n in SIZES)} servers ({SIZES[0] // 8} and "
        f"{SIZES[1] // 8} inherited): {runs} interleaved runs of each of {len(cases)} cases"
    )
    times = measure(cases, runs=runs, warmup=warmup)
    for widget in kept:
        if isinstance(widget, ServersTable | EmailServersPanel):
            widget.close()
        else:
            close_tree(widget)

    def p50(name: str, clock: str = "wall") -> float:
        return median((times.wall if clock == "wall" else times.cpu)[name])

    def per_server_us(name: str, n: int, clock: str = "wall") -> float:
        return p50(name, clock) / n * 1e6

    print("  wall-clock medians (p90; CPU-time median), µs per server (wall):")
    for name, label in (
        ("first", "table, first build (new table + show)"),
        ("refresh", "table, refresh (show a new list: add, then delete)"),
        ("plain", "baseline: N plain HTML rows in a VBox"),
        ("plain update", "for information: the N plain rows' HTML set again"),
        ("panel refresh", "for information: panel.refresh() with a stub client"),
    ):
        cells = "; ".join(
            f"{n:,}: {ms(p50(f'{name} {n}'))} ({ms(percentile(times.wall[f'{name} {n}'], 90))}; "
            f"cpu {ms(p50(f'{name} {n}', 'cpu'))}), {per_server_us(f'{name} {n}', n):.1f} µs/server"
            for n in SIZES
        )
        print(f"    {label}: {cells}")
    page = p50("plain 25")
    print(
        f"  not a target: the baseline for one page ({PAGE_SIZE} plain HTML rows) takes {ms(page)} "
        f"(cpu {ms(p50('plain 25', 'cpu'))}); at 200 servers the table's first build of its page "
        f"is {p50('first 200') / page:.1f}× that, its refresh of the page "
        f"{p50('refresh 200') / page:.1f}×"
    )

    small, large = SIZES
    for kind, what in (("refresh", "refresh (show a new list)"), ("first", "first build")):
        for n in SIZES:
            measured, baseline = p50(f"{kind} {n}"), p50(f"plain {n}")
            cpu_ratio = p50(f"{kind} {n}", "cpu") / p50(f"plain {n}", "cpu")
            report(
                Figure(
                    name=f"Panel refresh: {what}, {n:,} servers, median",
                    measured=measured * 1000,
                    baseline=baseline * 1000,
                    unit="ms",
                    target=f"≤ {TARGET:g}×",
                    met=measured <= TARGET * baseline,
                    note=(
                        f"{runs} interleaved runs; the table fills one page of {PAGE_SIZE} rows, "
                        f"the baseline builds all {n:,}; {PAGE_SIZE} plain rows take {ms(page)}; "
                        f"CPU-time ratio {cpu_ratio:.2f}×"
                    ),
                    load=load,
                )
            )
    limit = large // small * GROWTH_LIMIT
    for kind, what in (("refresh", "refresh"), ("first", "first build")):
        growth = per_server_us(f"{kind} {large}", large) / per_server_us(f"{kind} {small}", small)
        cpu_growth = per_server_us(f"{kind} {large}", large, "cpu") / per_server_us(
            f"{kind} {small}", small, "cpu"
        )
        plain_growth = per_server_us(f"plain {large}", large) / per_server_us(
            f"plain {small}", small
        )
        print(
            f"  growth, {what}: {large:,} servers cost "
            f"{p50(f'{kind} {large}') / p50(f'{kind} {small}'):.2f}× {small:,} "
            f"(linear or better: ≤ {limit:g}×); per server {growth:.3f}× (CPU time "
            f"{cpu_growth:.3f}×; the plain baseline {plain_growth:.2f}×)"
        )
        report(
            Figure(
                name=f"Panel refresh: {what}, cost per server at {large:,} vs {small:,} servers",
                measured=per_server_us(f"{kind} {large}", large),
                baseline=per_server_us(f"{kind} {small}", small),
                unit="µs/server",
                target=f"≤ {GROWTH_LIMIT:g}× (linear: {large:,} cost ≤ {limit:g}× {small:,})",
                met=growth <= GROWTH_LIMIT,
                note=(
                    f"medians; CPU time {cpu_growth:.2f}×; the plain baseline "
                    f"{plain_growth:.2f}× per server"
                ),
                load=load,
            )
        )


if __name__ == "__main__":
    main()
