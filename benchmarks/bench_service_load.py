"""Service under load: 4 clients in parallel doing list / get / update for 30 s, against
``elegere serve`` as a real process, on SQLite and on PostgreSQL; on PostgreSQL also two
service processes side by side, the clients split between them.

Each client is a process of its own (``elegere_widgets.client.Client``), so the load does not
queue on this script's GIL. Every cycle lists the Sales workspace, gets its own server and
updates it with ``If-Match``; all four update the same server, so a 412 from a racing client
is expected: the client gets the server again and retries with the new version. 412s, 5xx
answers and transport errors are counted separately.

Targets (issue 7): no 5xx and no transport errors, p99 printed; on PostgreSQL two service
processes give more throughput than one. There is no in-run baseline for throughput except
that comparison (the one-process run is the two-process run's baseline); in the full mode the
two layouts alternate in three slices of 10 s each, to share the machine's noisy moments.

    .venv/bin/python benchmarks/bench_service_load.py [--quick] [--seconds 30] [--clients 4]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from _common import (
    ADMIN,
    SALES,
    Figure,
    cli,
    data_dir,
    database,
    database_kinds,
    median,
    ms,
    note,
    parse_args,
    percentile,
    report,
    service_env,
    service_process,
)

from elegere_widgets.client import Client
from elegere_widgets.errors import ServiceError, ServiceUnavailable, StaleVersion
from elegere_widgets.models import EmailServerPatch

MAX_RETRIES = 20  # a client that loses the race this often in a row is itself a finding


@dataclass
class Tally:
    """What one client saw: latencies per operation and outcomes by kind."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, op: str, seconds: float, outcome: str) -> None:
        self.latencies.setdefault(op, []).append(seconds)
        self.outcomes[f"{op} {outcome}"] += 1

    def count(self, outcome: str) -> int:
        return sum(n for key, n in self.outcomes.items() if key.split(" ", 1)[1] == outcome)

    def merge(self, other: Tally) -> None:
        """Another client of the same run (its time overlaps this one's)."""
        self.seconds = max(self.seconds, other.seconds)
        self._take(other)

    def add_round(self, other: Tally) -> None:
        """A later run of the same layout (its time adds to this one's)."""
        self.seconds += other.seconds
        self._take(other)

    def _take(self, other: Tally) -> None:
        for op, values in other.latencies.items():
            self.latencies.setdefault(op, []).extend(values)
        self.outcomes.update(other.outcomes)
        self.errors.extend(other.errors[:5])

    @property
    def all_latencies(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def client_loop(url: str, token: str, seconds: float, name: str) -> Tally:
    """One client, for ``seconds``: list, get, update (retrying on 412). In a child process."""
    tally = Tally()
    client = Client(url, token, timeout=30)

    def call(op: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except StaleVersion:
            tally.add(op, time.perf_counter() - started, "412")
            raise
        except ServiceUnavailable as exc:
            tally.add(op, time.perf_counter() - started, "transport error")
            tally.errors.append(f"{op}: {exc}")
            return None
        except ServiceError as exc:
            kind = "5xx" if exc.status >= 500 else f"{exc.status} (unexpected)"
            tally.add(op, time.perf_counter() - started, kind)
            tally.errors.append(f"{op}: {exc.status} {exc}")
            return None
        tally.add(op, time.perf_counter() - started, "ok")
        return value

    started = time.perf_counter()
    deadline = started + seconds
    cycle = 0
    while time.perf_counter() < deadline:
        cycle += 1
        servers = call("list", client.email_servers.list, SALES)
        if not servers:
            continue
        own = next(s for s in servers if not s.inherited)
        server = call("get", client.email_servers.get, SALES, own.id)
        patch = EmailServerPatch(settings={"sender_address": f"load-{name}-{cycle}@acme.example"})
        for _ in range(MAX_RETRIES):
            if server is None:
                break
            try:
                call(
                    "update",
                    client.email_servers.update,
                    SALES,
                    own.id,
                    patch,
                    version=server.version,
                )
                break
            except StaleVersion:
                server = call("get", client.email_servers.get, SALES, own.id)
    tally.seconds = time.perf_counter() - started
    client.close()
    return tally


def load(urls: list[str], token: str, clients: int, seconds: float) -> Tally:
    """``clients`` client processes, spread over ``urls`` in turn, all for ``seconds``."""
    spawn = multiprocessing.get_context("spawn")
    jobs = [(urls[i % len(urls)], token, seconds, f"c{i}") for i in range(clients)]
    with spawn.Pool(clients) as pool:
        tallies = pool.starmap(client_loop, jobs)
    total = Tally()
    for t in tallies:
        total.merge(t)
    return total


def summarize(label: str, tally: Tally) -> dict[str, float]:
    lat = tally.all_latencies
    throughput = tally.requests / tally.seconds if tally.seconds else 0.0
    saved = tally.outcomes["update ok"]
    print(
        f"  {label}: {tally.requests:,} requests in {tally.seconds:.1f} s = "
        f"{throughput:,.1f} req/s ({saved / tally.seconds:,.1f} saved updates/s); "
        f"p50 {ms(median(lat))}, p99 {ms(percentile(lat, 99))}"
    )
    for op, values in sorted(tally.latencies.items()):
        print(
            f"      {op:6} n={len(values):6,}  p50 {ms(median(values)):>9}  "
            f"p99 {ms(percentile(values, 99)):>9}"
        )
    print(f"      outcomes: {dict(sorted(tally.outcomes.items()))}")
    for line in tally.errors[:5]:
        print(f"      error: {line}")
    return {
        "throughput": throughput,
        "p50": median(lat),
        "p99": percentile(lat, 99),
        "bad": tally.count("5xx") + tally.count("transport error"),
    }


def run(kind: str, clients: int, seconds: float, rounds: int) -> list[Figure]:
    """One service process; on PostgreSQL also two. With two layouts, their runs alternate in
    ``rounds`` slices of ``seconds / rounds`` each, all services started beforehand, so that a
    busy minute on the shared machine does not land on one layout only."""
    figures: list[Figure] = []
    layouts = [1, 2] if kind == "postgresql" else [1]
    rounds = rounds if len(layouts) > 1 else 1
    with data_dir() as tmp, database(kind, "load") as url:
        env = service_env(tmp)
        cli("seed", "--demo", "--database", url, env=env)
        token = cli("token", "create", "--user", ADMIN, "--database", url, env=env).strip()
        with services(url, env, sum(layouts)) as started:
            urls = {1: started[:1], 2: started[1:3]}
            tallies: dict[int, Tally] = {n: Tally() for n in layouts}
            loads: dict[int, str] = {}
            for i in range(rounds):
                for processes in layouts if i % 2 == 0 else layouts[::-1]:
                    load_now = note(
                        f"{kind}, {processes} service process(es), {clients} client processes, "
                        f"{seconds / rounds:g} s (round {i + 1} of {rounds})"
                    )
                    loads.setdefault(processes, load_now)
                    tallies[processes].add_round(
                        load(urls[processes], token, clients, seconds / rounds)
                    )
        results: dict[int, dict[str, float]] = {}
        for processes in layouts:
            label = f"{kind}, {processes} process{'es' if processes > 1 else ''}"
            results[processes] = r = summarize(label, tallies[processes])
            figures.append(
                Figure(
                    name=f"Service under load, {label}: p99 (throughput {r['throughput']:,.0f} req/s)",
                    measured=r["p99"] * 1000,
                    baseline=None,
                    unit="ms",
                    target="no 5xx, no transport errors; p99 printed",
                    met=r["bad"] == 0,
                    note=f"p50 {ms(r['p50'])}; {int(r['bad'])} 5xx/transport errors",
                    load=loads[processes],
                )
            )
        if 2 in results:
            one, two = results[1]["throughput"], results[2]["throughput"]
            figures.append(
                Figure(
                    name=f"Service under load, {kind}: throughput, 2 processes vs 1",
                    measured=two,
                    baseline=one,
                    unit="req/s",
                    target="2 processes > 1",
                    met=two > one,
                    note=f"{os.cpu_count()} cores shared with the {clients} client processes",
                    load=loads[2],
                )
            )
    return figures


@contextlib.contextmanager
def services(url: str, env: dict[str, str], n: int) -> Iterator[list[str]]:
    """``n`` service processes on the same database; their URLs."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(service_process(url, env)).url for _ in range(n)]


def main() -> None:
    def options(p):  # type: ignore[no-untyped-def]
        p.add_argument("--seconds", type=float, default=None, help="per run (30; 5 with --quick)")
        p.add_argument("--clients", type=int, default=4)
        p.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")

    args = parse_args(__doc__.splitlines()[0], add=options)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    for kind in database_kinds(args.database):
        for fig in run(kind, args.clients, seconds, rounds=1 if args.quick else 3):
            report(fig)


if __name__ == "__main__":
    main()
