"""Mail as the platform sends it: ``POST …/messages`` to real ``elegere serve`` processes, real
``elegere worker`` processes, an aiosmtpd sink; the service SIGKILLed mid-burst, two of each
process on PostgreSQL + Redis, hostile input over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from elegere_widgets.server.context import ServiceContext
from elegere_widgets.server.seed import create_token
from elegere_widgets.server.store.tables import CustomActionRow, MessageRow
from elegere_widgets.server.worker.queue import build_huey
from tests.conftest import ADMIN
from tests.fixtures.messages import add_peer_server, make_store, message_ids_at
from tests.fixtures.processes import stop_all, store_env
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer

from .conftest import wait_until

SALES = "/api/v1/workspaces/ws_sales"
QUOTE = {"kind": "custom_action", "id": "ca_send_quote"}
REDIS_ENV = "ELEGERE_TEST_REDIS_URL"
PG_ENV = "ELEGERE_TEST_DATABASE_URL"
FINAL = {"sent", "failed"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """``elegere serve`` and ``elegere worker`` processes over one store, as a user runs them."""

    def __init__(self, ctx: ServiceContext, logs: Path) -> None:
        self.ctx = ctx
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        return store_env(self.ctx, ELEGERE_LEASE_S="5", ELEGERE_SWEEP_INTERVAL_S="0.5")

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{args[0]}{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "elegere_widgets.server.cli", *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def worker(self, threads: int = 4) -> subprocess.Popen[bytes]:
        return self._start("worker", "--threads", str(threads))

    def serve(self) -> tuple[subprocess.Popen[bytes], str]:
        port = _free_port()
        proc = self._start("serve", "--port", str(port), "--log-level", "warning")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                return proc, url
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"elegere serve did not start; see {self.logs}") from None
                time.sleep(0.1)

    def stop_all(self) -> None:
        stop_all(self.procs)


@pytest.fixture
def processes(store: ServiceContext, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(store, tmp_path)
    yield running
    running.stop_all()


def _route_quotes_to(ctx: ServiceContext, sink: SmtpPeer) -> None:
    """The "Send quote" custom action sends through a server that reaches the sink."""
    add_peer_server(ctx, sink, "srv_peer")
    with ctx.sessions.begin() as s:
        s.execute(
            update(CustomActionRow)
            .where(CustomActionRow.id == "ca_send_quote")
            .values(email_server_id="srv_peer")
        )


def _statuses(ctx: ServiceContext) -> dict[str, int]:
    with ctx.sessions() as s:
        rows = s.execute(select(MessageRow.status, func.count()).group_by(MessageRow.status))
        return {status: n for status, n in rows}


def _all_final(ctx: ServiceContext) -> bool:
    return set(_statuses(ctx)) <= FINAL


def _subjects_at(sink: SmtpPeer) -> list[str]:
    return [m.subject for m in sink.messages]


def _quote(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "sender": QUOTE,
        "idempotency_key": key,
        "to": [f"{key}@example.org"],
        "subject": f"burst {key}",
        "text": f"Message {key}",
        **changes,
    }


# ------------------------------------------------------------ the service SIGKILLed mid-burst


@pytest.mark.slow
def test_sigkill_the_service_mid_burst_delivers_every_accepted_message_only(
    store: ServiceContext,
    sink: SmtpPeer,
    processes: Processes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _route_quotes_to(store, sink)
    token = create_token(store, ADMIN)
    service, url = processes.serve()
    processes.worker()
    accepted: set[str] = set()  # answered 202
    refused: set[str] = set()  # answered with an error status
    unanswered: set[str] = set()  # the connection dropped: committed or not, nobody knows
    lock = threading.Lock()

    def submit(thread: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for n in range(10_000):
                key = f"t{thread}n{n}"
                # Every 4th message has a bad address: answered 422, it must never go out.
                body = _quote(key, to=["not-an-address"]) if n % 4 == 3 else _quote(key)
                try:
                    r = http.post(f"{SALES}/messages", json=body)
                except httpx.TransportError:
                    with lock:
                        unanswered.add(key)
                    return
                with lock:
                    (accepted if r.status_code == 202 else refused).add(key)

    threads = [threading.Thread(target=submit, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    wait_until("60 messages accepted", lambda: len(accepted) >= 60, timeout=60)
    service.send_signal(signal.SIGKILL)
    service.wait(10)
    for t in threads:
        t.join(60)

    wanted = {f"burst {k}" for k in accepted}
    wait_until("every accepted message at the sink", lambda: wanted <= set(_subjects_at(sink)), 180)
    wait_until("every stored message final", lambda: _all_final(store), 180)
    delivered = Counter(_subjects_at(sink))
    delivered_keys = {s.removeprefix("burst ") for s in delivered}
    committed_unanswered = delivered_keys & unanswered

    with capsys.disabled():
        print(
            f"\n[service SIGKILL] {len(accepted)} answered 202, {len(refused)} answered with an "
            f"error, {len(unanswered)} unanswered ({len(committed_unanswered)} of them had "
            f"committed); {len(delivered)} delivered, "
            f"{sum(delivered.values()) - len(delivered)} duplicate(s)"
        )
    assert refused, "the burst had no refused message: the test would prove nothing"
    assert accepted <= delivered_keys
    assert delivered_keys <= accepted | unanswered
    assert not delivered_keys & refused
    assert all(n == 1 for n in delivered.values())
    assert _statuses(store).get("failed", 0) == 0

    # A client that retries an unanswered request with its key gets each message once: 200
    # for the ones that had committed, 202 for the others, and no second copy.
    _, url = processes.serve()
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for key in sorted(unanswered):
            r = http.post(f"{SALES}/messages", json=_quote(key))
            assert r.status_code == (200 if key in committed_unanswered else 202), r.text
    everything = {f"burst {k}" for k in accepted | unanswered}
    wait_until("the retried messages at the sink", lambda: everything <= set(_subjects_at(sink)))
    wait_until("every stored message final", lambda: _all_final(store))
    assert sorted(_subjects_at(sink)) == sorted(everything)


# ------------------------------------------------------------ two of each on PostgreSQL + Redis


@pytest.mark.slow
@pytest.mark.skipif(
    not (os.environ.get(PG_ENV) and os.environ.get(REDIS_ENV)),
    reason=f"set {PG_ENV} and {REDIS_ENV} (e.g. redis://127.0.0.1:6379/15) for this run",
)
def test_two_services_and_two_workers_on_postgresql_and_redis_send_each_message_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fixtures.service import reset_database

    url = os.environ[PG_ENV]
    reset_database(url)
    ctx = make_store(url, tmp_path, queue_url=os.environ[REDIS_ENV])
    build_huey(ctx.settings).flush()
    processes = Processes(ctx, tmp_path)
    try:
        with SmtpPeer("plain") as sink:
            _route_quotes_to(ctx, sink)
            token = create_token(ctx, ADMIN)
            urls = [processes.serve()[1], processes.serve()[1]]
            processes.worker()
            processes.worker()
            answers: list[dict[str, Any]] = []

            def submit(half: int) -> None:
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=urls[half], headers=headers, timeout=60) as http:
                    for batch in range(5):
                        body = {
                            "messages": [
                                _quote(f"h{half}b{batch}m{n}", to=[f"r{n}@example.org"])
                                for n in range(100)
                            ]
                        }
                        r = http.post(f"{SALES}/messages", json=body)
                        assert r.status_code == 202, r.text
                        answers.extend(r.json()["items"])

            threads = [threading.Thread(target=submit, args=(h,)) for h in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert len(answers) == 1000
            wait_until("1,000 sent", lambda: _statuses(ctx) == {"sent": 1000}, timeout=300)
            received = message_ids_at(sink)
        with capsys.disabled():
            print(
                f"\n[2 services + 2 workers, PG+Redis] {len(answers)} accepted, "
                f"{len(received)} received, {len(set(received))} unique Message-IDs"
            )
        assert sorted(received) == sorted(a["message_id"] for a in answers)
    finally:
        processes.stop_all()
        build_huey(ctx.settings).flush()
        ctx.engine.dispose()


# ------------------------------------------------------------ hostile input over HTTP


@pytest.fixture
def http(service: RunningService) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.tokens[ADMIN]}"}
    with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
        yield client


INJECTIONS = [
    ("subject", {"subject": "Hallo\r\nBcc: spy@evil.example"}),
    ("subject", {"subject": "Hallo\rBcc: spy@evil.example"}),
    ("subject", {"subject": "Hallo\n\nA second body"}),
    ("to", {"to": ['"Evil\r\nBcc: spy@evil.example" <a@example.org>']}),
    ("to", {"to": ["Evil\nName <a@example.org>"]}),
    ("to", {"to": ["a@example.org\r\nBcc: spy@evil.example"]}),
    ("cc", {"cc": ["c@example.org\nBcc: spy@evil.example"]}),
    ("bcc", {"bcc": ["Spy\r <b@example.org>"]}),
    ("reply_to", {"reply_to": "r@example.org\r\nX-Evil: 1"}),
    ("reply_to", {"reply_to": "Name\n <r@example.org>"}),
]


def test_header_injection_is_refused_on_the_field_and_nothing_goes_out(
    service: RunningService, http: httpx.Client, sink: SmtpPeer, tmp_path: Path
) -> None:
    _route_quotes_to(service.ctx, sink)
    for field, changes in INJECTIONS:
        r = http.post(f"{SALES}/messages", json=_quote(uuid.uuid4().hex, **changes))
        assert r.status_code == 422, (changes, r.text)
        errors = {e["field"]: e["message"] for e in r.json()["errors"]}
        assert "line break" in errors[field], (changes, errors)
    good = http.post(f"{SALES}/messages", json=_quote("good"))
    assert good.status_code == 202
    processes = Processes(service.ctx, tmp_path)
    processes.worker()
    try:
        wait_until("the good message sent", lambda: _statuses(service.ctx) == {"sent": 1})
    finally:
        processes.stop_all()
    [got] = sink.messages
    assert got.subject == "burst good" and got.rcpt_tos == ["good@example.org"]
    assert b"evil" not in got.raw.lower()


SUBJECT = "Angebot für Zoë — 東京 ✓ " + "ü" * 80  # long enough to be folded
TEXT = "Grüße aus Köln!\nЦена: 42 €\n.\nA line with only a dot above.\n日本語のテキスト"
HTML = "<p>Grüße — <b>Zoë</b> 東京 €</p>"


@pytest.mark.parametrize("smtputf8", [True, False], ids=["smtputf8", "7bit"])
def test_non_ascii_subjects_bodies_and_idn_addresses_arrive_intact(
    service: RunningService, http: httpx.Client, tmp_path: Path, smtputf8: bool
) -> None:
    with SmtpPeer("plain", smtputf8=smtputf8) as sink:
        _route_quotes_to(service.ctx, sink)
        body = _quote(
            "intl",
            to=["Zoë Müller <zoe@bücher.example>"],
            cc=["ann@exämple.org"],
            reply_to="Verkauf Köln <verkauf@bücher.example>",
            subject=SUBJECT,
            text=TEXT,
            html=HTML,
        )
        r = http.post(f"{SALES}/messages", json=body)
        assert r.status_code == 202, r.text
        processes = Processes(service.ctx, tmp_path)
        processes.worker()
        try:
            wait_until("the message sent", lambda: _statuses(service.ctx) == {"sent": 1})
        finally:
            processes.stop_all()
        [got] = sink.messages
    if not smtputf8:  # then 7-bit on the wire, encoded words and IDNA, so any server takes it
        assert got.raw.isascii()
    # The bytes that arrived are UTF-8 (RFC 6532 allows raw UTF-8 headers under SMTPUTF8) and,
    # parsed, are exactly what was submitted.
    arrived = Parser(policy=policy.default).parsestr(got.raw.decode("utf-8"))
    assert isinstance(arrived, EmailMessage)
    assert arrived["Subject"] == SUBJECT
    assert arrived["Message-ID"] == r.json()["message_id"]
    [to] = arrived["To"].addresses
    assert (to.display_name, to.username) == ("Zoë Müller", "zoe")
    assert to.domain in ("bücher.example", "xn--bcher-kva.example")
    [reply_to] = arrived["Reply-To"].addresses
    assert reply_to.display_name == "Verkauf Köln"
    plain = arrived.get_body(("plain",))
    rich = arrived.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == TEXT
    assert rich.get_content().replace("\r\n", "\n").rstrip("\n") == HTML
    ascii_envelope = {"zoe@xn--bcher-kva.example", "ann@xn--exmple-cua.org"}
    if smtputf8:  # either form reaches the same mailboxes
        assert set(got.rcpt_tos) in (ascii_envelope, {"zoe@bücher.example", "ann@exämple.org"})
    else:
        assert set(got.rcpt_tos) == ascii_envelope


def test_accepting_a_message_never_waits_for_the_queue_which_is_signalled_once_free(
    service: RunningService, http: httpx.Client
) -> None:
    # The embedded queue held by another process's write, as a worker taking entries holds it:
    # the request answers without it (Huey itself would wait up to 5 s for the file), and the
    # worker's entry is written once the queue is free.
    huey = build_huey(service.ctx.settings)
    assert len(huey) == 0
    holder = sqlite3.connect(service.ctx.settings.data_dir / "queue.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with httpx.Client(base_url=service.url, headers=http.headers, timeout=2.0) as impatient:
            answer = impatient.post(f"{SALES}/messages", json=_quote("while-held"))
        assert answer.status_code == 202, answer.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until("the message's entry in the queue", lambda: len(huey) == 1, timeout=30)
