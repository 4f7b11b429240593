"""What the Email Servers views decide, in plain Python: no ipywidgets here.

- :func:`validate_spec` checks a form's values with the same models the service uses, so a
  field shows the same message the API would answer (both come from ``models.field_errors``).
- :func:`fingerprint` names exactly the settings and secrets of a spec. A passing test is bound
  to it, as the service binds its receipt: change a setting, and the pass no longer counts.
- :class:`TestTracker` runs one connection test at a time; a cancelled or superseded test's
  result is ignored.
- :class:`StepperState` is the Add Email Server stepper: Type → Settings → Test → Summary, and
  which button is enabled on each step.
- :class:`PortSuggestion`: checking Use SSL suggests 465, unchecking 587, unless the user
  chose a port.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..models import GraphServerSpec, SmtpServerSpec, field_errors

Spec = SmtpServerSpec | GraphServerSpec
SPEC_BY_TYPE: dict[str, type[SmtpServerSpec] | type[GraphServerSpec]] = {
    "smtp": SmtpServerSpec,
    "microsoft_graph": GraphServerSpec,
}

STEPS: tuple[str, ...] = ("type", "settings", "test", "summary")
STEP_TITLES: dict[str, str] = {
    "type": "Type",
    "settings": "Settings",
    "test": "Test",
    "summary": "Summary",
}

SSL_PORT = 465
STARTTLS_PORT = 587

# Keys the fingerprints of this process: a fingerprint of a password cannot be checked
# against guesses anywhere else.
_FINGERPRINT_KEY = secrets.token_bytes(32)


# ---------------------------------------------------------------- validation


def validate_spec(
    server_type: str,
    name: str,
    settings: Mapping[str, Any],
    *,
    server_id: str | None = None,
) -> tuple[Spec | None, dict[str, str]]:
    """The spec for these values, or ``(None, {field: message})`` with the API's messages."""
    try:
        spec = SPEC_BY_TYPE[server_type].model_validate(
            {"name": name, "settings": dict(settings), "server_id": server_id}
        )
    except ValidationError as exc:
        return None, {e.field: e.message for e in field_errors(exc)}
    return spec, {}


