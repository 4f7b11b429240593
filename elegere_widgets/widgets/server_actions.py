"""Test now and Send test email: staged work on a stored server, shown stage by stage as a
connection test is (the same :class:`ConnectionTestView`, with its own words).

- :class:`TestNowView` re-runs the connection test of the stored settings; the service keeps
  it as one of the server's checks, so its health follows.
- :class:`SendTestView` sends one message to an address (the signed-in admin's by default),
  in one session whose stages show as they end, as a connection test's do (SMTP: resolve → …
  → recipient → data; Microsoft Graph: certificate → token → send), the last with the
  server's reply. The service records the message as a delivery.

Neither calls the client: the panel passes the calls.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets

from ..errors import ElegereError, InvalidSettings
from ..models import ConnectionTestResult, EmailServer, FieldError, SendTestResult, Stage
from ..models.servers import check_email
from .common import Runner, button, close_tree, css, esc, handles_errors
from .connection_test import ConnectionTestView, Run, StageCallback, Wording
from .formatting import stage_title
from .palette import var
from .state import TestTracker

#: The one stage a test message shows when the service gave no stages (an older service).
SEND_STAGE = "send"
#: Sends the test message to an address, handing each stage to the callback as it ends.
SendCall = Callable[[str, StageCallback], SendTestResult]


def as_stages(result: SendTestResult, server: EmailServer) -> ConnectionTestResult:
    """A test message's outcome as the stage view shows results: its stages, or (from a
    service that streams none) one Send stage with the outcome's words."""
    stages = result.stages or [
        Stage(name=SEND_STAGE, ok=result.ok, elapsed_ms=result.elapsed_ms, detail=result.detail)
    ]
    return ConnectionTestResult(
        ok=result.ok, server_type=server.type, elapsed_ms=result.elapsed_ms, stages=stages
    )


class _StagedAction(ipywidgets.VBox):
    """What Test now and Send test email share: a framed title and note, the fields (if any),
    the stage view running the work, and Close (which stops waiting for it)."""

    def __init__(
        self,
        server: EmailServer,
        tester: ConnectionTestView,
        *,
        on_close: Callable[[], None],
        close_class: str,
        title: str,
        note: str,
        fields: tuple[ipywidgets.Widget, ...] = (),
        view_class: str,
    ) -> None:
        self.server = server
        self._on_close = on_close
        self.tester = tester
        self.status = tester.status
        self.close_button = button("Close", close_class)
        self.close_button.on_click(self._on_close_click)
        super().__init__()
        self.layout = ipywidgets.Layout(border=f"1px solid {var('frame')}", padding="4px 12px")
        self.children = [
            css(ipywidgets.HTML(f"<h4>{esc(title)}</h4>"), "elegere-action-title"),
            css(ipywidgets.HTML(f'<span class="elegere-small-note">{esc(note)}</span>')),
            *fields,
            tester,
            self.close_button,
        ]
        css(self, view_class)

    def start(self) -> None:
        self.tester.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self.tester.wait(timeout)

    def _refresh(self) -> None:
        self.tester.test_button.disabled = self.tester.tracker.running

    def show_error(self, exc: ElegereError) -> None:
        self.status.error(str(exc))

    @handles_errors
    def _on_close_click(self, _button: object = None) -> None:
        self.tester.cancel()
        self._on_close()

    def close(self) -> None:
        close_tree(self)


