"""Add Email Server: a stepper with visible steps 1 Type → 2 Settings → 3 Test → 4 Summary.

Next on the Test step stays disabled until a test of exactly the current settings passed
(``StepperState`` holds that rule); editing any setting afterwards disables it again. Complete
calls ``on_complete(spec, test_token)``: the wizard does not know what adding means.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets

from ..errors import ElegereError, InvalidSettings, NameTaken, TestRequired
from ..models import TYPE_LABELS
from .common import Runner, StatusLine, button, close_tree, css, esc, handles_errors, logger
from .connection_test import ConnectionTestView, TestCall
from .formatting import summary_html
from .forms import ServerForm, form_for
from .palette import var
from .state import STEP_TITLES, STEPS, Spec, StepperState, TestStatus, fingerprint

TYPE_HELP = {
    "smtp": "SMTP — a mail server you can log in to: its host name, port, account and password.",
    "microsoft_graph": "Microsoft Graph — a Microsoft 365 mailbox and an Entra ID app "
    "registration: tenant, client ID and its certificate.",
}
FAILURE_NOTE = (
    "You will not be able to proceed if the test fails: fix the settings (Back), then test again."
)


class AddServerWizard(ipywidgets.VBox):
    """The Add Email Server stepper; every control is an attribute a test can click."""

    def __init__(
        self,
        *,
        on_test: TestCall,
        on_complete: Callable[[Spec, str], None],
        on_cancel: Callable[[], None],
        run_in_thread: Runner | None = None,
    ) -> None:
        self.state = StepperState()
        self._on_complete = on_complete
        self._on_cancel = on_cancel
        self.form: ServerForm | None = None

        self.title = css(ipywidgets.HTML("<h4>Add Email Server</h4>"), "elegere-wizard-title")
        self.step_labels = [
            css(ipywidgets.HTML(), "elegere-step", f"elegere-step-{name}") for name in STEPS
        ]
        self.type_choice = css(
            ipywidgets.RadioButtons(
                options=[(TYPE_LABELS[t], t) for t in TYPE_HELP], value=None, description=""
            ),
            "elegere-type",
        )
        help_lines = "".join(f"<li>{esc(text)}</li>" for text in TYPE_HELP.values())
        self.type_help = css(ipywidgets.HTML(f"<ul>{help_lines}</ul>"), "elegere-type-help")
        self.settings_page = css(ipywidgets.VBox(), "elegere-settings-page")
        self.tester = ConnectionTestView(
            tracker=self.state.tests,
            get_spec=self._spec_to_test,
            on_test=on_test,
            on_error=self._test_error,
            on_update=self._refresh,
            run_in_thread=run_in_thread,
            failure_note=FAILURE_NOTE,
        )
        self.test_button = self.tester.test_button
        self.cancel_test_button = self.tester.cancel_test_button
        self.test_hint = css(
            ipywidgets.HTML(
                "<i>Next is enabled once a test of exactly these settings has passed.</i>"
            ),
            "elegere-test-hint",
        )
        self.summary = css(ipywidgets.HTML(), "elegere-summary")
        self.pages = css(
            ipywidgets.Stack(
                [
                    ipywidgets.VBox([self.type_choice, self.type_help]),
                    self.settings_page,
                    ipywidgets.VBox([self.test_hint, self.tester]),
                    ipywidgets.VBox([self.summary]),
                ],
                selected_index=0,
            ),
            "elegere-pages",
        )
        self.back_button = button("Back", "elegere-back", icon="arrow-left")
        self.next_button = button("Next", "elegere-next", icon="arrow-right")
        self.complete_button = button(
            "Complete", "elegere-complete", icon="check", button_style="success"
        )
        self.cancel_button = button("Cancel", "elegere-cancel-wizard")
        self.status = StatusLine("elegere-wizard-status")

        self.type_choice.observe(self._on_type, names="value")
        self.back_button.on_click(self._on_back)
        self.next_button.on_click(self._on_next)
        self.complete_button.on_click(self._on_complete_click)
        self.cancel_button.on_click(self._on_cancel_click)
        super().__init__(
            [
                self.title,
                css(ipywidgets.HBox(self.step_labels), "elegere-steps"),
                self.pages,
                ipywidgets.HBox(
                    [self.back_button, self.next_button, self.complete_button, self.cancel_button]
                ),
                self.status,
            ],
            layout=ipywidgets.Layout(border=f"1px solid {var('frame')}", padding="4px 12px"),
        )
        css(self, "elegere-wizard")
        self._refresh()

    # ------------------------------------------------------------ the view follows the state

    def _refresh(self) -> None:
        state = self.state
        for i, (label, name) in enumerate(zip(self.step_labels, STEPS, strict=True)):
            current = i == state.step
            chip = "current" if current else ("done" if i < state.step else "todo")
            arrow = " →" if i < len(STEPS) - 1 else ""
            label.value = (
                f'<span class="elegere-step-chip elegere-step-chip-{chip}">'
                f"{i + 1} {STEP_TITLES[name]}</span>{arrow}"
            )
            (label.add_class if current else label.remove_class)("elegere-step-current")
        self.pages.selected_index = state.step
        on_summary = state.step_name == "summary"
        self.back_button.disabled = not state.can_back()
        self.next_button.disabled = not state.can_next()
        self.next_button.layout.display = "none" if on_summary else None
        self.complete_button.disabled = not state.can_complete()
        self.complete_button.layout.display = None if on_summary else "none"
        self.test_button.disabled = not state.can_test()
        self.cancel_test_button.disabled = not state.can_cancel_test()
        self.type_choice.disabled = state.busy

    @property
    def step(self) -> str:
        """The current step's name: type, settings, test or summary."""
        return self.state.step_name

    def _go(self, step_name: str) -> None:
        self.state.go(step_name)
        self._refresh()

    # ------------------------------------------------------------ type and settings

    @handles_errors
    def _on_type(self, change: dict[str, object]) -> None:
        server_type = self.type_choice.value
        if not self.state.choose_type(server_type):
            return
        if self.form is not None:
            self.form.close()  # its secrets go with it
            self.form = None
        if server_type is not None:
            self.form = form_for(str(server_type))
            self.form.on_change(self._on_settings_changed)
            self.settings_page.children = [self.form]
        self.tester.result = None
        self.tester.stages.value = ""
        self.tester.status.clear()
        self._refresh()

    def _on_settings_changed(self) -> None:
        if self.form is None:
            return
        try:
            self.state.settings_changed(self.form.fingerprint())
            self.tester.mark_stale(self.state.test_status)
            self._refresh()
        except Exception:  # the form calls this from its observer: never let it escape
            logger.exception("Bug after a settings change")

    def _spec_to_test(self) -> tuple[Spec, str]:
        if self.form is None:
            raise RuntimeError("No server type chosen.")
        spec = self.form.spec()
        fp = fingerprint(spec)
        self.state.settings_changed(fp)
        return spec, fp

    # ------------------------------------------------------------ navigation

    @handles_errors
    def _on_next(self, _button: object = None) -> None:
        name = self.state.step_name
        if name == "settings":
            assert self.form is not None
            self.form.spec()  # InvalidSettings shows next to the fields
            self.state.settings_changed(self.form.fingerprint())
        self.state.next()
        if self.state.step_name == "summary" and self.form is not None:
            self.summary.value = summary_html(
                [("Type", TYPE_LABELS[self.form.server_type]), *self.form.summary_rows()]
            )
        self.status.clear()
        self._refresh()

    @handles_errors
    def _on_back(self, _button: object = None) -> None:
        self.state.back()
        self.status.clear()
        self._refresh()

    @handles_errors
    def _on_complete_click(self, _button: object = None) -> None:
        assert self.form is not None
        spec = self.form.spec()
        self.state.settings_changed(self.form.fingerprint())
        token = self.state.test_token
        if not self.state.can_complete() or token is None:
            self._go("test")
            self.status.error("Test the connection of these settings again before completing.")
            return
        self.state.completing = True
        self._refresh()
        self.status.busy("Adding the server…")
        try:
            self._on_complete(spec, token)
        finally:
            self.state.completing = False
            if self.comm is not None:  # the owner may have closed the wizard on success
                self._refresh()

    @handles_errors
    def _on_cancel_click(self, _button: object = None) -> None:
        self._on_cancel()

    # ------------------------------------------------------------ errors

    def _test_error(self, exc: ElegereError) -> None:
        """An error of the test itself: field errors go back to the Settings step."""
        if isinstance(exc, InvalidSettings) and self.form is not None:
            self._fields_error(exc)

    def _fields_error(self, exc: InvalidSettings) -> None:
        assert self.form is not None
        elsewhere = self.form.show_errors(exc.field_errors)
        if len(elsewhere) < len(exc.field_errors) and self.state.step > 1:
            self._go("settings")
        extra = " ".join(elsewhere.values())
        self.status.error(f"Fix the fields marked in red. {extra}".strip())

    def show_error(self, exc: ElegereError) -> None:
        """A readable message: next to the field it is about, else in the wizard's status."""
        if isinstance(exc, InvalidSettings) and exc.field_errors and self.form is not None:
            self._fields_error(exc)
        elif isinstance(exc, NameTaken) and self.form is not None:
            self.form.show_errors({"name": str(exc)})
            self._go("settings")
            self.status.error(str(exc))
        elif isinstance(exc, TestRequired):
            self.state.tests.reset()
            self.tester.result = None
            self.tester.stages.value = ""
            self.tester.status.clear()
            self._go("test")
            again = "" if "Test Connection" in str(exc) else " Run Test Connection again."
            self.status.error(f"{exc}{again}")
        else:
            self.status.error(str(exc))
        self._refresh()

    # ------------------------------------------------------------ lifetime

    def wait_for_test(self, timeout: float | None = None) -> bool:
        """Wait for the running test's thread to end; False on timeout."""
        return self.tester.wait(timeout)

    def close(self) -> None:
        """Close every widget; a running test's late result is ignored; no secret stays."""
        state = getattr(self, "state", None)  # close() also runs from Widget.__del__
        if state is not None:
            state.tests.cancel()
        form = getattr(self, "form", None)
        if form is not None:
            form.clear_secrets()
        close_tree(self)

    @property
    def test_status(self) -> TestStatus:
        return self.state.test_status