def fingerprint(spec: Spec) -> str:
    """A digest of the type, the settings and the secrets of ``spec`` (not of its name).

    The name is left out as the service leaves it out of its receipt: renaming a server before
    Complete keeps a passing test valid. Only the digest is kept, never the secrets; it is an
    HMAC under a key of this process.
    """
    settings = spec.settings
    document = {
        "type": spec.type,
        "server_id": spec.server_id,
        "settings": {**settings.public(), **settings.secrets()},
    }
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hmac.new(_FINGERPRINT_KEY, raw.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- connection tests


class TestStatus(enum.Enum):
    """Where the test of the current settings stands."""

    __test__ = False  # not a pytest test class

    NOT_RUN = "not run"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    STALE = "stale"  # the last test was of other settings: it says nothing about these
    CANCELLED = "cancelled"
    ERROR = "error"  # the test could not run (service down, invalid settings...)


@dataclass(frozen=True)
class _Outcome:
    fingerprint: str
    ok: bool
    token: str | None


class TestTracker:
    """One connection test at a time, each with a ticket; only the latest ticket counts.

    Thread-safe: tests finish in a worker thread while the user keeps clicking.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticket = 0
        self._running: tuple[int, str] | None = None
        self._outcome: _Outcome | None = None
        self._last_event = TestStatus.NOT_RUN

    @property
    def running(self) -> bool:
        with self._lock:
            return self._running is not None

    def begin(self, fp: str) -> int:
        """Start a test of the settings with this fingerprint; its ticket."""
        with self._lock:
            self._ticket += 1
            self._running = (self._ticket, fp)
            return self._ticket

    def cancel(self) -> bool:
        """Forget the running test: its result will be ignored. False when none runs."""
        with self._lock:
            if self._running is None:
                return False
            self._running = None
            self._ticket += 1
            self._last_event = TestStatus.CANCELLED
            return True

    def finish(self, ticket: int, *, ok: bool, token: str | None) -> bool:
        """Record the result of test ``ticket``; False (and nothing kept) when it was cancelled."""
        with self._lock:
            if self._running is None or self._running[0] != ticket:
                return False
            fp = self._running[1]
            self._running = None
            self._outcome = _Outcome(fp, ok, token if ok else None)
            self._last_event = TestStatus.PASSED if ok else TestStatus.FAILED
            return True

    def abort(self, ticket: int) -> bool:
        """Test ``ticket`` could not run; False when it was cancelled meanwhile."""
        with self._lock:
            if self._running is None or self._running[0] != ticket:
                return False
            self._running = None
            self._outcome = None
            self._last_event = TestStatus.ERROR
            return True

    def reset(self) -> None:
        """Forget every test, e.g. when the receipt was refused or the type changed."""
        with self._lock:
            self._ticket += 1
            self._running = None
            self._outcome = None
            self._last_event = TestStatus.NOT_RUN

    def status(self, fp: str | None) -> TestStatus:
        """The status of the settings with fingerprint ``fp`` (None: they are invalid)."""
        with self._lock:
            if self._running is not None:
                return TestStatus.RUNNING
            if self._last_event in (TestStatus.CANCELLED, TestStatus.ERROR):
                return self._last_event
            if self._outcome is None:
                return TestStatus.NOT_RUN
            if fp is None or self._outcome.fingerprint != fp:
                return TestStatus.STALE
            return TestStatus.PASSED if self._outcome.ok else TestStatus.FAILED

    def token_for(self, fp: str | None) -> str | None:
        """The receipt of a passing test of exactly these settings, else None."""
        with self._lock:
            outcome = self._outcome
            if self._running is not None or outcome is None or not outcome.ok:
                return None
            return outcome.token if fp is not None and outcome.fingerprint == fp else None


# ---------------------------------------------------------------- the stepper


class StepperState:
    """The Add Email Server stepper: which step shows and which button is enabled.

    ``fingerprint`` is the one of the form's current values (None while they are invalid); the
    wizard updates it on every edit. Next on the Test step, and Complete, need a passing test
    of exactly that fingerprint.
    """

    def __init__(self) -> None:
        self.step = 0
        self.server_type: str | None = None
        self.fingerprint: str | None = None
        self.completing = False
        self.tests = TestTracker()

    @property
    def step_name(self) -> str:
        return STEPS[self.step]

    def choose_type(self, server_type: str | None) -> bool:
        """Choose SMTP or Microsoft Graph; True when it changed (the settings start over)."""
        if server_type == self.server_type:
            return False
        self.server_type = server_type
        self.fingerprint = None
        self.tests.reset()
        return True

    def settings_changed(self, fp: str | None) -> None:
        self.fingerprint = fp

    @property
    def test_status(self) -> TestStatus:
        return self.tests.status(self.fingerprint)

    @property
    def test_passed(self) -> bool:
        return self.test_status is TestStatus.PASSED

    @property
    def test_token(self) -> str | None:
        return self.tests.token_for(self.fingerprint)

    @property
    def busy(self) -> bool:
        return self.tests.running or self.completing

    def can_back(self) -> bool:
        return self.step > 0 and not self.busy

    def can_next(self) -> bool:
        if self.busy:
            return False
        name = self.step_name
        if name == "type":
            return self.server_type is not None
        if name == "settings":
            return True  # the click validates the form and shows what to fix
        if name == "test":
            return self.test_passed
        return False  # the Summary completes instead

    def can_test(self) -> bool:
        return self.step_name == "test" and not self.busy

    def can_cancel_test(self) -> bool:
        return self.tests.running

    def can_complete(self) -> bool:
        return self.step_name == "summary" and not self.busy and self.test_passed

    def next(self) -> None:
        if not self.can_next():
            raise RuntimeError(f"Next is disabled on the {self.step_name} step.")
        self.step += 1

    def back(self) -> None:
        if not self.can_back():
            raise RuntimeError(f"Back is disabled on the {self.step_name} step.")
        self.step -= 1

    def go(self, step_name: str) -> None:
        """Jump back to an earlier step (the Settings after a field error, the Test after a
        refused receipt); never forward past a step that was not passed."""
        target = STEPS.index(step_name)
        if target > self.step:
            raise RuntimeError(f"Cannot skip ahead to the {step_name} step.")
        self.step = target


# ---------------------------------------------------------------- port suggestion


class PortSuggestion:
    """Checking Use SSL suggests 465, unchecking suggests 587 — unless the user chose a port.

    A port other than 465 or 587 in a stored server counts as the user's choice.
    """

    def __init__(self, port: int | None = STARTTLS_PORT) -> None:
        standard = port is None or port in (SSL_PORT, STARTTLS_PORT)
        self._suggested = port if standard else None
        self.user_chose = not standard

    def use_ssl_changed(self, use_ssl: bool) -> int | None:
        """The port to put in the Port field now, or None to leave it as it is."""
        if self.user_chose:
            return None
        self._suggested = SSL_PORT if use_ssl else STARTTLS_PORT
        return self._suggested

    def port_changed(self, port: int | None) -> None:
        """The Port field changed: by the user, unless it is the port just suggested."""
        if port != self._suggested:
            self.user_chose = True
