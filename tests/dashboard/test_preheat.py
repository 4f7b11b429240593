"""``wait_for_visitor`` against Voilà's own request-info websocket handler."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

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


# ------------------------------------------------------------- pinned to Voilà's own

# The request info Voilà's page handler sends (voila/handler.py), with the values of a visit.
VISIT = {
    "SCRIPT_NAME": "/voila/render/dashboard.ipynb",
    "PATH_INFO": "",
    "QUERY_STRING": "workspace=Sales&tab=servers",
    "SERVER_SOFTWARE": "voila/0.5",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_PORT": "8866",
    "SERVER_NAME": "127.0.0.1",
}


class RecordingVoilaQueryServer:
    """Voilà's ``RequestInfoSocketHandler`` under any base path, noting the path each kernel
    connected to, so that both waits can be compared on what they ask for and what they get."""

    def __init__(self) -> None:
        import tornado.web
        from voila.request_info_handler import RequestInfoSocketHandler

        paths: dict[str, str] = {}
        self.paths = paths

        class Recording(RequestInfoSocketHandler):  # type: ignore[misc]
            def open(self, kernel_id: str) -> None:
                paths[kernel_id] = self.request.path
                super().open(kernel_id)

        self.handler = Recording
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            app = tornado.web.Application([(r".*/voila/query/(?P<kernel_id>[\w-]+)", Recording)])
            self.server = app.listen(self.port, address="127.0.0.1")
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def visit(self, kernel_id: str, payload: dict[str, str]) -> None:
        self.loop.call_soon_threadsafe(
            self.handler.send_updates, {"kernel_id": kernel_id, "payload": payload}
        )

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def recording_voila() -> Iterator[RecordingVoilaQueryServer]:
    server = RecordingVoilaQueryServer()
    yield server
    server.stop()


def _voilas_wait() -> None:
    from voila.utils import wait_for_request

    wait_for_request()


def _run_wait(
    wait: Callable[[], None],
    environ: dict[str, str],
    server: RecordingVoilaQueryServer,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str | None, dict[str, str | None]]:
    """Run one wait in a kernel-like environment, visit the page if it connected; answer the
    path it connected to (None: it did not) and the visit's variables it left in os.environ."""
    kernel_id = str(uuid.uuid4())  # Voilà caches a visit per kernel id: a new one per run
    for name in (*ENVIRONMENT, *VISIT):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value.format(port=server.port, kernel_id=kernel_id))
    done = threading.Event()

    def run() -> None:
        wait()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while kernel_id not in server.paths and not done.is_set():
        assert time.monotonic() < deadline, "neither connected to Voilà nor returned"
        time.sleep(0.01)
    if kernel_id in server.paths:
        server.visit(kernel_id, VISIT)
    assert done.wait(10), "still waiting after the visit"
    path = server.paths.get(kernel_id)
    path = path.replace(kernel_id, "{kernel_id}") if path else None
    return path, {name: os.environ.get(name) for name in VISIT}


# What Voilà puts in a kernel's environment (voila_kernel_manager.py, handler.py).
ENVIRONMENT = (
    "VOILA_PREHEAT",
    "VOILA_KERNEL_ID",
    "VOILA_APP_IP",
    "VOILA_APP_PORT",
    "VOILA_WS_PROTOCOL",
    "VOILA_SERVER_URL",
    "VOILA_WS_BASE_URL",
)
PREHEATED = {"VOILA_PREHEAT": "True", "VOILA_KERNEL_ID": "{kernel_id}", "VOILA_APP_PORT": "{port}"}


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param(PREHEATED, id="preheated-defaults"),
        pytest.param(
            {**PREHEATED, "VOILA_APP_IP": "127.0.0.1", "VOILA_WS_PROTOCOL": "ws"}, id="all-set"
        ),
        pytest.param({**PREHEATED, "VOILA_SERVER_URL": "/dashboards/"}, id="server-url"),
        pytest.param(
            {**PREHEATED, "VOILA_SERVER_URL": "/dashboards/", "VOILA_WS_BASE_URL": "/ws/"},
            id="ws-base-url-wins",
        ),
        pytest.param({"VOILA_KERNEL_ID": "{kernel_id}", "VOILA_APP_PORT": "{port}"}, id="plain"),
        pytest.param({**PREHEATED, "VOILA_PREHEAT": "False"}, id="rendered-on-request"),
    ],
)
def test_waits_like_voilas_own_wait_for_request(
    environ: dict[str, str],
    recording_voila: RecordingVoilaQueryServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The copy in preheat.py must keep doing what ``voila.utils.wait_for_request`` does: the
    same websocket for the same kernel environment, the same variables set from the visit, and
    no wait at all in a kernel Voilà did not preheat. An upgrade of Voilà that changes any of
    it fails here."""
    voilas = _run_wait(_voilas_wait, environ, recording_voila, monkeypatch)
    ours = _run_wait(wait_for_visitor, environ, recording_voila, monkeypatch)
    assert ours == voilas
    connected = environ.get("VOILA_PREHEAT") == "True"
    assert (voilas[0] is not None) == connected  # the cases test what they are named after
    assert voilas[1] == (VISIT if connected else dict.fromkeys(VISIT))


def test_voila_marks_its_kernels_with_the_values_preheat_py_reads() -> None:
    """wait_for_visitor waits only when VOILA_PREHEAT is exactly "True" (Voilà's own waits
    unless it is "False"): that agrees while Voilà sets nothing but these two values."""
    import re
    from pathlib import Path

    import voila

    package = Path(voila.__file__).parent
    assigned = set()
    for module in package.glob("*.py"):
        assigned |= set(
            re.findall(r"\[ENV_VARIABLE\.VOILA_PREHEAT\]\s*=\s*\"(\w+)\"", module.read_text())
        )
    assert assigned == {"True", "False"}
