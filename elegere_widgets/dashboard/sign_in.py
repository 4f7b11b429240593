"""The sign-in form: email and password, through the service's eLegere-style token endpoint.

This is how staff without an API token reach the dashboard. The form does not know what comes
after: ``on_signed_in(client)`` does. The password never stays in the widget after a sign-in.

Why the sign-in waits a moment before it reads the fields: the browser sends a field's value
and a button's click as separate messages, and ipywidgets' front end holds back a model's update
while an earlier update of the same model is unanswered, while a click is never held back. So
a click (or Enter, whose "submit" the browser sends before the value) can reach the kernel
before the last characters typed. The fields commit on leaving them (``continuous_update``
off: one update, not one per key), and the sign-in runs in a worker thread after
``SETTLE_S``, while the kernel takes in what is still on its way.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import ipywidgets

from ..client import Client
from ..errors import AuthenticationRequired, ElegereError
from ..widgets.common import Runner, StatusLine, button, css, guard_callback, start_thread
from ..widgets.palette import var

#: ``Client.sign_in``'s shape: a test may pass its own.
SignIn = Callable[[str, str, str], Client]

WRONG_CREDENTIALS = "Wrong email or password. Check both and try again."
EMPTY = "Enter your email and your password."
SETTLE_S = 0.3
FIELD_WIDTH = "380px"  # a Layout is a widget: each field gets its own, closed with it
FIELD_STYLE = {"description_width": "90px"}


class SignInForm(ipywidgets.VBox):
    """Email, Password, Sign in, and a status line for what went wrong."""

    def __init__(
        self,
        url: str,
        *,
        on_signed_in: Callable[[Client], None],
        sign_in: SignIn | None = None,
        run_in_thread: Runner | None = None,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.url = url
        self._on_signed_in = on_signed_in
        self._sign_in = sign_in or Client.sign_in
        self._run = run_in_thread or start_thread
        self._settle_s = settle_s
        self.busy = False
        self.title = css(
            ipywidgets.HTML(
                "<h3 class='elegere-sign-in-heading'>Sign in</h3><div class='elegere-caption'>"
                "Sign in with your work email and password to manage the email servers of "
                "the workspaces you administer.</div>"
            ),
            "elegere-sign-in-title",
        )
        self.email = css(
            ipywidgets.Text(
                description="Email",
                placeholder="you@example.com",
                continuous_update=False,
                layout=ipywidgets.Layout(width=FIELD_WIDTH),
                style=FIELD_STYLE,
            ),
            "elegere-sign-in-email",
        )
        self.password = css(
            ipywidgets.Password(
                description="Password",
                continuous_update=False,
                layout=ipywidgets.Layout(width=FIELD_WIDTH),
                style=FIELD_STYLE,
            ),
            "elegere-sign-in-password",
        )
        self.sign_in_button = button(
            "Sign in", "elegere-sign-in", icon="sign-in", button_style="primary"
        )
        self.sign_in_button.layout.margin = "4px 0 0 94px"
        self.status = StatusLine("elegere-sign-in-status")
        self.sign_in_button.on_click(self._on_submit)
        with warnings.catch_warnings():
            # Enter in a field signs in, as on any sign-in page; ipywidgets 8 calls on_submit
            # deprecated, but its replacement (observing the value) would sign in on blur.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.email.on_submit(self._on_submit)
            self.password.on_submit(self._on_submit)
        super().__init__(
            [self.title, self.email, self.password, self.sign_in_button, self.status],
            layout=ipywidgets.Layout(
                border=f"1px solid {var('frame')}", padding="8px 16px 12px", width="460px"
            ),
        )
        css(self, "elegere-sign-in-form")

    def _on_submit(self, _source: object = None) -> None:
        if self.busy:  # a double click, or Enter and then a click
            return
        self.busy = True
        self.sign_in_button.disabled = True
        self.status.busy("Signing in…")
        try:
            self._run(guard_callback(self._sign_in_now, self.show_error, self.status))
        except Exception:
            self._done()
            raise

    def _sign_in_now(self) -> None:
        try:
            time.sleep(self._settle_s)  # see the module's docstring
            email, password = self.email.value.strip(), self.password.value
            if not email or not password:
                self.status.error(EMPTY)
                return
            client = self._sign_in(self.url, email, password)
            self.password.value = ""
            self.status.clear()
        finally:
            self._done()
        self._on_signed_in(client)

    def _done(self) -> None:
        self.busy = False
        self.sign_in_button.disabled = False

    def submit(self) -> None:
        """What clicking Sign in does."""
        self._on_submit()

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, AuthenticationRequired):
            self.status.error(WRONG_CREDENTIALS)
        else:
            self.status.error(str(exc))

    def reset(self) -> None:
        """Empty the password and the status line (after a sign-out)."""
        self.password.value = ""
        self.status.clear()
