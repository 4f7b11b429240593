"""A server's details, opened by clicking its name, against the real service: settings without
secrets, health with the strip of checks, the week's deliveries, what uses it, its fallback and
its audit trail; progress while it loads and an error that says what to do."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from elegere_widgets.client import Client
from elegere_widgets.models import EmailServerPatch
from elegere_widgets.server.security import new_id
from elegere_widgets.server.store.tables import DeliveryRow
from elegere_widgets.widgets import EmailServersPanel
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import PASSWORD, SmtpPeer, closed_port
from tests.widgets.support import shown

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


def add_peer_server(admin: Client, peer: SmtpPeer, name: str = "Sales relay") -> str:
    spec = peer.spec(name)
    token = admin.email_servers.test(SALES, spec).test_token or ""
    return admin.email_servers.create(SALES, spec, test_token=token).id


def _failure(service: RunningService, server_id: str, reply: str, minutes: int) -> None:
    with service.ctx.sessions.begin() as s:
        s.add(
            DeliveryRow(
                id=new_id("dlv"),
                workspace_id=SALES,
                email_server_id=server_id,
                email_server_name="Sales relay",
                kind="custom_action",
                recipients=["buyer@example.org"],
                status="failed",
                stage="recipient",
                reply_code=550,
                error=reply,
                created_at=datetime.now(UTC) - timedelta(minutes=minutes),
            )
        )


def test_clicking_a_name_opens_the_servers_whole_story(
    admin: Client, peer: SmtpPeer, service: RunningService, make_panel: MakePanel
) -> None:
    server_id = add_peer_server(admin, peer)
    port = peer.port
    peer.stop()
    assert not admin.email_servers.test_stored(SALES, server_id).ok
    peer.start(port)
    assert admin.email_servers.test_stored(SALES, server_id).ok
    assert admin.email_servers.send_test(SALES, server_id, to="someone@example.com").ok
    _failure(service, server_id, "550 5.1.1 <buyer@example.org>: user unknown", 5)
    stored = admin.email_servers.get(SALES, server_id)
    admin.email_servers.update(
        SALES,
        server_id,
        EmailServerPatch(fallback_server_id="srv_acme_relay"),
        version=stored.version,
    )

    panel = make_panel(admin)
    row = panel.table.row_for(server_id)
    assert row is not None
    row.name_button.click()
    details = panel.details_view
    assert details is not None and panel.view is details and shown(panel, details)
    assert "Sales relay" in details.title.value
    assert details.status.text == ""  # loaded (the test's runner runs at once)

    settings = details.text("settings")
    assert "127.0.0.1" in settings and str(peer.port) in settings
    assert "Password" in settings and "set (never shown)" in settings
    assert PASSWORD not in settings  # never a secret

    health = details.text("health")
    # The latest check passed, but half of the day's two deliveries failed.
    assert ">Degraded</span>" in health and "50 % of the last 24 h" in health
    # The strip: newest first; each check's time and outcome as text for screen readers.
    assert health.count('class="elegere-check ') == 3
    assert "2 of the last 3 checks passed" in health
    assert "failed at Connect (manual" in health
    assert 'class="elegere-sr-only"' in health

    deliveries = details.text("deliveries")
    assert "<b>1</b> sent" in deliveries and "<b>1</b> failed" in deliveries
    assert "550 5.1.1 &lt;buyer@example.org&gt;: user unknown" in deliveries
    assert "Recipient" in deliveries  # the stage it failed at

    assert details.text("usages").endswith("<p>Nothing sends through it.</p>")
    fallback = details.text("fallback")
    assert "Acme Relay (SMTP, smtp.acme.example:587) — inherited from Organization" in fallback

    audit = details.text("audit")
    assert audit.index("Changed: Fallback server") < audit.index("Test email")
    assert audit.index("Test email") < audit.index("Added")
    assert "admin@acme.example" in audit

    details.back_button.click()
    assert panel.view is None and panel.details_view is None


def test_what_uses_a_server_and_an_inherited_ones_details(
    admin: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(admin)
    mailer = panel.table.row_for("srv_sales_mailer")
    assert mailer is not None
    mailer.name_button.click()
    details = panel.details_view
    assert details is not None
    usages = details.text("usages")
    assert "Custom action: <b>Send quote</b>" in usages
    assert "Scheduler job: <b>Weekly digest</b>" in usages
    assert "No check is kept yet" in details.text("health")
    assert "sales-demo-password" not in details.text("settings")

    relay = panel.table.row_for("srv_acme_relay")
    assert relay is not None
    relay.name_button.click()  # another server's details replace the first
    details = panel.details_view
    assert details is not None and details.server.id == "srv_acme_relay"
    assert "Inherited from Organization" in details.text("settings")
    assert details.test_now_button.disabled  # the Organization's checks are its record
    assert not details.send_test_button.disabled


def test_the_details_show_progress_while_loading_and_say_what_went_wrong(
    admin: Client, make_panel: MakePanel
) -> None:
    waiting: list[Callable[[], None]] = []
    panel = make_panel(admin)
    panel._run_in_thread = waiting.append  # the work waits until the test runs it
    mailer = panel.table.row_for("srv_sales_mailer")
    assert mailer is not None
    mailer.name_button.click()
    details = panel.details_view
    assert details is not None
    assert details.status.kind == "busy"
    assert details.status.text == "Reading the details of 'Sales Mailer'…"
    assert not shown(panel, details.body) and details.reload_button.disabled
    waiting.pop()()
    assert details.status.text == "" and shown(panel, details.body)

    admin.email_servers.delete(SALES, "srv_sales_mailer", replacement_id="srv_acme_relay")
    details.reload_button.click()
    waiting.pop()()
    assert details.status.kind == "error"
    assert "There is no email server 'srv_sales_mailer'" in details.status.text
    assert details.status.text.endswith("Go back to the list and refresh it.")
    assert not details.reload_button.disabled

    # The service out of reach: what to do is to try again once it answers.
    panel.client = Client(f"http://127.0.0.1:{closed_port()}", "token")
    details.reload_button.click()
    waiting.pop()()
    panel.client.close()
    assert details.status.kind == "error" and details.status.text.endswith("Then click Reload.")
    assert details.status.text.startswith("Could not reach the eLegere service at")


def test_an_organization_servers_details_for_a_delegate(
    delegate: Client, make_panel: MakePanel
) -> None:
    panel = make_panel(delegate, None, organization="Acme")
    [relay] = panel.table.rows
    relay.name_button.click()
    details = panel.details_view
    assert details is not None and details.status.text == "", details.status.text
    assert "This organization" in details.text("settings")
    assert "Default server of organization: <b>Acme</b>" in details.text("usages")
    assert not details.test_now_button.disabled
    # Its week of deliveries across the workspaces (the seeded history has some).
    summary = delegate.organization_email_servers.delivery_summary("org_acme", relay.server.id)  # type: ignore[union-attr]
    assert f"<b>{summary.sent}</b> sent" in details.text("deliveries")
