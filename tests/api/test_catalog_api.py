"""Custom actions, scheduler jobs and deliveries: what sends mail, and what was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from elegere_widgets.client import Client
from elegere_widgets.errors import InvalidSettings
from elegere_widgets.server.store.tables import DeliveryRow
from tests.fixtures.service import RunningService

SALES = "ws_sales"

# Each test only reads the demo data: they share the session's service.
pytestmark = pytest.mark.read_only


def test_custom_actions_and_jobs_name_their_server(admin: Client) -> None:
    assert [(a.name, a.email_server_id) for a in admin.custom_actions.list(SALES)] == [
        ("Send quote", "srv_sales_mailer")
    ]
    assert [(j.name, j.email_server_id) for j in admin.scheduler_jobs.list(SALES)] == [
        ("Weekly digest", "srv_sales_mailer")
    ]


def test_deliveries_iterate_every_page_in_time_order(
    admin: Client, service: RunningService
) -> None:
    with service.ctx.sessions() as s:
        expected = s.scalar(
            select(func.count()).select_from(DeliveryRow).where(DeliveryRow.workspace_id == SALES)
        )
    got = list(admin.deliveries.list(SALES, page_size=37))
    assert len(got) == expected and expected > 100
    assert len({d.id for d in got}) == expected
    assert [d.created_at for d in got] == sorted(d.created_at for d in got)
    assert all(d.created_at.tzinfo is not None for d in got)
    assert {d.status for d in got} <= {"sent", "failed"}
    assert any(d.status == "failed" and d.error for d in got)


def test_deliveries_filter_by_server_and_time(admin: Client) -> None:
    since = datetime.now(UTC) - timedelta(days=7)
    recent = list(admin.deliveries.list(SALES, server_id="srv_acme_relay", since=since))
    assert recent
    assert all(d.email_server_id == "srv_acme_relay" and d.created_at >= since for d in recent)
    everything = list(admin.deliveries.list(SALES, server_id="srv_acme_relay"))
    assert len(everything) > len(recent)


def test_bad_cursor_is_a_field_error(admin: Client) -> None:
    with pytest.raises(InvalidSettings) as info:
        admin.deliveries.page(SALES, cursor="!!!")
    assert info.value.for_field("cursor")
