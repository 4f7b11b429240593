"""Connection tests that hang (a server that accepts and never speaks) do not stall the
service: reads still answer, nothing answers 5xx, and beyond the caps a test is refused with
429 and Retry-After. Every attempt counts against the per-user limit."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
import pytest

from elegere_widgets.models import SmtpServerSpec, SmtpSettings
from tests.conftest import ADMIN, DELEGATE
from tests.fixtures.service import RunningService

SALES, SUPPORT = "ws_sales", "ws_support"
#: Long enough for every read below to answer first: the tests' budget is the signal.
BUDGET_S = 12.0
IN_SALES, IN_SUPPORT = 40, 24  # 64 in all


@pytest.fixture
def service_settings_overrides() -> dict[str, object]:
    return {
        "test_budget_s": BUDGET_S,
        "test_rate_limit": 1000,
        "tests_at_once": IN_SALES + IN_SUPPORT,
        "tests_at_once_per_scope": IN_SALES,
    }


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.changed:
                self.accepted.append(conn)
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.accepted) >= count, timeout)

    def close(self) -> None:
        self.sock.close()
        with self.lock:
            for conn in self.accepted:
                conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _spec(port: int) -> dict[str, object]:
    return SmtpServerSpec(
        name="Silent relay",
        settings=SmtpSettings(
            server="127.0.0.1",
            port=port,
            account="sales",
            password="secret",
            sender_address="sales@acme.example",
        ),
    ).to_wire()


def test_64_hanging_tests_leave_reads_answering_and_caps_answer_429(
    service: RunningService, silent: SilentServer
) -> None:
    http = httpx.Client(
        base_url=f"{service.url}/api/v1",
        timeout=BUDGET_S * 4,
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
    )

    def auth(who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {service.tokens[who]}", **extra}

    # A second Workspace Admin: the Delegate grants itself the right on Support.
    assert http.put(f"/workspaces/{SUPPORT}/admins/{DELEGATE}", headers=auth(DELEGATE)).is_success
    body = _spec(silent.port)

    def run_test(who: str, ws: str, streamed: bool) -> httpx.Response:
        headers = auth(who, Accept="application/x-ndjson") if streamed else auth(who)
        response = http.post(f"/workspaces/{ws}/email-servers/test", json=body, headers=headers)
        response.read()
        return response

    pool = ThreadPoolExecutor(max_workers=IN_SALES + IN_SUPPORT + 8)
    hanging: list[Future[httpx.Response]] = []
    try:
        for i in range(IN_SALES):
            hanging.append(pool.submit(run_test, ADMIN, SALES, i % 4 == 0))
        assert silent.wait_for(IN_SALES, BUDGET_S), "the Sales tests did not all start"

        # Sales is at its cap: one more test, or a test send, is refused there at once.
        more = http.post(f"/workspaces/{SALES}/email-servers/test", json=body, headers=auth(ADMIN))
        assert more.status_code == 429, more.text
        assert int(more.headers["retry-after"]) >= 1
        assert "Sales" in more.json()["detail"] and "try again in" in more.json()["detail"]
        send = http.post(
            f"/workspaces/{SALES}/email-servers/srv_sales_mailer/send-test",
            json={"to": "someone@example.com"},
            headers=auth(ADMIN),
        )
        assert send.status_code == 429 and "retry-after" in send.headers

        for i in range(IN_SUPPORT):
            hanging.append(pool.submit(run_test, DELEGATE, SUPPORT, i % 4 == 0))
        assert silent.wait_for(IN_SALES + IN_SUPPORT, BUDGET_S), "not all 64 tests started"

        # 64 tests hang. Reads answer now, while every one of them is still waiting.
        me = http.get("/me", headers=auth(ADMIN))
        listed = http.get(f"/workspaces/{SALES}/email-servers", headers=auth(ADMIN))
        other = http.get(f"/workspaces/{SUPPORT}/email-servers", headers=auth(DELEGATE))
        assert not any(f.done() for f in hanging), "a read waited for the hanging tests"
        assert me.status_code == 200 and me.json()["email"] == ADMIN
        assert listed.status_code == 200 and len(listed.json()) >= 1
        assert other.status_code == 200
        # Far within the tests' budget: the reads did not queue behind them.
        assert me.elapsed.total_seconds() < 5 and listed.elapsed.total_seconds() < 5

        # The service is at its global cap: Support has room of its own, the service has not.
        full = http.post(
            f"/workspaces/{SUPPORT}/email-servers/test", json=body, headers=auth(DELEGATE)
        )
        assert full.status_code == 429, full.text
        assert int(full.headers["retry-after"]) >= 1
        assert "most connection tests" in full.json()["detail"]

        answers = [f.result() for f in hanging]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        http.close()
    assert [r.status_code for r in answers] == [200] * len(answers)
    plain = [r.json() for r in answers if r.headers["content-type"].startswith("application/json")]
    assert plain and all(not result["ok"] for result in plain)
    # The places are free again.
    assert service.ctx.network.running() == 0


def test_every_attempt_counts_against_the_limit_also_a_refused_one(
    service: RunningService,
) -> None:
    from elegere_widgets.server.rate_limit import RateLimiter

    service.ctx.test_limiter = RateLimiter(3, 60)
    headers = {"Authorization": f"Bearer {service.tokens[ADMIN]}"}
    url = f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test"
    body = _spec(1) | {"server_id": "srv_nope"}
    for _ in range(3):
        assert httpx.post(url, json=body, headers=headers).status_code == 404
    send = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/srv_nope/send-test",
        json={"to": "someone@example.com"},
        headers=headers,
    )
    assert send.status_code == 429 and int(send.headers["retry-after"]) >= 1
