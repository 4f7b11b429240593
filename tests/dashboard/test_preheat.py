"""``wait_for_visitor`` against Voilà's own request-info websocket handler."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest

from elegere_widgets.dashboard.preheat import query_url, wait_for_visitor
from tests.dashboard.launcher import free_port

KERNEL_ID = "0b7f6e98-4d8e-4b58-bc06-8b914239151f"


class VoilaQueryServer:
    """Voilà's ``RequestInfoSocketHandler`` alone, on a tornado loop in a thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        import tornado.web
        from voila.request_info_handler import RequestInfoSocketHandler

        asyncio.set_event_loop(self.loop)
        app = tornado.web.Application(
            [(r"/voila/query/(?P<kernel_id>[\w-]+)", RequestInfoSocketHandler)]
        )
        self.server = app.listen(self.port, address="127.0.0.1")
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def waiting(self) -> bool:
        from voila.request_info_handler import RequestInfoSocketHandler

        return KERNEL_ID in RequestInfoSocketHandler._waiters

    def visit(self, payload: dict[str, str]) -> None:
        from voila.request_info_handler import RequestInfoSocketHandler

        self.loop.call_soon_threadsafe(
            RequestInfoSocketHandler.send_updates, {"kernel_id": KERNEL_ID, "payload": payload}
        )

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def voila_query() -> Iterator[VoilaQueryServer]:
    server = VoilaQueryServer()
    yield server
    server.stop()


def test_outside_a_preheated_kernel_it_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    started = time.monotonic()
    wait_for_visitor()
    assert time.monotonic() - started < 0.1
    assert query_url({"VOILA_PREHEAT": "True"}) is None  # no kernel id: not Voilà's kernel
    assert query_url({"VOILA_PREHEAT": "False", "VOILA_KERNEL_ID": KERNEL_ID}) is None


def test_in_a_preheated_kernel_it_waits_for_the_request(
    voila_query: VoilaQueryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "VOILA_PREHEAT": "True",
        "VOILA_KERNEL_ID": KERNEL_ID,
        "VOILA_APP_PORT": str(voila_query.port),
        "VOILA_SERVER_URL": "/",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("QUERY_STRING", "SERVER_NAME"):  # set by the wait: restored after the test
        monkeypatch.setenv(name, "")
    done = threading.Event()

    def wait() -> None:
        wait_for_visitor()
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    deadline = time.monotonic() + 10
    while not voila_query.waiting():
        assert time.monotonic() < deadline, "never connected to Voilà"
        time.sleep(0.02)
    assert not done.wait(0.3), "returned before anyone visited"
    voila_query.visit({"QUERY_STRING": "workspace=Sales", "SERVER_NAME": "127.0.0.1"})
    assert done.wait(10)
    assert os.environ["QUERY_STRING"] == "workspace=Sales"


def test_when_voila_is_gone_the_page_renders_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_KERNEL_ID", KERNEL_ID)
    monkeypatch.setenv("VOILA_APP_PORT", str(free_port()))  # nothing listens
    started = time.monotonic()
    wait_for_visitor()
    assert time.monotonic() - started < 6
