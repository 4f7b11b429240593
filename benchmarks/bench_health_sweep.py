"""Health sweep: ``elegere worker`` checks 1,000 servers whose peers never answer (silent: they
accept the connection and say nothing) or refuse it (a closed port), at most
``ELEGERE_HEALTH_CONCURRENCY`` at once, each within the test budget.

Two cases, one store (SQLite, the embedded default):

- **spread**: new servers, as the worker first meets them: it gives each a place at random
  within the interval, so the sweep ends about one interval after it starts. Figure: the
  worker's start → the last server's first check, against the interval (target: ≤ the
  interval + one pickup tick + one check budget: the last place may be at the interval's end).
- **all due at once**, as after a worker was down for longer than the interval: every server
  is overdue when the worker starts. Figure: start → the last check, against the interval
  (target: within it), and against the least it could take, ``ceil(silent / concurrency) ×
  budget`` (the closed ports fail at once; each silent one holds a slot for the budget).

In both, the silent peers count the connections open at once; the most seen must not exceed
the concurrency (target: ≤ 1×). Every server must be checked exactly once.

The numbers are scaled down from production's (a 15 s budget, 4 at once, a day's interval) so
that the benchmark runs in about a minute and a half: budget 0.5 s, 8 at once, interval 45 s;
what matters is their proportions (the silent checks alone keep the slots 70 % busy).

    .venv/bin/python benchmarks/bench_health_sweep.py [--quick] [--servers 1000]
        [--concurrency 8] [--budget 0.5] [--interval 45]

``--quick``: 200 servers, interval 15 s.
"""

from __future__ import annotations

import argparse
import math
import random
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from _common import (
    Figure,
    data_dir,
    note,
    parse_args,
    report,
    seed_servers,
    worker_env,
    worker_processes,
)

if TYPE_CHECKING:
    from elegere_widgets.server.context import ServiceContext

PEERS = 5  # of each kind: servers are spread over several addresses, as they would be


@dataclass
class Connection:
    opened: float
    closed: float = math.inf
    #: The client sent bytes: a TLS handshake. A connection test that gets no greeting asks,
    #: on a second connection, whether the port speaks TLS first; the check's own connection
    #: only ever waits for the greeting.
    spoke: bool = False


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most of these time spans that overlap at one moment (an end before a start)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