class TestNowView(_StagedAction):
    """Test now on one server: the stages as they end, the summary, Test again and Close."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        server: EmailServer,
        *,
        on_test: Run,
        on_close: Callable[[], None],
        on_result: Callable[[ConnectionTestResult], None] | None = None,
        run_in_thread: Runner | None = None,
    ) -> None:
        tester = ConnectionTestView(
            tracker=TestTracker(),
            prepare=lambda: (server.id, on_test),
            on_error=lambda _exc: None,  # the tester's status line says it
            on_update=self._refresh,
            run_in_thread=run_in_thread,
            wording=Wording(
                button="Test again",
                button_class="elegere-test-again",
                busy=f"Testing the stored settings of '{server.name}'…",
            ),
            on_result=on_result,
        )
        super().__init__(
            server,
            tester,
            on_close=on_close,
            close_class="elegere-close-test-now",
            title=f"Test now — {server.name}",
            note=(
                "The stored settings, secrets included, as the scheduled checks test them. The "
                "result is kept as one of its checks, and its health follows."
            ),
            view_class="elegere-test-now",
        )
        self.test_button = tester.test_button


class SendTestView(_StagedAction):
    """Send test email: To (the signed-in admin's address by default), Send, and the
    outcome stage by stage. ``on_send(address, on_stage)`` sends (in the worker thread)."""

    def __init__(
        self,
        server: EmailServer,
        to: str,
        *,
        on_send: SendCall,
        on_close: Callable[[], None],
        on_result: Callable[[ConnectionTestResult], None] | None = None,
        run_in_thread: Runner | None = None,
    ) -> None:
        self._on_send = on_send
        self.sent_to = ""
        self.to = css(
            ipywidgets.Text(
                value=to,
                description="To",
                placeholder="someone@example.com",
                style={"description_width": "40px"},
                layout=ipywidgets.Layout(width="420px"),
            ),
            "elegere-send-to",
        )
        self.to_error = css(ipywidgets.HTML(), "elegere-send-to-error")
        tester = ConnectionTestView(
            tracker=TestTracker(),
            prepare=self._prepare,
            on_error=self._show_field_error,
            on_update=self._refresh,
            run_in_thread=run_in_thread,
            wording=Wording(
                button="Send",
                button_class="elegere-send",
                icon="paper-plane",
                busy=f"Sending through '{server.name}'…",
                cancel="Stop waiting",
                cancel_class="elegere-cancel-send",
                cancelled=(
                    "Stopped waiting: the message may still go out. Its delivery shows in the "
                    "details."
                ),
                summarize=self._summary,
            ),
            on_result=on_result,
        )
        super().__init__(
            server,
            tester,
            on_close=on_close,
            close_class="elegere-close-send-test",
            title=f"Send test email — {server.name}",
            note=(
                "One message goes out through this server with its stored settings, in one "
                "session shown stage by stage, and is recorded as one of its deliveries. Any "
                "address may receive it."
            ),
            fields=(self.to, self.to_error),
            view_class="elegere-send-test-view",
        )
        self.send_button = tester.test_button
        self.to.observe(lambda _change: self._show_field_error(None), names="value")

    # ------------------------------------------------------------ the work

    def _prepare(self) -> tuple[str, Run]:
        """The address, checked as the service checks it, and the work; InvalidSettings on
        the To field otherwise."""
        try:
            address = check_email(self.to.value.strip(), "address to send the test email to")
        except ValueError as exc:
            raise InvalidSettings(field_errors=[FieldError(field="to", message=str(exc))]) from None
        self.sent_to = address

        def run(on_stage: StageCallback) -> ConnectionTestResult:
            return as_stages(self._on_send(address, on_stage), self.server)

        return f"{self.server.id}:{address}", run

    def _summary(self, result: ConnectionTestResult) -> str:
        failed = result.failed_stage
        if failed is None:
            # The last stage's detail is the server's reply (an older service's one Send
            # stage starts with the address: said once).
            last = result.stages[-1].detail if result.stages else ""
            reply = last.removeprefix(f"Sent to {self.sent_to}:").strip()
            sent = f"Test email sent to {self.sent_to}"
            return f"{sent}: {reply}" if reply else f"{sent}."
        hint = f" {failed.hint.rstrip('.')}." if failed.hint else ""
        return f"Not sent ({stage_title(failed.name)} failed): {failed.detail.rstrip('.')}.{hint}"

    # ------------------------------------------------------------ handlers

    def _show_field_error(self, exc: ElegereError | None) -> None:
        message = exc.for_field("to") if isinstance(exc, InvalidSettings) else None
        self.to_error.value = (
            f'<span class="elegere-small-error">{esc(message)}</span>' if message else ""
        )

    def show_error(self, exc: ElegereError) -> None:
        super().show_error(exc)
        self._show_field_error(exc)
