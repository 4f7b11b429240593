"""Test connection overhead: the staged SMTP test (``connectivity.test_smtp``) against a local
aiosmtpd with STARTTLS and AUTH, against a bare ``smtplib`` connect / STARTTLS / login / quit
to the same peer with the same TLS context. Target (issue 7): ≤ 1.3× (medians, interleaved).

The staged test does more on the wire than the baseline, on purpose: MAIL FROM, RCPT TO and
RSET (it checks the sender and recipient), a watchdog per connection and a redacted record of
every stage. Both sides get one TLS context built beforehand: loading a CA bundle costs more
than the whole conversation and is not what is compared here.

    .venv/bin/python benchmarks/bench_test_overhead.py [--quick] [--runs 30]
"""

from __future__ import annotations

import smtplib
import ssl
import tempfile
from pathlib import Path

from _common import (
    SALES,
    Figure,
    database,
    interleaved,
    median,
    ms,
    note,
    parse_args,
    percentile,
    report,
    service_in_thread,
)
from pydantic import SecretStr

from elegere_widgets.client import Client
from elegere_widgets.connectivity import EgressPolicy, test_smtp
from elegere_widgets.models import SmtpServerSpec, SmtpSettings
from tests.fixtures.certs import make_pki
from tests.fixtures.smtp import ACCOUNT, PASSWORD, SmtpPeer

TARGET = 1.3
SENDER = "sales@acme.example"


def bare_smtplib(host: str, port: int, context: ssl.SSLContext) -> None:
    with smtplib.SMTP(host, port, local_hostname="localhost", timeout=15) as smtp:
        smtp.starttls(context=context)
        smtp.login(ACCOUNT, PASSWORD)
    # leaving the with-block sends QUIT


def same_commands(host: str, port: int, context: ssl.SSLContext) -> None:
    """The baseline plus what the staged test also asks: MAIL FROM, RCPT TO, RSET."""
    with smtplib.SMTP(host, port, local_hostname="localhost", timeout=15) as smtp:
        smtp.starttls(context=context)
        smtp.login(ACCOUNT, PASSWORD)
        smtp.mail(SENDER)
        smtp.rcpt(SENDER)
        smtp.rset()


def main() -> None:
    args = parse_args(
        __doc__.splitlines()[0],
        add=lambda p: p.add_argument("--runs", type=int, default=None),
    )
    runs = args.runs or (10 if args.quick else 30)
    egress = EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1-65535"])
    with tempfile.TemporaryDirectory(prefix="elegere-bench-pki-") as tmp:
        pki = make_pki(Path(tmp))
        context = pki.client_context()
        with SmtpPeer("starttls", pki=pki) as peer:
            settings = SmtpSettings(
                server=peer.host,
                port=peer.port,
                use_ssl=True,
                account=ACCOUNT,
                sender_address=SENDER,
                password=SecretStr(PASSWORD),
            )

            def staged() -> None:
                result = test_smtp(settings, egress=egress, ssl_context=context)
                assert result.ok, result

            # For information: the same test through the service (HTTP, auth, receipt, audit).
            spec = SmtpServerSpec(name="Overhead", settings=settings)
            with (
                database("sqlite", "overhead") as url,
                service_in_thread(
                    url, smtp_ca_file=pki.ca.cert_path, test_rate_limit=1_000_000
                ) as svc,
                Client(svc.url, svc.token, timeout=30) as client,
            ):

                def api() -> None:
                    result = client.email_servers.test(SALES, spec)
                    assert result.ok, result

                load = note(
                    f"STARTTLS + AUTH peer on port {peer.port}: {runs} interleaved runs of each"
                )
                times = interleaved(
                    {
                        "staged": staged,
                        "bare": lambda: bare_smtplib(peer.host, peer.port, context),
                        "same": lambda: same_commands(peer.host, peer.port, context),
                        "api": api,
                    },
                    runs=runs,
                    warmup=3,
                )
    staged_p50, bare_p50 = median(times["staged"]), median(times["bare"])
    for name, label in (
        ("staged", "test_smtp"),
        ("bare", "bare smtplib"),
        ("same", "smtplib with MAIL/RCPT/RSET too (for information)"),
        ("api", "POST …/email-servers/test (for information)"),
    ):
        print(f"  {label}: median {ms(median(times[name]))}, p90 {ms(percentile(times[name], 90))}")
    report(
        Figure(
            name="Test connection overhead (STARTTLS + AUTH), median",
            measured=staged_p50 * 1000,
            baseline=bare_p50 * 1000,
            unit="ms",
            target=f"≤ {TARGET:g}×",
            met=staged_p50 <= TARGET * bare_p50,
            note=f"median of {runs} interleaved runs",
            load=load,
        )
    )


if __name__ == "__main__":
    main()
