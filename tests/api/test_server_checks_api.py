"""A stored server's kept checks over HTTP, and the health every server shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings, NotFound
from elegere_widgets.server.security import new_id
from elegere_widgets.server.services.server_checks import summarize_checks
from elegere_widgets.server.store.tables import DeliveryRow, ServerCheckRow
from tests.fixtures.service import RunningService, add_server_row, count_statements
from tests.fixtures.smtp import SmtpPeer

SALES = "ws_sales"
ORG = "org_acme"


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return trusting_test_ca


def test_manual_tests_are_kept_as_checks_newest_first_and_paged(
    admin: Client, peer: SmtpPeer
) -> None:
    spec = peer.spec()
    server = admin.email_servers.create(
        SALES, spec, test_token=admin.email_servers.test(SALES, spec).test_token or ""
    )
    assert server.health is not None and server.health.status == "healthy"
    assert server.last_test is not None and server.last_test.source == "manual"
    retest = peer.spec(password=None).model_copy(update={"server_id": server.id})
    assert admin.email_servers.test(SALES, retest).ok
    port = peer.port
    peer.stop()
    assert not admin.email_servers.test(SALES, retest).ok

    checks = list(admin.email_servers.checks(SALES, server.id, page_size=1))
    # The test that added it, the retest, the failed retest: newest first.
    assert [(c.ok, c.source, c.failed_stage) for c in checks] == [
        (False, "manual", "connect"),
        (True, "manual", None),
        (True, "manual", None),
    ]
    assert checks[0].checked_at > checks[1].checked_at > checks[2].checked_at
    assert "failed at connect" in checks[0].detail
    first = admin.email_servers.checks_page(SALES, server.id, page_size=2)
    assert first.items == checks[:2] and first.next_cursor
    second = admin.email_servers.checks_page(
        SALES, server.id, page_size=2, cursor=first.next_cursor
    )
    assert second.items == checks[2:] and second.next_cursor is None

    after = admin.email_servers.get(SALES, server.id)
    assert after.last_test is not None and not after.last_test.ok
    assert after.last_test.source == "manual"
    assert after.health is not None and after.health.status == "degraded"
    assert after.health.reason.startswith("The last check failed at connect")
    listed = {s.id: s for s in admin.email_servers.list(SALES)}
    assert listed[server.id].health == after.health
    peer.start(port)


def test_checks_of_an_organization_server_and_what_is_not_visible(
    admin: Client, delegate: Client
) -> None:
    assert list(delegate.organization_email_servers.checks(ORG, "srv_acme_relay")) == []
    # Inherited: a Workspace Admin reads the checks of an organization server it can see.
    assert list(admin.email_servers.checks(SALES, "srv_acme_relay")) == []
    with pytest.raises(NotFound):
        list(delegate.organization_email_servers.checks(ORG, "srv_sales_mailer"))
    with pytest.raises(InvalidSettings):
        admin.email_servers.checks_page(SALES, "srv_sales_mailer", cursor="not-a-cursor")


def _add_history(service: RunningService, server_id: str, *, failing: bool) -> None:
    now = datetime.now(UTC)
    with service.ctx.sessions.begin() as s:
        for i in range(3):
            s.add(
                ServerCheckRow(
                    id=new_id("chk"),
                    email_server_id=server_id,
                    checked_at=now - timedelta(minutes=10 - i),
                    ok=not failing,
                    failed_stage="connect" if failing else None,
                    elapsed_ms=5,
                    detail="failed at connect: refused" if failing else "passed",
                    source="scheduled",
                )
            )
        s.add(
            DeliveryRow(
                id=new_id("dlv"),
                workspace_id=SALES,
                email_server_id=server_id,
                email_server_name=server_id,
                kind="custom_action",
                recipients=["x@example.org"],
                status="deferred" if failing else "sent",
                created_at=now - timedelta(minutes=5),
            )
        )
        s.flush()
        summarize_checks(s.connection())  # as record_check would have


def test_health_on_the_list_costs_the_same_statements_for_few_or_many_servers(
    admin: Client, service: RunningService
) -> None:
    add_server_row(service, "srv_a0", "A0", SALES)
    _add_history(service, "srv_a0", failing=True)
    few = count_statements(service, lambda: admin.email_servers.list(SALES))
    for i in range(1, 12):
        add_server_row(service, f"srv_a{i}", f"A{i}", SALES)
        _add_history(service, f"srv_a{i}", failing=i % 2 == 0)
    many = count_statements(service, lambda: admin.email_servers.list(SALES))
    assert many == few
    listed = {s.id: s.health for s in admin.email_servers.list(SALES)}
    assert listed["srv_a2"] is not None and listed["srv_a2"].status == "failing"
    assert listed["srv_a1"] is not None and listed["srv_a1"].status == "healthy"
    assert listed["srv_sales_mailer"] is not None
    assert listed["srv_sales_mailer"].status == "healthy"


def _deliveries(service: RunningService, server_id: str, statuses: list[str]) -> None:
    now = datetime.now(UTC)
    with service.ctx.sessions.begin() as s:
        for i, status in enumerate(statuses):
            s.add(
                DeliveryRow(
                    id=new_id("dlv"),
                    workspace_id=SALES,
                    email_server_id=server_id,
                    email_server_name=server_id,
                    kind="custom_action",
                    recipients=["x@example.org"],
                    status=status,
                    created_at=now - timedelta(minutes=30 + i),
                )
            )


def test_health_follows_the_days_deliveries(admin: Client, service: RunningService) -> None:
    add_server_row(service, "srv_some", "Some fail", SALES)
    _deliveries(service, "srv_some", ["sent"] * 8 + ["failed", "deferred"])
    add_server_row(service, "srv_few", "Few fail", SALES)
    _deliveries(service, "srv_few", ["sent"] * 10 + ["deferred"])
    add_server_row(service, "srv_none", "None delivered", SALES)
    _deliveries(service, "srv_none", ["deferred", "failed"])
    listed = {s.id: s.health for s in admin.email_servers.list(SALES)}
    some, few, none = listed["srv_some"], listed["srv_few"], listed["srv_none"]
    assert some is not None and some.status == "degraded"
    assert some.reason == "20 % of the last 24 h's 10 deliveries failed or were deferred."
    assert few is not None and few.status == "healthy"  # 1 in 11: under a tenth
    assert none is not None and none.status == "failing"
    assert none.reason.startswith("Nothing was delivered in 24 h; 2 attempt(s)")
    assert admin.email_servers.get(SALES, "srv_none").health == none
