"""Worker throughput: N messages submitted in batches of 500 to the store and the queue, then
delivered by ``elegere worker`` processes to an aiosmtpd sink, end to end (first submit →
last message at the sink), against a bare ``smtplib`` loop sending the same N messages over
one connection to the same kind of sink. The runs alternate (bare, embedded, PostgreSQL,
then the other way round), medians are compared.

- embedded: SQLite + SqliteHuey in the data directory, one worker. Target (issue 12): ≥ 0.5×.
- PostgreSQL + Redis, two workers. Target: ≥ 0.8×, and above the embedded figure. Needs the
  PostgreSQL server of ``_common.PG_SERVER`` (or a database of your own in
  ``ELEGERE_BENCH_DATABASE_URL``, which is emptied) and Redis at ``ELEGERE_BENCH_REDIS``
  (default ``redis://127.0.0.1:6379/14``, whose ``elegere`` queue is flushed); skipped, and
  said so, when either does not answer.

A batch is written as the messages API writes one (one transaction, every recipient
pending, due now) and signalled through ``ctx.queue`` as the API does after its commit.

    .venv/bin/python benchmarks/bench_worker_throughput.py [--quick] [--threads N] [--runs N]
        [--database sqlite|postgresql|both]

``--quick``: 500 messages instead of 5,000, one run of each.
"""

from __future__ import annotations

import argparse
import contextlib
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

from _common import (
    REDIS_URL,
    Figure,
    data_dir,
    database,
    database_kinds,
    median,
    note,
    parse_args,
    redis_available,
    worker_env,
    worker_processes,
)
from _common import report as report_figure

MESSAGES, QUICK_MESSAGES = 5000, 500
BATCH = 500


def bare_smtplib(n: int) -> float:
    from tests.fixtures.smtp import SmtpPeer

    with SmtpPeer("plain") as sink:
        started = time.perf_counter()
        with smtplib.SMTP(sink.host, sink.port) as smtp:
            for i in range(n):
                msg = EmailMessage()
                msg["From"] = "sales@acme.example"
                msg["To"] = f"r{i}@example.org"
                msg["Subject"] = "Quote 42"
                msg["Message-ID"] = f"<bare{i}@acme.example>"
                msg.set_content("Hello")
                smtp.send_message(msg)
        while len(sink.messages) < n:
            time.sleep(0.01)
        return time.perf_counter() - started


def worker_run(
    n: int, threads: int, *, database_url: str, queue_url: str | None, count: int
) -> float:
    from elegere_widgets.server.worker.queue import build_huey
    from tests.fixtures.messages import add_messages, add_peer_server, make_store
    from tests.fixtures.service import reset_database
    from tests.fixtures.smtp import SmtpPeer

    if database_url:
        reset_database(database_url)
    with data_dir() as directory, SmtpPeer("plain") as sink:
        url = database_url or f"sqlite:///{Path(directory) / 'elegere.db'}"
        ctx = make_store(url, Path(directory), queue_url=queue_url)
        if queue_url:
            build_huey(ctx.settings).flush()
        server = add_peer_server(ctx, sink, "srv_bench")
        # The queue alone, not the sweep, carries them.
        env = worker_env(ctx, ELEGERE_SWEEP_INTERVAL_S="60")
        try:
            with worker_processes(env, Path(directory), count=count, threads=threads):
                started = time.perf_counter()
                for i in range(0, n, BATCH):
                    recipients = [f"r{j}@example.org" for j in range(i, min(n, i + BATCH))]
                    ctx.queue.signal(add_messages(ctx, server, recipients))
                while len(sink.messages) < n:
                    time.sleep(0.01)
                return time.perf_counter() - started
        finally:
            if queue_url:
                build_huey(ctx.settings).flush()
            ctx.engine.dispose()


def main() -> int:
    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threads", type=int, default=4)
        p.add_argument("--runs", type=int, default=None)
        p.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")

    args = parse_args(__doc__ or "", add=options)
    n = QUICK_MESSAGES if args.quick else MESSAGES
    runs = args.runs or (1 if args.quick else 3)
    kinds = database_kinds(args.database)
    if "postgresql" in kinds and not redis_available():
        print(f"Redis at {REDIS_URL} does not answer: the PostgreSQL + Redis figure is skipped.")
        kinds.remove("postgresql")
    with contextlib.ExitStack() as stack:
        pg = (
            stack.enter_context(database("postgresql", "worker")) if "postgresql" in kinds else None
        )
        cases = {"bare": lambda: bare_smtplib(n)}
        if "sqlite" in kinds:
            cases["embedded"] = lambda: worker_run(
                n, args.threads, database_url="", queue_url=None, count=1
            )
        if pg is not None:
            cases["postgresql"] = lambda: worker_run(
                n, args.threads, database_url=pg, queue_url=REDIS_URL, count=2
            )
        load = note(f"{n} messages, {runs} run(s) of: {', '.join(cases)} (alternating)")
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(runs):
            order = list(cases) if i % 2 == 0 else list(cases)[::-1]
            for name in order:
                times[name].append(cases[name]())
                note(f"  {name}: {n / times[name][-1]:.0f} msg/s")
    bare_rate = n / median(times["bare"])
    embedded_rate = n / median(times["embedded"]) if "embedded" in times else None
    if embedded_rate is not None:
        report_figure(
            Figure(
                name=f"Worker throughput, embedded: SQLite + SqliteHuey, 1 worker × "
                f"{args.threads} threads ({n} messages)",
                measured=embedded_rate,
                baseline=bare_rate,
                unit="msg/s",
                target="≥ 0.5× a bare smtplib loop over one connection",
                met=embedded_rate >= 0.5 * bare_rate,
                note=f"end to end {median(times['embedded']):.1f} s vs "
                f"{median(times['bare']):.1f} s, median of {runs}",
                load=load,
            )
        )
    if "postgresql" in times:
        rate = n / median(times["postgresql"])
        report_figure(
            Figure(
                name=f"Worker throughput: PostgreSQL + Redis, 2 workers × {args.threads} "
                f"threads ({n} messages)",
                measured=rate,
                baseline=bare_rate,
                unit="msg/s",
                target="≥ 0.8× a bare smtplib loop, and above the embedded figure",
                met=rate >= 0.8 * bare_rate and (embedded_rate is None or rate > embedded_rate),
                note=f"end to end {median(times['postgresql']):.1f} s, median of {runs}",
                load=load,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
