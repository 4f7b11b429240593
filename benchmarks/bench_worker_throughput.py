"""Worker throughput, embedded: SQLite + SqliteHuey and one ``elegere worker`` process deliver
N messages to an aiosmtpd sink, end to end (first enqueue → last message at the sink), against
a bare ``smtplib`` loop sending the same N messages over one connection to the same kind of
sink. Target (issue 12): ≥ 0.5× the bare loop's throughput.

The messages go into the store as the messages API writes them (tests/fixtures/messages.py)
and are signalled in batches of 500, until the API lands and this submits over HTTP.

    .venv/bin/python benchmarks/bench_worker_throughput.py [--quick] [--threads N]

``--quick``: 500 messages instead of 5,000.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from _common import ROOT, Figure, data_dir, note, parse_args
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


def worker_run(n: int, threads: int) -> float:
    from tests.fixtures.messages import add_message, add_peer_server, make_store
    from tests.fixtures.smtp import SmtpPeer

    with data_dir() as directory, SmtpPeer("plain") as sink:
        ctx = make_store(f"sqlite:///{Path(directory) / 'elegere.db'}", Path(directory))
        server = add_peer_server(ctx, sink, "srv_bench")
        ids = [add_message(ctx, server, to=[f"r{i}@example.org"]) for i in range(n)]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "ELEGERE_DATABASE_URL": ctx.settings.resolved_database_url(),
            "ELEGERE_DATA_DIR": directory,
            "ELEGERE_EGRESS_ALLOW": "127.0.0.0/8",
            "ELEGERE_EGRESS_ALLOW_PORTS": "1024-65535",
            "ELEGERE_SWEEP_INTERVAL_S": "60",  # the queue alone, not the sweep, carries them
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "elegere_widgets.server.cli",
                "worker",
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(2.0)  # the worker's start-up is not part of the throughput
            started = time.perf_counter()
            for i in range(0, n, BATCH):
                ctx.queue.signal(ids[i : i + BATCH])
            while len(sink.messages) < n:
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited ({worker.returncode})")
                time.sleep(0.01)
            return time.perf_counter() - started
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
            ctx.engine.dispose()


def main() -> int:
    args = parse_args(__doc__ or "", add=lambda p: p.add_argument("--threads", type=int, default=4))
    n = QUICK_MESSAGES if args.quick else MESSAGES
    load = note(f"bare smtplib, {n} messages over one connection")
    bare = bare_smtplib(n)
    note(f"elegere worker ({args.threads} threads), SQLite + SqliteHuey, {n} messages")
    worker = worker_run(n, args.threads)
    bare_rate, worker_rate = n / bare, n / worker
    report_figure(
        Figure(
            name=f"worker throughput, embedded ({n} messages, 1 worker × {args.threads} threads)",
            measured=worker_rate,
            baseline=bare_rate,
            unit="msg/s",
            target="≥ 0.5× a bare smtplib loop over one connection",
            met=worker_rate >= 0.5 * bare_rate,
            note=f"end to end {worker:.1f} s vs {bare:.1f} s",
            load=load,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
