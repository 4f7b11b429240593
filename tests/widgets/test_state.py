"""The stepper's decisions, without a widget."""

from __future__ import annotations

import pytest

from elegere_widgets.models import SmtpServerSpec
from elegere_widgets.widgets.state import (
    PortSuggestion,
    StepperState,
    TestStatus,
    TestTracker,
    fingerprint,
    validate_spec,
)

SETTINGS = {
    "server": "smtp.example.com",
    "port": 587,
    "use_ssl": True,
    "account": "sales",
    "sender_address": "sales@example.com",
    "password": "s3cret",
}


def spec(**changes: object) -> SmtpServerSpec:
    name = str(changes.pop("name", "Relay"))
    result, errors = validate_spec("smtp", name, {**SETTINGS, **changes})
    assert errors == {} and isinstance(result, SmtpServerSpec)
    return result


def test_validate_spec_answers_the_models_messages_per_field() -> None:
    result, errors = validate_spec("smtp", "", {**SETTINGS, "port": 70000, "server": "smtp://x"})
    assert result is None
    assert set(errors) == {"name", "port", "server"}
    assert errors["port"].startswith("Port must be a number from 1 to 65535")
    assert "without a scheme" in errors["server"]
    assert errors["name"] == "Enter a name, for example 'Sales relay'."


def test_the_fingerprint_covers_settings_and_secrets_but_not_the_name() -> None:
    base = fingerprint(spec())
    assert fingerprint(spec(name="Another name")) == base
    assert fingerprint(spec(port=2525)) != base
    assert fingerprint(spec(password="other")) != base
    assert fingerprint(spec(sender_address="boss@example.com")) != base
    assert "s3cret" not in base


def test_a_pass_counts_only_for_the_settings_that_were_tested() -> None:
    tracker = TestTracker()
    assert tracker.status("a") is TestStatus.NOT_RUN
    ticket = tracker.begin("a")
    assert tracker.running and tracker.status("a") is TestStatus.RUNNING
    assert tracker.finish(ticket, ok=True, token="tok")
    assert tracker.status("a") is TestStatus.PASSED and tracker.token_for("a") == "tok"
    assert tracker.status("b") is TestStatus.STALE and tracker.token_for("b") is None
    assert tracker.status(None) is TestStatus.STALE  # invalid settings: nothing counts
    ticket = tracker.begin("b")
    assert tracker.finish(ticket, ok=False, token=None)
    assert tracker.status("b") is TestStatus.FAILED and tracker.token_for("a") is None


def test_a_cancelled_or_superseded_test_is_ignored() -> None:
    tracker = TestTracker()
    first = tracker.begin("a")
    assert tracker.cancel() and not tracker.running
    assert tracker.status("a") is TestStatus.CANCELLED
    assert not tracker.finish(first, ok=True, token="late")
    assert tracker.token_for("a") is None
    assert not tracker.cancel()  # nothing runs any more
    second = tracker.begin("a")
    third = tracker.begin("a")  # a new test supersedes the running one
    assert not tracker.finish(second, ok=True, token="old")
    assert tracker.finish(third, ok=True, token="new") and tracker.token_for("a") == "new"
    fourth = tracker.begin("a")
    assert tracker.abort(fourth) and tracker.status("a") is TestStatus.ERROR


def test_the_stepper_enables_next_only_when_the_step_is_done() -> None:
    state = StepperState()
    assert state.step_name == "type" and not state.can_next() and not state.can_back()
    assert state.choose_type("smtp")
    assert state.can_next()
    state.next()
    assert state.step_name == "settings" and state.can_next() and state.can_back()
    state.settings_changed("fp1")
    state.next()
    assert state.step_name == "test"
    assert not state.can_next() and state.can_test() and not state.can_cancel_test()
    ticket = state.tests.begin("fp1")
    assert state.busy and not state.can_next() and not state.can_back() and not state.can_test()
    assert state.can_cancel_test()
    state.tests.finish(ticket, ok=True, token="tok")
    assert state.can_next() and state.test_token == "tok"
    # Editing a setting afterwards disables Next; editing it back enables it again.
    state.settings_changed("fp2")
    assert not state.can_next() and state.test_status is TestStatus.STALE
    state.settings_changed("fp1")
    assert state.can_next()
    state.next()
    assert state.step_name == "summary" and state.can_complete() and not state.can_next()
    state.settings_changed("fp2")
    assert not state.can_complete()
    with pytest.raises(RuntimeError):
        state.next()


def test_a_failed_test_keeps_next_disabled_and_changing_the_type_starts_over() -> None:
    state = StepperState()
    state.choose_type("smtp")
    state.next()
    state.settings_changed("fp")
    state.next()
    state.tests.finish(state.tests.begin("fp"), ok=False, token=None)
    assert state.test_status is TestStatus.FAILED and not state.can_next()
    state.tests.finish(state.tests.begin("fp"), ok=True, token="tok")
    assert state.can_next()
    assert not state.choose_type("smtp")  # the same type: nothing changes
    assert state.choose_type("microsoft_graph")
    assert state.test_status is TestStatus.NOT_RUN
    assert state.test_token is None


def test_go_jumps_back_but_never_ahead() -> None:
    state = StepperState()
    state.choose_type("smtp")
    state.next()
    with pytest.raises(RuntimeError):
        state.go("summary")
    state.go("type")
    assert state.step_name == "type"


def test_use_ssl_suggests_465_and_587_unless_the_user_chose_a_port() -> None:
    ports = PortSuggestion()
    assert ports.use_ssl_changed(True) == 465
    ports.port_changed(465)  # our own suggestion coming back through the field
    assert ports.use_ssl_changed(False) == 587
    ports.port_changed(587)
    ports.port_changed(2525)  # typed
    assert ports.user_chose
    assert ports.use_ssl_changed(True) is None


def test_a_stored_port_counts_as_chosen_unless_it_is_a_standard_one() -> None:
    assert PortSuggestion(2525).use_ssl_changed(True) is None
    assert PortSuggestion(465).use_ssl_changed(False) == 587
    assert PortSuggestion(587).use_ssl_changed(True) == 465
