"""Test Connection: runs in a worker thread, shows a spinner, then each stage, and can be cancelled.

The service streams the stages: each row (✓/✗, time, what happened, what to do) appears as
its stage ends, while the status says "Testing…"; the whole result then gives the summary.
A cancelled test's stages and result are ignored: its thread finishes in the background, unseen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ipywidgets

from ..errors import ElegereError
from ..models import ConnectionTestResult, Stage
from .common import BUG_MESSAGE, Runner, StatusLine, button, css, handles_errors, logger
from .common import start_thread as default_runner
from .formatting import result_summary, stages_html
from .state import Spec, TestStatus, TestTracker

StageCallback = Callable[[Stage], None]
# The spec to test, and what to call with each stage as it ends (from the worker thread).
TestCall = Callable[[Spec, StageCallback], ConnectionTestResult]


class ConnectionTestView(ipywidgets.VBox):
    """Test Connection and Cancel test, a status line and the stages of the last result.

    ``get_spec`` answers the spec to test and its fingerprint, or raises InvalidSettings;
    ``on_test`` calls the service (in the worker thread), passing each stage as it ends to
    the callback it is given; ``on_error`` shows an ElegereError
    where the owner wants it (field errors next to fields); ``on_update`` lets the owner
    enable its own buttons when a test starts, ends or is cancelled.
    """

    def __init__(
        self,
        *,
        tracker: TestTracker,
        get_spec: Callable[[], tuple[Spec, str]],
        on_test: TestCall,
        on_error: Callable[[ElegereError], None],
        on_update: Callable[[], None],
        run_in_thread: Runner | None = None,
        failure_note: str = "",
    ) -> None:
        self.tracker = tracker
        self._get_spec = get_spec
        self._on_test = on_test
        self._on_error = on_error
        self._on_update = on_update
        self._run = run_in_thread or default_runner
        self.failure_note = failure_note
        self.result: ConnectionTestResult | None = None
        # The test whose stages may show; a lock so that a cancel and a late stage never mix.
        self._shown_ticket: int | None = None
        self._stage_lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self.test_button = button(
            "Test Connection", "elegere-test", icon="plug", button_style="primary"
        )
        self.cancel_test_button = button("Cancel test", "elegere-cancel-test", disabled=True)
        self.status = StatusLine("elegere-test-status")
        self.stages = css(ipywidgets.HTML(), "elegere-stages")
        self.test_button.on_click(self._on_test_click)
        self.cancel_test_button.on_click(self._on_cancel_click)
        super().__init__(
            [
                ipywidgets.HBox([self.test_button, self.cancel_test_button]),
                self.status,
                self.stages,
            ]
        )
        css(self, "elegere-connection-test")

    # ------------------------------------------------------------ actions

    def start(self) -> None:
        """Test the owner's current settings in the background."""
        spec, fp = self._get_spec()
        ticket = self.tracker.begin(fp)
        done = self._done = threading.Event()
        self.result = None
        with self._stage_lock:
            self._shown_ticket = ticket
            self.stages.value = ""
        self.status.busy("Testing…")
        self.refresh()

        def work() -> None:
            try:
                self._finish(ticket, spec)
            finally:
                done.set()

        try:
            self._run(work)
        except Exception:
            done.set()
            self.tracker.abort(ticket)
            raise

    def cancel(self) -> None:
        if self.tracker.cancel():
            self.result = None
            with self._stage_lock:
                self._shown_ticket = None
                self.stages.value = ""
            self.status.info("Test cancelled; its result will be ignored. Test again to go on.")
        self.refresh()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the latest test's thread to end (cancelled ones included); False on timeout."""
        return self._done.wait(timeout)

    def refresh(self) -> None:
        running = self.tracker.running
        self.cancel_test_button.disabled = not running
        self._on_update()  # the owner decides whether Test Connection is enabled

    def mark_stale(self, status: TestStatus) -> None:
        """After an edit: the shown result no longer counts (or counts again, when the
        settings are back to the tested ones)."""
        if self.result is None:
            return
        if status is TestStatus.STALE:
            self.status.info("The settings changed since this test; test again to go on.")
        elif status in (TestStatus.PASSED, TestStatus.FAILED):
            self.show_result(self.result)

    # ------------------------------------------------------------ the worker thread

    def _finish(self, ticket: int, spec: Spec) -> None:
        seen: list[Stage] = []

        def on_stage(stage: Stage) -> None:
            with self._stage_lock:
                if self._shown_ticket != ticket or not self.tracker.running:
                    return  # cancelled, or another test started: not this one's to show
                seen.append(stage)
                self.stages.value = stages_html(seen)

        try:
            result = self._on_test(spec, on_stage)
        except ElegereError as exc:
            if self.tracker.abort(ticket):
                self.status.error(str(exc))
                self._on_error(exc)
        except Exception:
            logger.exception("Bug in the connection test")
            if self.tracker.abort(ticket):
                self.status.error(BUG_MESSAGE)
        else:
            if self.tracker.finish(ticket, ok=result.ok, token=result.test_token):
                self.show_result(result)
        finally:
            self.refresh()

    def show_result(self, result: ConnectionTestResult) -> None:
        self.result = result
        with self._stage_lock:
            self._shown_ticket = None
            self.stages.value = stages_html(result.stages)
        summary = result_summary(result)
        if result.ok:
            self.status.ok(summary)
        else:
            self.status.error(f"{summary} {self.failure_note}".strip())

    # ------------------------------------------------------------ handlers

    def show_error(self, exc: ElegereError) -> None:
        self.status.error(str(exc))
        self._on_error(exc)

    @handles_errors
    def _on_test_click(self, _button: object = None) -> None:
        self.start()

    @handles_errors
    def _on_cancel_click(self, _button: object = None) -> None:
        self.cancel()
