"""Test now and Send test email, from a row and from the details, against the real service and
a real aiosmtpd peer: the stages as a connection test shows them, the row's health after,
the message at the peer and its delivery."""

from __future__ import annotations

import re
from collections.abc import Callable

from elegere_widgets.client import Client
from elegere_widgets.widgets import EmailServersPanel, SendTestView, ServerRow
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SMTP_STAGES, SmtpPeer
from tests.widgets.support import shown
from tests.widgets.test_details import add_peer_server

SALES, ORG = "ws_sales", "org_acme"
MakePanel = Callable[..., EmailServersPanel]


def stage_names(stages_html: str) -> list[str]:
    """The stages a stage table shows, in its order."""
    return re.findall(r'class="elegere-stage elegere-stage-(\w+)"', stages_html)


def peer_row(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> tuple[str, EmailServersPanel, ServerRow]:
    """A server of Sales that sends through ``peer``, the panel, and the server's row in it."""
    server_id = add_peer_server(admin, peer)
    panel = make_panel(admin)
    row = panel.table.row_for(server_id)
    assert row is not None
    return server_id, panel, row


def open_send_test(panel: EmailServersPanel, row: ServerRow) -> SendTestView:
    """Send test email, clicked in ``row``: the view it opens."""
    row.send_test_button.click()
    view = panel.send_test_view
    assert view is not None
    return view


def test_test_now_shows_the_stages_and_the_row_follows(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    server_id, panel, row = peer_row(admin, peer, make_panel)
    assert not row.test_now_button.disabled
    row.test_now_button.click()
    view = panel.test_now_view
    assert view is not None and panel.view is view and shown(panel, view)
    assert view.status.kind == "ok" and view.status.text.startswith("Connection test passed")
    assert "Authenticate" in view.tester.stages.value and "✓" in view.tester.stages.value

    port = peer.port
    peer.stop()
    view.test_button.click()  # Test again
    assert view.status.kind == "error"
    assert view.status.text.startswith("Connection test failed at Connect")
    after = panel.table.row_for(server_id)  # the row as the table shows it now
    assert after is not None
    assert after.cells[5] == "✗ just now"
    assert after.cells[6].startswith("Degraded: The last check failed at connect")
    assert [c.ok for c in admin.email_servers.checks(SALES, server_id)][:2] == [False, True]
    peer.start(port)

    view.close_button.click()
    assert panel.view is None


def test_send_test_email_to_the_admin_by_default_or_any_address(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    server_id, panel, row = peer_row(admin, peer, make_panel)
    view = open_send_test(panel, row)
    assert shown(panel, view)
    assert view.to.value == "admin@acme.example"  # the signed-in admin's address
    assert peer.messages == []  # nothing goes out before Send

    view.to.value = "not an address"
    view.send_button.click()
    assert "valid email address" in view.to_error.value
    assert peer.messages == []

    view.to.value = "someone@example.com"
    assert view.to_error.value == ""
    connections = peer.connections
    shown_while_sending: list[list[str]] = []
    view.tester.stages.observe(
        lambda change: shown_while_sending.append(stage_names(change["new"])), names="value"
    )
    view.send_button.click()
    assert view.status.kind == "ok", view.status.text
    # Each stage showed as it ended, before the result came.
    assert shown_while_sending[:3] == [["resolve"], ["resolve", "connect"], SMTP_STAGES[:3]]
    assert view.status.text == (
        "Test email sent to someone@example.com: 250 2.0.0 Message accepted for delivery"
    )
    # One session, stage by stage as a connection test shows them, the message last.
    assert stage_names(view.tester.stages.value) == [*SMTP_STAGES, "data"]
    assert "<b>Data</b>" in view.tester.stages.value
    assert peer.connections - connections == 1
    [received] = peer.messages
    assert received.rcpt_tos == ["someone@example.com"]
    [delivery] = admin.deliveries.list(SALES, server_id=server_id)
    assert (delivery.kind, delivery.status, delivery.recipients) == (
        "test",
        "sent",
        ["someone@example.com"],
    )

    peer.stop()
    view.send_button.click()
    assert view.status.kind == "error"
    assert view.status.text.startswith("Not sent (Connect failed): Could not connect to ")
    assert stage_names(view.tester.stages.value) == ["resolve", "connect"]
    assert len(peer.messages) == 1


def test_a_recipient_the_server_refuses_shows_its_reply(
    admin: Client, pki: Pki, make_panel: MakePanel
) -> None:
    with SmtpPeer("starttls", pki=pki, refuse_recipients=("nobody@example.org",)) as peer:
        server_id, panel, row = peer_row(admin, peer, make_panel)
        view = open_send_test(panel, row)
        view.to.value = "nobody@example.org"
        view.send_button.click()
    assert view.status.kind == "error"
    assert view.status.text.startswith(
        "Not sent (Recipient failed): 550 5.1.1 <nobody@example.org>: Recipient address "
        "rejected: User unknown. The server refused nobody@example.org as a recipient"
    ), view.status.text
    assert stage_names(view.tester.stages.value) == SMTP_STAGES
    assert peer.messages == []
    [delivery] = admin.deliveries.list(SALES, server_id=server_id)
    assert delivery.status == "failed" and "Recipient address rejected" in (delivery.error or "")


def test_an_inherited_server_sends_a_test_but_is_tested_by_its_organization(
    admin: Client, delegate: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    spec = peer.spec("Org relay")
    token = delegate.organization_email_servers.test(ORG, spec).test_token or ""
    org_server = delegate.organization_email_servers.create(ORG, spec, test_token=token)
    panel = make_panel(admin)
    row = panel.table.row_for(org_server.id)
    assert row is not None and row.server is not None and row.server.inherited
    assert row.test_now_button.disabled
    assert "its checks are the Organization's" in row.test_now_button.tooltip
    assert not row.send_test_button.disabled
    view = open_send_test(panel, row)
    view.send_button.click()
    assert view.status.kind == "ok", view.status.text
    assert [m.rcpt_tos for m in peer.messages] == [["admin@acme.example"]]


def test_actions_from_the_details_open_inside_them_and_refresh_them(
    admin: Client, peer: SmtpPeer, make_panel: MakePanel
) -> None:
    _, panel, row = peer_row(admin, peer, make_panel)
    row.name_button.click()
    details = panel.details_view
    assert details is not None
    assert "<b>0</b> sent" in details.text("deliveries")

    details.send_test_button.click()
    view = panel.send_test_view
    assert view is not None and list(details.action_area.children) == [view]
    assert panel.details_view is details  # the details stay open around it
    view.send_button.click()
    assert view.status.kind == "ok", view.status.text
    # Read again after the test email: its delivery, its check and its trail.
    assert "<b>1</b> sent" in details.text("deliveries")
    assert "Test email" in details.text("audit")
    # A test email is a delivery, not a check: the checks are the test that added it.
    assert "1 of the last 1 checks passed" in details.text("health")

    details.test_now_button.click()
    now_view = panel.test_now_view
    assert now_view is not None and list(details.action_area.children) == [now_view]
    assert panel.send_test_view is None  # one action at a time
    assert "2 of the last 2 checks passed" in details.text("health")
    now_view.close_button.click()
    assert details.action_area.children == () and panel.details_view is details