class ConnectionLog:
    """Every connection the silent peers accepted: when, whether the client spoke, when it
    left. Read after a sweep: how many checks (connections where the client only waited)
    and how many connections (with the TLS probes) were open at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.connections: list[Connection] = []

    def opened(self) -> Connection:
        conn = Connection(time.monotonic())
        with self._lock:
            self.connections.append(conn)
        return conn

    def clear(self) -> None:
        with self._lock:
            self.connections = [c for c in self.connections if c.closed == math.inf]

    def spans(self, *, checks: bool) -> list[tuple[float, float]]:
        with self._lock:
            return [(c.opened, c.closed) for c in self.connections if not (checks and c.spoke)]


class CountingSilentPeer:
    """Accepts TCP connections and never sends a byte; logs them in ``log``.

    A client that gives up closes its socket, which reads here as end of file. In each round of
    the event loop closes are counted before new connections, so a check that ends and the
    next one that starts never show as two at once."""

    def __init__(self, log: ConnectionLog) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self._sock.setblocking(False)
        self.port = int(self._sock.getsockname()[1])
        self._log = log
        self._open: dict[socket.socket, Connection] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-peer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            events = self._selector.select(0.05)
            clients = [k.fileobj for k, _ in events if k.fileobj is not self._sock]
            for conn in clients:
                assert isinstance(conn, socket.socket)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                if data:
                    self._open[conn].spoke = True
                else:
                    self._selector.unregister(conn)
                    conn.close()
                    self._open.pop(conn).closed = time.monotonic()
            if len(clients) < len(events):
                self._accept_all()

    def _accept_all(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            self._selector.register(conn, selectors.EVENT_READ)
            self._open[conn] = self._log.opened()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


@dataclass
class Peers:
    silent: list[CountingSilentPeer]
    closed: list[int]
    log: ConnectionLog


@contextmanager
def peers() -> Iterator[Peers]:
    from tests.fixtures.smtp import closed_port

    log = ConnectionLog()
    with ExitStack() as stack:
        silent = []
        for _ in range(PEERS):
            peer = CountingSilentPeer(log)
            stack.callback(peer.stop)
            silent.append(peer)
        yield Peers(silent, [closed_port() for _ in range(PEERS)], log)


def build_store(directory: str, at: Peers, servers: int) -> tuple[ServiceContext, int]:
    """A store whose every server points at a peer: half at silent ones, half at closed
    ports (the demo's two among those). Returns the store and the number of silent servers."""
    from sqlalchemy import select

    from elegere_widgets.models import SmtpSettings
    from elegere_widgets.server.store.tables import EmailServerRow
    from tests.fixtures.messages import make_store

    def smtp(port: int) -> SmtpSettings:
        return SmtpSettings(
            server="127.0.0.1",
            port=port,
            use_ssl=False,
            account="bench",
            sender_address="bench@acme.example",
        )

    ctx = make_store(f"sqlite:///{Path(directory) / 'elegere.db'}", Path(directory))
    with ctx.sessions.begin() as session:  # the demo's servers name hosts that do not exist
        for row in session.scalars(select(EmailServerRow)):
            row.settings = {**smtp(at.closed[0]).public(), "account": row.settings["account"]}
            row.secrets_sealed = None
            row.secrets_set = {"password": False}
        demo = len(session.scalars(select(EmailServerRow.id)).all())
    seeded = servers - demo
    silent = [smtp(p.port) for p in at.silent]
    closed = [smtp(port) for port in at.closed]
    # Alternating silent and closed, own and inherited (one in ten), so each pass of the
    # sweep meets both kinds.
    inherited = seeded // 10
    seed_servers(
        ctx,
        own=seeded - inherited,
        inherited=inherited,
        settings=[s for pair in zip(silent, closed, strict=True) for s in pair],
    )
    return ctx, (seeded + 1) // 2


def all_overdue(ctx: ServiceContext, interval_s: float) -> None:
    """Every server's place in the schedule is in the past (within the last interval), no
    lease held, no check kept: as after a worker outage longer than the interval."""
    from sqlalchemy import delete, select

    from elegere_widgets.server.store.tables import (
        EmailServerRow,
        ServerCheckLeaseRow,
        ServerCheckRow,
    )

    now = datetime.now(UTC)
    with ctx.sessions.begin() as session:
        session.execute(delete(ServerCheckRow))
        session.execute(delete(ServerCheckLeaseRow))
        for server_id in session.scalars(select(EmailServerRow.id)):
            session.add(
                ServerCheckLeaseRow(
                    email_server_id=server_id,
                    next_check_at=now - timedelta(seconds=random.uniform(1, interval_s)),
                )
            )


@dataclass
class Sweep:
    #: The worker's start → the end of the last server's first check.
    seconds: float
    checked: int
    #: Servers checked again sooner than half an interval after their first check.
    too_soon: int
    #: How late checks started after their place in the schedule (servers whose place was
    #: seen before it came due), median and most, in seconds.
    late_p50: float
    late_max: float
    #: At the silent peers: checks (connections where the client only waited) and
    #: connections (with the TLS probes) open at once; checks open on average.
    checks_at_once: int
    connections_at_once: int
    busy: float
    connections: int


def sweep(
    ctx: ServiceContext,
    at: Peers,
    servers: int,
    *,
    concurrency: int,
    budget: float,
    interval: float,
    limit_s: float,
) -> Sweep:
    """Run one worker until every server has been checked; the figures of that sweep."""
    from sqlalchemy import func, select

    from elegere_widgets.server.store.tables import ServerCheckLeaseRow, ServerCheckRow

    def checked() -> int:
        with ctx.sessions() as session:
            return int(
                session.scalar(select(func.count(func.distinct(ServerCheckRow.email_server_id))))
                or 0
            )

    def places() -> dict[str, float]:
        with ctx.sessions() as session:
            rows = session.execute(
                select(ServerCheckLeaseRow.email_server_id, ServerCheckLeaseRow.next_check_at)
            ).all()
        return {server_id: at.timestamp() for server_id, at in rows}

    at.log.clear()
    env = worker_env(
        ctx,
        ELEGERE_HEALTH_INTERVAL_S=str(interval),
        ELEGERE_HEALTH_CONCURRENCY=str(concurrency),
        ELEGERE_TEST_BUDGET_S=str(budget),
    )
    placed: dict[str, float] = places()
    with worker_processes(env, Path(str(ctx.settings.data_dir)), threads=1, settle_s=0) as start:
        while len(placed) < servers:  # new servers: the worker's first pass places them
            placed = places()
            time.sleep(0.02)
        # A place already moved an interval on was taken before it was seen.
        placed = {k: v for k, v in placed.items() if v < start + interval}
        while checked() < servers:
            if time.time() - start > limit_s:
                raise RuntimeError(f"only {checked()} of {servers} checked in {limit_s:.0f} s")
            time.sleep(0.2)
    with ctx.sessions() as session:
        rows = session.execute(
            select(
                ServerCheckRow.email_server_id,
                ServerCheckRow.checked_at,
                ServerCheckRow.elapsed_ms,
            ).order_by(ServerCheckRow.checked_at)
        ).all()
    first: dict[str, tuple[float, float]] = {}
    too_soon = 0
    for server_id, end, elapsed_ms in rows:
        if server_id not in first:
            first[server_id] = (end.timestamp() - elapsed_ms / 1000, end.timestamp())
        elif end.timestamp() - first[server_id][1] < interval / 2:
            too_soon += 1
    # Late: after its place, or after the worker started when the place was before that.
    late = sorted(
        max(0.0, first[k][0] - max(place, start)) for k, place in placed.items() if k in first
    )
    seconds = max(end for _, end in first.values()) - start
    checks = at.log.spans(checks=True)
    return Sweep(
        seconds=seconds,
        checked=len(first),
        too_soon=too_soon,
        late_p50=late[len(late) // 2] if late else math.nan,
        late_max=late[-1] if late else math.nan,
        checks_at_once=most_at_once(checks),
        connections_at_once=most_at_once(at.log.spans(checks=False)),
        busy=sum(min(end, time.monotonic()) - begin for begin, end in checks) / seconds,
        connections=len(at.log.spans(checks=False)),
    )


def main() -> int:
    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--servers", type=int, default=None, help="1,000 (200 with --quick)")
        p.add_argument("--concurrency", type=int, default=8, help="ELEGERE_HEALTH_CONCURRENCY")
        p.add_argument("--budget", type=float, default=0.5, help="ELEGERE_TEST_BUDGET_S")
        p.add_argument(
            "--interval", type=float, default=None, help="ELEGERE_HEALTH_INTERVAL_S (45; 15)"
        )

    args = parse_args(__doc__ or "", add=options)
    servers = args.servers or (200 if args.quick else 1000)
    interval = args.interval or (15.0 if args.quick else 45.0)
    concurrency, budget = args.concurrency, args.budget
    # How often the worker looks for due servers (HealthChecker.tick_s, sweep interval 5 s).
    tick = max(0.05, min(5.0, interval / 20))
    with data_dir() as directory, peers() as at:
        started = time.monotonic()
        ctx, silent = build_store(directory, at, servers)
        note(
            f"{servers:,} servers ({silent} at {PEERS} silent peers, {servers - silent} at "
            f"{PEERS} closed ports) in {time.monotonic() - started:.0f} s; concurrency "
            f"{concurrency}, budget {budget:g} s, interval {interval:g} s, pickup tick {tick:g} s"
        )
        floor = math.ceil(silent / concurrency) * budget
        sweep_once = partial(
            sweep,
            ctx,
            at,
            servers,
            concurrency=concurrency,
            budget=budget,
            interval=interval,
            limit_s=3 * interval + 60,
        )
        try:
            load_spread = note("spread: new servers, placed within the interval by the worker")
            spread = sweep_once()
            load_due = note("all due at once")
            all_overdue(ctx, interval)
            due = sweep_once()
        finally:
            ctx.engine.dispose()
    for name, s in (("spread", spread), ("all due at once", due)):
        print(
            f"  {name}: {s.checked:,} servers checked in {s.seconds:.1f} s ({s.too_soon} "
            f"checked again within half an interval); checks started {s.late_p50:.2f} s late "
            f"(median), {s.late_max:.2f} s at most; at the silent peers: at most "
            f"{s.checks_at_once} checks at once ({s.connections_at_once} connections with the "
            f"TLS probes), {s.busy:.1f} busy on average; {s.connections} connections",
            flush=True,
        )
    slack = interval + tick + budget
    report(
        Figure(
            name=f"Health sweep of {servers:,} servers (half silent, half closed), spread over "
            "the interval: start → last server's first check",
            measured=spread.seconds,
            baseline=interval,
            unit="s",
            target=f"≤ interval + pickup tick + one budget ({slack:g} s), each checked once",
            met=spread.seconds <= slack and spread.checked == servers and not spread.too_soon,
            note=f"{spread.checked:,} checked; late by {spread.late_p50:.2f} s median, "
            f"{spread.late_max:.2f} s at most",
            load=load_spread,
        )
    )
    report(
        Figure(
            name=f"Health sweep of {servers:,} servers, all due at once: start → last check",
            measured=due.seconds,
            baseline=interval,
            unit="s",
            target="≤ interval, each checked once",
            met=due.seconds <= interval and due.checked == servers and not due.too_soon,
            note=f"{due.checked:,} checked",
            load=load_due,
        )
    )
    report(
        Figure(
            name=f"Health sweep, all due at once, vs the least it could take: ceil({silent} "
            f"silent / {concurrency}) × {budget:g} s",
            measured=due.seconds,
            baseline=floor,
            unit="s",
            target="none (printed: the sweep's own overhead)",
            met=True,
            note=f"checks at the silent peers: {due.busy:.1f} of {concurrency} on average",
            load=load_due,
        )
    )
    most = max(spread.checks_at_once, due.checks_at_once)
    report(
        Figure(
            name="Health sweep: most checks at once at the silent peers",
            measured=most,
            baseline=concurrency,
            unit="checks",
            target="≤ ELEGERE_HEALTH_CONCURRENCY",
            met=most <= concurrency,
            note=f"spread {spread.checks_at_once}, all due {due.checks_at_once}; connections "
            f"with the TLS probes (a second one per silent check): "
            f"{max(spread.connections_at_once, due.connections_at_once)}",
            load=load_spread,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
