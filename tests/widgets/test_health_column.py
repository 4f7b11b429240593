"""The table's Health and Certificate columns, against the real service: the badge's words and
tone, and a certificate's end, prominent within 30 days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from elegere_widgets.client import Client
from elegere_widgets.server.store.tables import EmailServerRow
from elegere_widgets.widgets import EmailServersPanel
from tests.fixtures.service import RunningService

SALES = "ws_sales"
MakePanel = Callable[..., EmailServersPanel]


def insert_graph_server(service: RunningService, ident: str, name: str, days: float) -> None:
    """A Graph server of Sales whose certificate ends ``days`` from now (negative: ended),
    written as the service stores one after loading its certificate."""
    not_after = datetime.now(UTC) + timedelta(days=days)
    info = {
        "subject": f"CN={name}",
        "thumbprint_sha1": "AB" * 20,
        "thumbprint_sha256": "CD" * 32,
        "not_after": not_after.isoformat(),
        "days_left": 999,  # what was true once: the service counts again when read
        "has_private_key": True,
    }
    with service.ctx.sessions() as session:
        session.add(
            EmailServerRow(
                id=ident,
                organization_id="org_acme",
                workspace_id=SALES,
                scope_key=SALES,
                type="microsoft_graph",
                name=name,
                name_key=name.casefold(),
                settings={
                    "account": "sales@contoso.example",
                    "tenant_id": "contoso.onmicrosoft.com",
                    "client_id": "11111111-2222-3333-4444-555555555555",
                    "certificate_info": info,
                },
                secrets_sealed=service.ctx.box.seal({}),
                secrets_set={"certificate": True},
            )
        )
        session.commit()


def test_the_certificate_column_warns_within_30_days(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    insert_graph_server(service, "srv_soon", "Graph soon", 12.5)
    insert_graph_server(service, "srv_later", "Graph later", 200.5)
    insert_graph_server(service, "srv_gone", "Graph gone", -3)
    panel = make_panel(admin)
    rows = {row.cells[0]: row for row in panel.table.rows}

    soon = rows["Graph soon"]
    assert soon.cells[7] == "⚠ expires in 12 days"
    assert "elegere-cert-soon" in soon.certificate_label.value  # prominent, in its tone
    assert "Upload a renewed certificate" in (soon.certificate_label.tooltip or "")
    assert soon.cells[6].startswith("Expiring: The certificate expires in 12 day(s)")
    assert "elegere-tone-expiring" in soon.health_label.value

    later_end = (datetime.now(UTC) + timedelta(days=200.5)).strftime("%Y-%m-%d")
    later = rows["Graph later"]
    assert later.cells[7] == f"until {later_end}"
    assert "elegere-cert-soon" not in later.certificate_label.value

    gone = rows["Graph gone"]
    assert gone.cells[7].startswith("✗ expired on ")
    assert gone.cells[6].startswith("Expired: The certificate expired on")
    assert rows["Sales Mailer"].cells[7] == "—"  # a password server has no certificate


def test_the_health_badge_says_the_status_and_the_reason_in_words(
    admin: Client, service: RunningService, make_panel: MakePanel
) -> None:
    from elegere_widgets.server.security import new_id
    from elegere_widgets.server.services.server_checks import summarize_checks
    from elegere_widgets.server.store.tables import ServerCheckRow

    now = datetime.now(UTC)
    with service.ctx.sessions.begin() as s:
        for minutes in (30, 20, 10):
            s.add(
                ServerCheckRow(
                    id=new_id("chk"),
                    email_server_id="srv_sales_mailer",
                    checked_at=now - timedelta(minutes=minutes),
                    ok=False,
                    failed_stage="connect",
                    elapsed_ms=4,
                    detail="failed at connect: connection refused",
                    source="scheduled",
                )
            )
        s.flush()
        summarize_checks(s.connection())  # as record_check would have
    panel = make_panel(admin)
    mailer = panel.table.row_for("srv_sales_mailer")
    assert mailer is not None
    expected = (
        "Failing: The last 3 checks failed; the latest failed at connect: connection refused."
    )
    assert mailer.cells[6] == expected
    badge = mailer.health_label.value
    # Readable without colour: the status and the reason are text; the tone is a class.
    assert ">Failing</span>" in badge and "connection refused" in badge
    assert "elegere-tone-failing" in badge and "#" not in badge  # no inline colour
