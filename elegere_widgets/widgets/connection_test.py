"""Test Connection: runs in a worker thread, shows a spinner, then each stage, and can be cancelled.

The service streams the stages: each row (✓/✗, time, what happened, what to do) appears as
its stage ends, while the status says "Testing…"; the whole result then gives the summary.
A cancelled test's stages and result are ignored: its thread finishes in the background, unseen.

The same view runs the staged work on a stored server (Test now, Send test email): it is
given ``prepare`` (what to run) instead of a form's spec, and its own :class:`Wording`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

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
#: Staged work, ready to run in the worker thread: it passes each stage as it ends.
Run = Callable[[StageCallback], ConnectionTestResult]
#: What to run now: its fingerprint (for the tracker) and the work; raises ElegereError (an
#: invalid field) to refuse before anything runs.
Prepare = Callable[[], tuple[str, Run]]


@dataclass(frozen=True)
class Wording:
    """What the view's controls and messages say, and its buttons' CSS classes."""

    button: str = "Test Connection"
    button_class: str = "elegere-test"
    icon: str = "plug"
    busy: str = "Testing…"
    cancel: str = "Cancel test"
    cancel_class: str = "elegere-cancel-test"
    cancelled: str = "Test cancelled; its result will be ignored. Test again to go on."
    summarize: Callable[[ConnectionTestResult], str] = result_summary


TEST_WORDING = Wording()


class ConnectionTestView(ipywidgets.VBox):
    """Test Connection and Cancel test, a status line and the stages of the last result.

    ``get_spec`` answers the spec to test and its fingerprint, or raises InvalidSettings;
    ``on_test`` calls the service (in the worker thread), passing each stage as it ends to
    the callback it is given. Instead of those two, ``prepare`` answers a fingerprint and the
    work itself (a stored server's test, a test message). ``on_error`` shows an ElegereError
    where the owner wants it (field errors next to fields); ``on_update`` lets the owner
    enable its own buttons when a test starts, ends or is cancelled; ``on_result`` hears a
    result that was shown (in the worker thread).
    """

    def __init__(
        self,
        *,
        tracker: TestTracker,
        get_spec: Callable[[], tuple[Spec, str]] | None = None,
        on_test: TestCall | None = None,
        prepare: Prepare | None = None,
        on_error: Callable[[ElegereError], None],
        on_update: Callable[[], None],
        run_in_thread: Runner | None = None,
        failure_note: str = "",
        wording: Wording = TEST_WORDING,
        on_result: Callable[[ConnectionTestResult], None] | None = None,
    ) -> None:
        if prepare is None:
            if get_spec is None or on_test is None:
                raise TypeError("Pass get_spec and on_test, or prepare.")
            prepare = _spec_test(get_spec, on_test)
        self.tracker = tracker
        self._prepare = prepare
        self._on_error = on_error
        self._on_update = on_update
        self._on_result = on_result
        self._run = run_in_thread or default_runner
        self.failure_note = failure_note
        self.wording = wording
        self.result: ConnectionTestResult | None = None
        # The test whose stages may show; a lock so that a cancel and a late stage never mix.
        self._shown_ticket: int | None = None
        self._stage_lock = threading.Lock()
        self._done = threading.Event()
        self._done.set()
        self.test_button = button(
            wording.button, wording.button_class, icon=wording.icon, button_style="primary"
        )
        self.cancel_test_button = button(wording.cancel, wording.cancel_class, disabled=True)
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
        """Test the owner's current settings (or run its prepared work) in the background."""
        fp, run = self._prepare()
        ticket = self.tracker.begin(fp)
        done = self._done = threading.Event()
        self.result = None
        with self._stage_lock:
            self._shown_ticket = ticket
            self.stages.value = ""
        self.status.busy(self.wording.busy)
        self.refresh()

        def work() -> None:
            try:
                self._finish(ticket, run)
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
            self.status.info(self.wording.cancelled)
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

    def _finish(self, ticket: int, run: Run) -> None:
        seen: list[Stage] = []

        def on_stage(stage: Stage) -> None:
            with self._stage_lock:
                if self._shown_ticket != ticket or not self.tracker.running:
                    return  # cancelled, or another test started: not this one's to show
                seen.append(stage)
                self.stages.value = stages_html(seen)

        try:
            result = run(on_stage)
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
                if self._on_result is not None:
                    self._on_result(result)
        finally:
            self.refresh()

    def show_result(self, result: ConnectionTestResult) -> None:
        self.result = result
        with self._stage_lock:
            self._shown_ticket = None
            self.stages.value = stages_html(result.stages)
        summary = self.wording.summarize(result)
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


def _spec_test(get_spec: Callable[[], tuple[Spec, str]], on_test: TestCall) -> Prepare:
    """The form's way: test the spec it holds now."""

    def prepare() -> tuple[str, Run]:
        spec, fp = get_spec()
        return fp, lambda on_stage: on_test(spec, on_stage)

    return prepare
