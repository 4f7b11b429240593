"""Submission latency: single-message ``POST /workspaces/{ws}/messages`` at 50 messages/s,
paced and open loop (from 32 threads), while ``elegere worker`` drains them to an aiosmtpd sink, against
``GET /me`` sent in the same run to the same service under the same load. Target (issue 12):
p99 of the POST ≤ 3× p99 of ``GET /me``.

``elegere serve`` and ``elegere worker`` run as processes, as an operator runs them; the
requests come from a process of their own (32 threads with httpx), so the sink in this process
does not share their interpreter. Open loop: every request is sent at its time whether or not
earlier ones have been answered, and its latency is counted from that time (a request the
client could not send on time still counts its wait). The POSTs are paced every 20 ms; the
``GET /me`` (25/s) are jittered within their own 40 ms slots, so that they sample every
moment of the POSTs' cycle. Both use the same Workspace Admin's token, so both pay the same
authentication; each POST carries an idempotency key, as a platform's retries would. The
first seconds warm up and are not counted.

- embedded: SQLite + SqliteHuey (the worker's queue in the data directory).
- PostgreSQL + Redis (``_common.REDIS_URL``), when both answer.

    .venv/bin/python benchmarks/bench_submission_latency.py [--quick] [--seconds 60]
        [--rate 50] [--database sqlite|postgresql|both]

``--quick``: 15 s instead of 60.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    ADMIN,
    REDIS_URL,
    SALES,
    Figure,
    data_dir,
    database,
    database_kinds,
    median,
    ms,
    note,
    parse_args,
    percentile,
    redis_available,
    report,
    service_env,
    service_process,
    worker_env,
    worker_processes,
)

from elegere_widgets.client._args import API_PREFIX

WARMUP_S = 3.0
ME_RATE = 25.0
#: Requests in flight at most (each thread has its own connection).
THREADS = 32


@dataclass
class Latencies:
    """What the load process saw (seconds); sent back to this one through a pipe."""

    post: list[float] = field(default_factory=list)
    me: list[float] = field(default_factory=list)
    #: How late the client itself sent requests (its own lag), the largest.
    send_lag_max: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: int = 0


def _message(i: int) -> dict[str, Any]:
    return {
        "sender": {"kind": "custom_action", "id": "ca_send_quote"},
        "to": [f"r{i}@example.org"],
        "subject": f"Quote {i}",
        "text": "Hello,\n\nyour quote is attached.\n",
        "idempotency_key": f"bench-{uuid.uuid4().hex}",
    }


def _load(url: str, token: str, seconds: float, rate: float) -> Latencies:
    """Send the schedule from a pool of threads, each with its own keep-alive connection:
    every request leaves at its time (a free thread takes it) whatever the earlier ones are
    doing. (An asyncio client with thousands of requests in flight spent its CPU walking
    httpx's pool of waiting requests, and sent late.)"""
    import httpx

    out = Latencies()
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}
    # Made before the clock starts (a client costs milliseconds of CPU to make): a request
    # borrows one for its call and gives it back.
    idle: queue.SimpleQueue[httpx.Client] = queue.SimpleQueue()
    clients = [
        httpx.Client(base_url=f"{url}{API_PREFIX}", headers=headers, timeout=60)
        for _ in range(THREADS)
    ]
    for c in clients:
        c.get("/me")  # its connection open, the service's caches warm
        idle.put(c)

    start = time.monotonic() + 0.5
    total = WARMUP_S + seconds
    schedule = [(start + i / rate, "post", i) for i in range(int(total * rate))]
    schedule += [
        (start + (j + random.random()) / ME_RATE, "me", j) for j in range(int(total * ME_RATE))
    ]
    schedule.sort()

    def one(at: float, kind: str, i: int) -> None:
        client = idle.get()
        try:
            if kind == "post":
                r = client.post(f"/workspaces/{SALES}/messages", json=_message(i))
            else:
                r = client.get("/me")
            outcome = str(r.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        finally:
            idle.put(client)
        took = time.monotonic() - at
        with lock:
            out.statuses[f"{kind} {outcome}"] += 1
            if kind == "post" and outcome == "202":
                out.accepted += 1
            if at - start >= WARMUP_S:
                (out.post if kind == "post" else out.me).append(took)

    with ThreadPoolExecutor(THREADS) as pool:
        for at, kind, i in schedule:
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            out.send_lag_max = max(out.send_lag_max, time.monotonic() - at)
            pool.submit(one, at, kind, i)
    for c in clients:
        c.close()
    return out


def _load_process(url: str, token: str, seconds: float, rate: float, pipe: Any) -> None:
    # Plain values: this module is __mp_main__ here, its classes unknown to the parent's pickle.
    seen = _load(url, token, seconds, rate)
    pipe.send({**asdict(seen), "statuses": dict(seen.statuses)})
    pipe.close()


def load_from_another_process(url: str, token: str, seconds: float, rate: float) -> Latencies:
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe(duplex=False)
    proc = spawn.Process(target=_load_process, args=(url, token, seconds, rate, theirs))
    proc.start()
    theirs.close()
    try:
        values = ours.recv()
    finally:
        proc.join(30)
    return Latencies(**{**values, "statuses": Counter(values["statuses"])})


@contextlib.contextmanager
def store_and_sink(kind: str, directory: str) -> Iterator[tuple[Any, Any, str]]:
    """A migrated store with the demo data, the Sales "Send quote" custom action sending
    through a server that reaches an aiosmtpd sink; the store's context, the sink and the
    database URL."""
    from elegere_widgets.server.store.tables import CustomActionRow
    from elegere_widgets.server.worker.queue import build_huey
    from tests.fixtures.messages import add_peer_server, make_store
    from tests.fixtures.smtp import SmtpPeer

    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url, queue_url = f"sqlite:///{Path(directory) / 'elegere.db'}", None
        else:
            url, queue_url = stack.enter_context(database("postgresql", "submit")), REDIS_URL
        sink = stack.enter_context(SmtpPeer("plain"))
        ctx = make_store(url, Path(directory), queue_url=queue_url)
        stack.callback(ctx.engine.dispose)
        if queue_url:
            build_huey(ctx.settings).flush()
            stack.callback(lambda: build_huey(ctx.settings).flush())
        server = add_peer_server(ctx, sink, "srv_bench_sink")
        with ctx.sessions.begin() as session:
            action = session.get(CustomActionRow, "ca_send_quote")
            assert action is not None
            action.email_server_id = server
        yield ctx, sink, url


def sent_count(ctx: Any) -> int:
    from sqlalchemy import func, select

    from elegere_widgets.server.store.tables import MessageRow

    with ctx.sessions() as session:
        return int(session.scalar(select(func.count()).where(MessageRow.status == "sent")) or 0)


def run(kind: str, seconds: float, rate: float) -> Figure:
    from elegere_widgets.server.seed import create_token

    label = "SQLite + SqliteHuey" if kind == "sqlite" else "PostgreSQL + Redis"
    with data_dir() as directory, store_and_sink(kind, directory) as (ctx, sink, url):
        token = create_token(ctx, ADMIN)
        env = service_env(directory)
        if ctx.settings.queue_url:
            env["ELEGERE_QUEUE_URL"] = ctx.settings.queue_url
        with (
            service_process(url, env) as service,
            worker_processes(worker_env(ctx), Path(directory), threads=4),
        ):
            load = note(
                f"{label}: POST …/messages at {rate:g}/s and GET /me at {ME_RATE:g}/s for "
                f"{seconds:g} s (+ {WARMUP_S:g} s warm-up), one worker × 4 threads draining"
            )
            seen = load_from_another_process(service.url, token, seconds, rate)
            submitted = time.monotonic()
            drained: float | None = None
            while time.monotonic() - submitted < 120:
                if sent_count(ctx) >= seen.accepted:
                    drained = time.monotonic() - submitted
                    break
                time.sleep(0.1)
            at_sink = len(sink.messages)
            if any(k not in ("post 202", "me 200") for k in seen.statuses):
                for log in sorted(Path(directory).glob("*.log")):  # what went wrong, and where
                    print(f"  --- {log.name}, last lines:\n{log.read_text()[-3000:]}")
    all_sent = (
        f"all sent {drained:.1f} s after" if drained is not None else "not all sent 120 s after"
    )
    bad = {k: n for k, n in seen.statuses.items() if k not in ("post 202", "me 200")}
    p99_post, p99_me = percentile(seen.post, 99), percentile(seen.me, 99)
    print(
        f"  {label}: POST n={len(seen.post)} p50 {ms(median(seen.post))} p90 "
        f"{ms(percentile(seen.post, 90))} p99 {ms(p99_post)} max {ms(max(seen.post))}; "
        f"GET /me n={len(seen.me)} p50 {ms(median(seen.me))} p90 {ms(percentile(seen.me, 90))} "
        f"p99 {ms(p99_me)} max {ms(max(seen.me))}; client send lag at most "
        f"{ms(seen.send_lag_max)}; {seen.accepted} accepted, {at_sink} at the sink, "
        f"{all_sent} the last answer; other answers: {bad or 'none'}",
        flush=True,
    )
    return Figure(
        name=f"Submission latency, {label}: p99 of POST …/messages at {rate:g}/s while the "
        "worker drains",
        measured=p99_post * 1000,
        baseline=p99_me * 1000,
        unit="ms",
        target="≤ 3× p99 of GET /me in the same run",
        met=p99_post <= 3 * p99_me and not bad and drained is not None,
        note=f"p50 {ms(median(seen.post))} vs {ms(median(seen.me))}; {len(seen.post)} POSTs, "
        f"{len(seen.me)} GET /me; {all_sent} the last answer",
        load=load,
    )


def main() -> int:
    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seconds", type=float, default=None, help="60 (15 with --quick)")
        p.add_argument("--rate", type=float, default=50.0, help="POSTs per second")
        p.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")

    args = parse_args(__doc__ or "", add=options)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    kinds = database_kinds(args.database)
    if "postgresql" in kinds and not redis_available():
        print(f"Redis at {REDIS_URL} does not answer: the PostgreSQL + Redis figure is skipped.")
        kinds.remove("postgresql")
    for kind in kinds:
        report(run(kind, seconds, args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
