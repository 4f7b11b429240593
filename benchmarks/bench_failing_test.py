"""Failing test in time: a connection test to a listener that never answers, and to a closed
port, called directly (``connectivity.test_smtp``) and through the service
(POST /workspaces/{ws}/email-servers/test, the service in this process).

Baseline: the time budget (the service's ``Settings.test_budget_s``, 15 s). Targets (issue 7):
a silent listener's test ends within budget + 0.5 s; a closed port fails in under 1 s.

The silent runs wait, they do not compute: they run side by side (each in a thread), so the
full mode takes one budget of wall time, not one per run. The service is warmed up first with
one closed-port test, whose time is printed: a new process loads the trust store once.

    .venv/bin/python benchmarks/bench_failing_test.py [--quick] [--budget 15]
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import (
    SALES,
    Figure,
    database,
    interleaved,
    median,
    ms,
    note,
    parse_args,
    report,
    service_in_thread,
    timed,
)
from pydantic import SecretStr

from elegere_widgets.client import Client
from elegere_widgets.connectivity import EgressPolicy, test_smtp
from elegere_widgets.models import ConnectionTestResult, SmtpServerSpec, SmtpSettings
from tests.fixtures.smtp import ACCOUNT, PASSWORD, SilentListener, closed_port

SLACK_S = 0.5
CLOSED_LIMIT_S = 1.0


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        server="127.0.0.1",
        port=port,
        use_ssl=True,
        account=ACCOUNT,
        sender_address="sales@acme.example",
        password=SecretStr(PASSWORD),
    )


def checked(result: ConnectionTestResult) -> ConnectionTestResult:
    # A benchmark of failures must fail: a pass would mean it measured something else.
    assert not result.ok, result
    return result


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        add=lambda p: p.add_argument("--budget", type=float, default=15.0),
    )
    budget = args.budget
    silent_runs = 1 if args.quick else 3
    closed_runs = 5 if args.quick else 15
    egress = EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1-65535"])
    tls = ssl.create_default_context()  # built once, as the service does

    with (
        database("sqlite", "failing") as url,
        service_in_thread(url, test_budget_s=budget, test_rate_limit=1000) as svc,
        SilentListener() as silent,
    ):
        client = Client(svc.url, svc.token, timeout=budget + 30)

        def direct(port: int) -> Callable[[], Any]:
            return lambda: checked(
                test_smtp(smtp_settings(port), egress=egress, budget_s=budget, ssl_context=tls)
            )

        def via_api(port: int) -> Callable[[], Any]:
            spec = SmtpServerSpec(name="Never answers", settings=smtp_settings(port))
            return lambda: checked(client.email_servers.test(SALES, spec))

        # The first test a new service process runs pays for loading the trust store and for
        # first-use imports; shown, and kept out of the runs below.
        port = closed_port()
        cold = timed(via_api(port))
        print(f"  first test through a new service (closed port): {ms(cold)}")

        # ---- a listener that accepts and never says a word: every run at once
        load = note(
            f"silent listener: {silent_runs} direct + {silent_runs} through the API, budget {budget:g} s"
        )
        jobs = [("direct", direct(silent.port))] * silent_runs + [
            ("api", via_api(silent.port))
        ] * silent_runs
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [(kind, pool.submit(timed, fn)) for kind, fn in jobs]
            silent_times: dict[str, list[float]] = {"direct": [], "api": []}
            for kind, future in futures:
                silent_times[kind].append(future.result())
        failed_at = checked(test_smtp(smtp_settings(silent.port), egress=egress, budget_s=0.5))
        print(f"  (a silent peer fails at '{failed_at.failed_stage.name}')")  # type: ignore[union-attr]

        # ---- a closed port: interleaved runs
        note(f"closed port {port}: {closed_runs} interleaved runs of each")
        closed = interleaved(
            {"direct": direct(port), "api": via_api(port)}, runs=closed_runs, warmup=1
        )
        client.close()

    for kind, label in (("direct", "test_smtp"), ("api", "POST …/email-servers/test")):
        worst = max(silent_times[kind])
        print(
            f"  silent, {label}: median {median(silent_times[kind]):.3f} s, "
            f"max {worst:.3f} s over {silent_runs}"
        )
        report(
            Figure(
                name=f"Failing test, silent listener ({label}), max of {silent_runs}",
                measured=worst,
                baseline=budget,
                unit="s",
                target=f"≤ budget + {SLACK_S:g} s",
                met=worst <= budget + SLACK_S,
                note=f"{worst - budget:+.3f} s over the budget",
                load=load,
            )
        )
    for kind, label in (("direct", "test_smtp"), ("api", "POST …/email-servers/test")):
        worst = max(closed[kind])
        print(
            f"  closed port, {label}: median {ms(median(closed[kind]))}, max {ms(worst)} "
            f"over {closed_runs}"
        )
        report(
            Figure(
                name=f"Failing test, closed port ({label}), max of {closed_runs}",
                measured=worst,
                baseline=budget,
                unit="s",
                target=f"< {CLOSED_LIMIT_S:g} s",
                met=worst < CLOSED_LIMIT_S,
                note=f"median {ms(median(closed[kind]))}",
                load=load,
            )
        )


if __name__ == "__main__":
    main()
