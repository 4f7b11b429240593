"""SMTP servers that answer with garbage, without end, or not at all: the connection test
fails within its time budget, at the stage where the server went wrong, with a detail that
says so in bounded words, and never raises."""

from __future__ import annotations

import time

import pytest

from elegere_widgets.connectivity import EgressPolicy, test_smtp
from elegere_widgets.models import ConnectionTestResult, SmtpSettings, Stage
from tests.hostile.smtp_servers import (
    Behaviour,
    HostileServer,
    drip_during_ehlo,
    endless_multiline,
    garbage_banner,
    huge_banner_line,
    random_garbage,
)

#: What a stage's detail or hint may hold at most, whatever the server sent.
TEXT_MAX = 512
#: The budget plus what the brief allows for ending the session after it.
SLACK_S = 0.5

HTTP_ANSWER = (
    b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\r\n"
    b"<html><body>" + b"<p>400 Bad Request</p>" * 500 + b"</body></html>\r\n"
)


@pytest.fixture(scope="module")
def egress() -> EgressPolicy:
    return EgressPolicy.from_strings(["127.0.0.0/8"], ports=["1024-65535"])


def _settings(port: int) -> SmtpSettings:
    # No password: the attacks happen before AUTH, and none needs TLS to be reached.
    return SmtpSettings(
        server="127.0.0.1",
        port=port,
        use_ssl=False,
        account="sales",
        sender_address="sales@example.com",
        password=None,
    )


def _run(behaviour: Behaviour, egress: EgressPolicy, budget_s: float) -> tuple[Stage, float]:
    with HostileServer(behaviour) as server:
        started = time.monotonic()
        result = test_smtp(_settings(server.port), egress=egress, budget_s=budget_s)
        elapsed = time.monotonic() - started
    return _failed_stage(result), elapsed


def _failed_stage(result: ConnectionTestResult) -> Stage:
    assert not result.ok
    stage = result.failed_stage
    assert stage is not None and stage is result.stages[-1]
    assert stage.detail.strip() and stage.hint and stage.hint.strip(), stage
    for text in (stage.detail, stage.hint):
        assert len(text) <= TEXT_MAX, f"{len(text)} characters: {text[:200]!r}…"
        # Control characters from the wire would reach logs and terminals as they came.
        assert all(c.isprintable() for c in text), repr(text)
    return stage


@pytest.mark.parametrize(
    ("payload", "close"),
    [
        (HTTP_ANSWER, True),
        (HTTP_ANSWER, False),
        (random_garbage(seed=6), False),
        (random_garbage(seed=7), True),
        (b"\x1b[2J\x1b[31mOWNED\x00\x07\r\n", False),
    ],
    ids=["http-closes", "http-holds", "random-holds", "random-closes", "terminal-escapes"],
)
def test_garbage_banner_is_not_smtp(payload: bytes, close: bool, egress: EgressPolicy) -> None:
    budget = 3.0
    stage, elapsed = _run(garbage_banner(payload, close=close), egress, budget)
    assert stage.name == "connect"
    assert stage.detail.startswith("Not an SMTP reply")
    if payload.startswith(b"HTTP/"):
        assert stage.detail == "Not an SMTP reply: HTTP/1.1 400 Bad Request"
    assert stage.hint is not None and "does not speak SMTP" in stage.hint
    # Fails on the first line: no waiting for the budget.
    assert elapsed < 1.0


@pytest.mark.parametrize("at_greeting", [True, False], ids=["greeting", "ehlo"])
def test_endless_multiline_reply_is_cut_off_not_buffered(
    at_greeting: bool, egress: EgressPolicy
) -> None:
    # Loopback delivers hundreds of MB a second: only a cap on the reply keeps memory bounded,
    # and it ends the test long before the budget would.
    budget = 5.0
    stage, elapsed = _run(endless_multiline(at_greeting=at_greeting), egress, budget)
    # The first EHLO runs in the tls stage, where STARTTLS is looked for.
    assert stage.name == ("connect" if at_greeting else "tls")
    assert stage.detail == "The server's reply is not SMTP: a reply of over 100 lines"
    assert "SMTP" in (stage.hint or "")
    assert elapsed < 1.5


def test_one_megabyte_banner_line_is_refused_at_the_line_limit(egress: EgressPolicy) -> None:
    budget = 3.0
    stage, elapsed = _run(huge_banner_line(), egress, budget)
    assert stage.name == "connect"
    assert stage.detail == "The server's reply is not SMTP: a reply line of over 8192 bytes"
    assert "SMTP" in (stage.hint or "")
    assert elapsed < 1.0


@pytest.mark.slow
def test_ehlo_answer_dripping_one_byte_a_second_ends_at_the_budget(
    egress: EgressPolicy,
) -> None:
    budget = 2.0
    stage, elapsed = _run(drip_during_ehlo(interval=1.0), egress, budget)
    assert stage.name == "tls"  # the first EHLO, looking for STARTTLS
    assert stage.detail == "No answer within 2 s (tls)"
    assert stage.hint is not None and stage.hint.startswith("The server did not answer within 2 s")
    assert budget - 0.1 <= elapsed < budget + SLACK_S
