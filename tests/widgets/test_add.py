"""Add Email Server, end to end: the panel, the real service and a real aiosmtpd peer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets
import pytest

from elegere_widgets.client import Client
from elegere_widgets.widgets import EmailServersPanel
from elegere_widgets.widgets.state import TestStatus
from tests.fixtures.smtp import PASSWORD, SmtpPeer
from tests.widgets.support import fill_smtp, shown

SALES = "ws_sales"
STAGES = ["Resolve", "Connect", "TLS", "EHLO", "Authenticate", "Sender", "Recipient"]

MakePanel = Callable[..., EmailServersPanel]


def test_add_an_smtp_server_step_by_step(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    panel = make_panel(admin)
    assert [row.cells[0] for row in panel.table.rows] == ["Acme Relay", "Sales Mailer"]

    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None and shown(panel, wizard)
    assert [label.value.split(">")[1].split("<")[0] for label in wizard.step_labels] == [
        "1 Type",
        "2 Settings",
        "3 Test",
        "4 Summary",
    ]
    assert "elegere-step-current" in wizard.step_labels[0]._dom_classes
    assert wizard.step == "type" and wizard.next_button.disabled and wizard.back_button.disabled
    assert "host name, port, account and password" in wizard.type_help.value

    # 1 Type
    wizard.type_choice.value = "smtp"
    assert not wizard.next_button.disabled
    wizard.next_button.click()

    # 2 Settings: exactly the SMTP fields, as the product labels them
    assert wizard.step == "settings"
    assert "elegere-step-current" in wizard.step_labels[1]._dom_classes
    form = wizard.form
    assert form is not None and shown(panel, form)
    visible = [name for name in form.fields if shown(form, form.rows[name])]
    assert [form.rows[name].spec.label for name in visible] == [
        "Name",
        "Server",
        "Port",
        "Use SSL",
        "Account",
        "Sender Address",
        "Authentication",
        "Password",
    ]
    assert [form.fields[name].description for name in visible] == [
        "Name",
        "Server",
        "Port",
        "Use SSL",
        "Account",
        "Sender Address",
        "Authentication",
        "Password",
    ]
    assert form.fields["authentication"].value == "password"
    assert isinstance(form.fields["password"], ipywidgets.Password)
    assert form.fields["server"].continuous_update is False  # the value commits on blur
    fill_smtp(form, peer)
    password_field = form.fields["password"]
    assert form.errors == {}
    wizard.next_button.click()

    # 3 Test
    assert wizard.step == "test"
    assert wizard.next_button.disabled and not wizard.test_button.disabled
    assert wizard.cancel_test_button.disabled
    wizard.test_button.click()
    assert wizard.test_status is TestStatus.PASSED
    assert wizard.tester.status.kind == "ok"
    assert "Connection test passed" in wizard.tester.status.text
    for title in STAGES:
        assert f"<b>{title}</b>" in wizard.tester.stages.value
    assert wizard.tester.stages.value.count("✓") == len(STAGES)
    assert not wizard.next_button.disabled
    wizard.next_button.click()

    # 4 Summary: every setting; the password only as "set"
    assert wizard.step == "summary"
    assert not shown(panel, wizard.next_button) and shown(panel, wizard.complete_button)
    summary = wizard.summary.value
    for text in ("Sales relay", "SMTP", peer.host, str(peer.port), "Sender Address"):
        assert text in summary
    assert ("Password", "set") in form.summary_rows()
    assert "<b>set</b>" in summary and PASSWORD not in summary
    assert not wizard.complete_button.disabled
    wizard.complete_button.click()

    # The wizard closed, a success message and the new row, highlighted
    assert panel.wizard is None and panel.view_area.children == ()
    assert panel.status.kind == "ok" and "Added 'Sales relay'" in panel.status.text
    names = [row.cells[0] for row in panel.table.rows]
    assert names == ["Acme Relay", "Sales Mailer", "Sales relay"]
    new_row = panel.table.rows[2]
    assert "elegere-row-highlight" in new_row._dom_classes
    assert new_row.cells[1:5] == [
        "SMTP",
        f"{peer.host}:{peer.port}",
        "This workspace",
        "Not used",
    ]
    assert new_row.cells[5].startswith("✓")
    assert not new_row.settings_button.disabled and not new_row.delete_button.disabled

    # What the service stored
    stored = {s.name: s for s in admin.email_servers.list(SALES)}
    assert stored["Sales relay"].key_setting == f"{peer.host}:{peer.port}"
    assert stored["Sales relay"].secrets_set == {"password": True}
    assert stored["Sales relay"].last_test is not None and stored["Sales relay"].last_test.ok
    assert peer.messages == []  # a test never sends

    # No secret left in a widget, a repr or a log line
    assert password_field.value == ""
    assert PASSWORD not in repr(panel) and PASSWORD not in repr(wizard)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()


def open_wizard_at_test(panel: EmailServersPanel, peer: SmtpPeer, **fill: str):  # type: ignore[no-untyped-def]
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    wizard.next_button.click()
    assert wizard.form is not None
    fill_smtp(wizard.form, peer, **fill)
    wizard.next_button.click()
    assert wizard.step == "test"
    return wizard


def test_a_failed_test_keeps_next_disabled_and_says_what_to_fix(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer, password="wrong-password")
    wizard.test_button.click()
    assert wizard.test_status is TestStatus.FAILED
    assert wizard.next_button.disabled
    status = wizard.tester.status
    assert status.kind == "error"
    assert "You will not be able to proceed if the test fails" in status.text
    assert "Authenticate" in status.text
    stages = wizard.tester.stages.value
    assert "✗" in stages and "<b>Authenticate</b>" in stages
    assert "Check Account and Password" in stages  # the stage's hint
    assert "wrong-password" not in stages and "wrong-password" not in status.text

    # Fix the password: back to Settings, then test again.
    wizard.back_button.click()
    assert wizard.step == "settings"
    assert wizard.form is not None
    wizard.form.fields["password"].value = PASSWORD
    wizard.next_button.click()
    assert wizard.next_button.disabled  # the failed test was of other settings
    wizard.test_button.click()
    assert wizard.test_status is TestStatus.PASSED and not wizard.next_button.disabled
    assert [s.name for s in admin.email_servers.list(SALES)] == ["Acme Relay", "Sales Mailer"]


def test_editing_a_setting_after_a_pass_disables_next_again(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer)
    wizard.test_button.click()
    assert not wizard.next_button.disabled
    form = wizard.form
    assert form is not None

    wizard.back_button.click()
    form.fields["sender_address"].value = "boss@acme.example"
    wizard.next_button.click()
    assert wizard.step == "test"
    assert wizard.next_button.disabled and wizard.test_status is TestStatus.STALE
    assert "settings changed since this test" in wizard.tester.status.text

    # Exactly the tested settings again: that pass counts again.
    form.fields["sender_address"].value = "sales@acme.example"
    assert not wizard.next_button.disabled
    assert "Connection test passed" in wizard.tester.status.text

    # A password is a setting too; so is a change that arrives while on the Summary.
    wizard.next_button.click()
    assert wizard.step == "summary" and not wizard.complete_button.disabled
    form.fields["password"].value = "another-password"
    assert wizard.complete_button.disabled


def test_a_field_error_shows_next_to_the_field_with_the_apis_message(
    admin: Client,
    service,
    make_panel: MakePanel,  # type: ignore[no-untyped-def]
) -> None:
    import httpx

    panel = make_panel(admin)
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    wizard.next_button.click()
    form = wizard.form
    assert form is not None

    form.fields["port"].value = 70000  # the user leaves the field
    shown_message = form.error_for("port")
    assert shown_message.startswith("Port must be a number from 1 to 65535")
    assert shown(panel, form.rows["port"].error)
    assert form.error_for("server") == ""  # untouched fields stay quiet
    assert not shown(panel, form.rows["server"].error)

    # The service answers the same message for the same value.
    body = {
        "type": "smtp",
        "name": "x",
        "settings": {
            "server": "smtp.example.com",
            "port": 70000,
            "use_ssl": False,
            "account": "a",
            "sender_address": "a@example.com",
        },
    }
    answer = httpx.post(
        f"{service.url}/api/v1/workspaces/{SALES}/email-servers/test",
        json=body,
        headers={"Authorization": f"Bearer {service.tokens['admin@acme.example']}"},
    )
    assert answer.status_code == 422
    api_message = next(e["message"] for e in answer.json()["errors"] if e["field"] == "port")
    assert shown_message == api_message

    # Next validates every field and stays on the Settings step.
    wizard.next_button.click()
    assert wizard.step == "settings"
    assert set(form.errors) >= {"name", "server", "port", "account", "sender_address"}
    assert wizard.status.kind == "error" and "marked in red" in wizard.status.text
    form.fields["port"].value = 587
    assert form.error_for("port") == ""


def test_use_ssl_suggests_a_port_unless_one_was_typed(admin: Client, make_panel: MakePanel) -> None:
    panel = make_panel(admin)
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "smtp"
    fields = wizard.form.fields  # type: ignore[union-attr]
    assert fields["port"].value == 587 and fields["use_ssl"].value is False
    fields["use_ssl"].value = True
    assert fields["port"].value == 465
    fields["use_ssl"].value = False
    assert fields["port"].value == 587
    fields["port"].value = 2525
    fields["use_ssl"].value = True
    assert fields["port"].value == 2525


def test_a_test_can_be_cancelled_and_its_result_is_ignored(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    pending: list[Callable[[], None]] = []
    panel = make_panel(admin, run_in_thread=pending.append)
    wizard = open_wizard_at_test(panel, peer)
    wizard.test_button.click()
    assert len(pending) == 1  # started, not finished: the UI keeps answering
    assert wizard.test_status is TestStatus.RUNNING
    assert wizard.tester.status.kind == "busy" and "Testing…" in wizard.tester.status.text
    assert "<svg" in wizard.tester.status.value  # the spinner
    assert wizard.test_button.disabled and not wizard.cancel_test_button.disabled
    assert wizard.next_button.disabled and wizard.back_button.disabled

    wizard.cancel_test_button.click()
    assert wizard.test_status is TestStatus.CANCELLED
    assert "cancelled" in wizard.tester.status.text
    assert not wizard.test_button.disabled and wizard.cancel_test_button.disabled
    pending.pop()()  # the cancelled test ends later, and passes
    assert wizard.next_button.disabled and wizard.test_status is TestStatus.CANCELLED
    assert wizard.tester.stages.value == ""

    wizard.test_button.click()
    pending.pop()()
    assert not wizard.next_button.disabled


def test_the_test_runs_in_a_real_thread_while_the_widgets_answer(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    gate = threading.Event()
    threads: list[threading.Thread] = []

    def gated_thread(work: Callable[[], None]) -> None:
        def run() -> None:
            gate.wait(10)
            work()

        thread = threading.Thread(target=run, daemon=True)
        threads.append(thread)
        thread.start()

    panel = make_panel(admin, run_in_thread=gated_thread)
    wizard = open_wizard_at_test(panel, peer)
    wizard.test_button.click()
    assert threads and threads[0].is_alive()
    assert wizard.tester.status.kind == "busy" and wizard.next_button.disabled
    panel.refresh_button.click()  # the panel still answers while the test runs
    assert panel.status.kind == "info"
    gate.set()
    assert wizard.wait_for_test(timeout=30)
    assert wizard.test_status is TestStatus.PASSED and not wizard.next_button.disabled


def test_the_default_runner_is_a_thread(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    panel = make_panel(admin, run_in_thread=None)
    wizard = open_wizard_at_test(panel, peer)
    wizard.test_button.click()
    assert wizard.wait_for_test(timeout=30)
    assert wizard.test_status is TestStatus.PASSED and not wizard.next_button.disabled


def test_a_taken_name_at_complete_shows_on_the_name_and_the_pass_still_counts(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer, name="sales mailer")
    wizard.test_button.click()
    wizard.next_button.click()
    wizard.complete_button.click()
    assert panel.wizard is wizard and wizard.step == "settings"
    form = wizard.form
    assert form is not None
    assert "already exists" in form.error_for("name")
    assert wizard.status.kind == "error"
    form.fields["name"].value = "Sales relay"  # the name is not a setting: no new test
    wizard.next_button.click()
    assert not wizard.next_button.disabled
    wizard.next_button.click()
    wizard.complete_button.click()
    assert panel.wizard is None and "Added 'Sales relay'" in panel.status.text


def test_microsoft_graph_asks_for_its_own_fields_and_the_services_errors_show_on_them(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    panel.add_button.click()
    wizard = panel.wizard
    assert wizard is not None
    wizard.type_choice.value = "microsoft_graph"
    wizard.next_button.click()
    form = wizard.form
    assert form is not None
    assert [form.rows[name].spec.label for name in form.fields] == [
        "Name",
        "Account",
        "Tenant ID",
        "Client ID",
        "Certificate",
        "Certificate Alias",
        "Certificate Password",
    ]
    upload = form.fields["certificate"]
    assert isinstance(upload, ipywidgets.FileUpload)
    assert upload.accept == ".pfx,.p12,.cer,.crt,.pem" and not upload.multiple
    assert isinstance(form.fields["certificate_password"], ipywidgets.Password)

    form.fields["name"].value = "Graph mailbox"
    form.fields["account"].value = "notifications@acme.example"
    form.fields["tenant_id"].value = "acme.onmicrosoft.com"
    form.fields["client_id"].value = "not-a-guid"
    assert "GUID" in form.error_for("client_id")
    form.fields["client_id"].value = "11111111-2222-3333-4444-555555555555"
    wizard.next_button.click()
    assert wizard.step == "test"
    # No certificate: the service says so, and the message lands on the Certificate field.
    wizard.test_button.click()
    assert wizard.step == "settings"
    assert "Upload the certificate" in form.error_for("certificate")
    assert wizard.next_button.disabled is False


def test_a_receipt_refused_at_complete_sends_the_user_back_to_test(
    admin: Client,
    peer: SmtpPeer,
    service,
    make_panel: MakePanel,  # type: ignore[no-untyped-def]
) -> None:
    ttl = service.ctx.receipts.ttl_s
    service.ctx.receipts.ttl_s = -5  # every receipt is already too old: the service says 428
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer)
    wizard.test_button.click()
    wizard.next_button.click()
    wizard.complete_button.click()
    assert panel.wizard is wizard and wizard.step == "test"
    assert wizard.status.kind == "error" and "too old" in wizard.status.text
    assert wizard.next_button.disabled and wizard.test_status is TestStatus.NOT_RUN
    service.ctx.receipts.ttl_s = ttl
    wizard.test_button.click()
    wizard.next_button.click()
    wizard.complete_button.click()
    assert panel.wizard is None and "Added 'Sales relay'" in panel.status.text


def test_each_stage_shows_as_it_ends_before_the_result(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer)
    tester = wizard.tester
    seen: list[tuple[str, int, bool, str]] = []
    streamed_test = admin.email_servers.test

    def spying_test(owner: str, spec: object, *, on_stage: Any = None) -> Any:
        def spy(stage: Any) -> None:
            on_stage(stage)  # the view's callback: what the user sees right now
            rows = tester.stages.value.count('<tr class="elegere-stage ')
            seen.append((stage.name, rows, tester.result is None, tester.status.kind))

        return streamed_test(owner, spec, on_stage=spy)

    monkeypatch.setattr(admin.email_servers, "test", spying_test)
    wizard.test_button.click()
    assert [(rows, pending, kind) for _, rows, pending, kind in seen] == [
        (n, True, "busy") for n in range(1, len(STAGES) + 1)
    ]
    assert [name for name, *_ in seen][-1] == "recipient"
    assert tester.status.kind == "ok" and tester.result is not None  # then the summary
    assert wizard.test_status is TestStatus.PASSED
    assert tester.stages.value.count("✓") == len(STAGES)


def test_a_cancelled_test_shows_none_of_its_later_stages(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = make_panel(admin)
    wizard = open_wizard_at_test(panel, peer)
    shown_after_cancel: list[str] = []
    streamed_test = admin.email_servers.test

    def cancelling_test(owner: str, spec: object, *, on_stage: Any = None) -> Any:
        def cancel_after_the_first(stage: Any) -> None:
            on_stage(stage)
            if stage.name == "resolve":
                assert "<b>Resolve</b>" in wizard.tester.stages.value
                wizard.cancel_test_button.click()
            shown_after_cancel.append(wizard.tester.stages.value)

        return streamed_test(owner, spec, on_stage=cancel_after_the_first)

    monkeypatch.setattr(admin.email_servers, "test", cancelling_test)
    wizard.test_button.click()
    assert len(shown_after_cancel) == len(STAGES)
    assert set(shown_after_cancel) == {""}
    assert wizard.test_status is TestStatus.CANCELLED and "cancelled" in wizard.tester.status.text
    assert wizard.tester.stages.value == "" and wizard.next_button.disabled
