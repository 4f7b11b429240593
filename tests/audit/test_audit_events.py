"""The audit trail through the client and as a DataFrame, on the seeded service.

Changes go through the client; the expected events come from the store (SQLAlchemy),
never from the code under test.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from elegere_widgets import audit
from elegere_widgets.client import Client
from elegere_widgets.errors import NotFound, PermissionDenied
from elegere_widgets.models import AuditEvent, EmailServerPatch
from elegere_widgets.server.store.tables import AuditEvent as AuditEventRow
from elegere_widgets.server.store.tables import CustomActionRow, SchedulerJobRow
from tests.fixtures.service import RunningService

from .support import MAILER, SALES, SECRET_MARKER, SQLITE_ONLY, insert_smtp_server

pytestmark = SQLITE_ONLY

SPARE = "srv_sales_spare"
ADMIN = "admin@acme.example"


def store_events(service: RunningService, ws: str) -> list[AuditEventRow]:
    """The workspace's events as the store has them, newest first."""
    with service.ctx.sessions() as s:
        return list(
            s.scalars(
                select(AuditEventRow)
                .where(AuditEventRow.workspace_id == ws)
                .order_by(AuditEventRow.id.desc())
            )
        )


@pytest.fixture
def changed(admin: Client, service: RunningService) -> list[AuditEventRow]:
    """Two updates (one with a marker password) and a delete with replacement, via the API."""
    insert_smtp_server(service, SPARE, "Sales spare", SALES)  # straight in: no audit event
    before = {e.id for e in store_events(service, SALES)}
    mailer = admin.email_servers.get(SALES, MAILER)
    admin.email_servers.update(
        SALES,
        MAILER,
        EmailServerPatch(name="Sales Mailer 2", settings={"password": SECRET_MARKER}),
        version=mailer.version,
    )
    spare = admin.email_servers.get(SALES, SPARE)
    admin.email_servers.update(
        SALES,
        SPARE,
        EmailServerPatch(
            settings={"password": SECRET_MARKER + "-2", "sender_address": "spare@acme.example"}
        ),
        version=spare.version,
    )
    admin.email_servers.delete(SALES, MAILER, replacement_id=SPARE)
    new = [e for e in store_events(service, SALES) if e.id not in before]
    # The store recorded exactly what was done, newest first; the client is checked against it.
    assert [(e.action, e.email_server_id, e.changed_fields) for e in new] == [
        ("delete", MAILER, []),
        ("update", SPARE, ["password", "sender_address"]),
        ("update", MAILER, ["name", "password"]),
    ]
    with service.ctx.sessions() as s:  # the usages moved, so the delete really replaced
        for model in (CustomActionRow, SchedulerJobRow):
            assert MAILER not in {r.email_server_id for r in s.scalars(select(model))}
    return store_events(service, SALES)


def test_list_follows_every_page_newest_first(admin: Client, changed: list[AuditEventRow]) -> None:
    events = list(admin.audit_events.list(SALES, page_size=1))  # one page per event
    assert all(isinstance(e, AuditEvent) for e in events)
    assert [e.id for e in events] == [row.id for row in changed]
    assert [(e.action, e.email_server_id, e.changed_fields, e.result) for e in events] == [
        (row.action, row.email_server_id, row.changed_fields, row.result) for row in changed
    ]
    assert {e.actor_email for e in events[:3]} == {ADMIN}
    # The default page size gives the same events in one request.
    assert [e.id for e in admin.audit_events.list(SALES)] == [row.id for row in changed]
    first = admin.audit_events.page(SALES, page_size=2)
    assert [e.id for e in first.items] == [row.id for row in changed[:2]]
    assert first.next_cursor is not None


def test_frame_has_a_typed_row_per_event_and_no_secret(
    admin: Client, changed: list[AuditEventRow]
) -> None:
    frame = audit.audit_events_frame(admin, [SALES])

    assert (
        list(frame.columns)
        == list(audit.AUDIT_EVENT_COLUMNS)
        == [
            "id",
            "occurred_at",
            "workspace",
            "workspace_id",
            "server_id",
            "actor_email",
            "action",
            "result",
            "changed_fields",
            "detail",
        ]
    )
    assert str(frame["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["id"].dtype == "int64"
    assert isinstance(frame["action"].dtype, pd.CategoricalDtype)
    assert isinstance(frame["result"].dtype, pd.CategoricalDtype)
    known = len(audit.AUDIT_ACTIONS)
    assert list(frame["action"].cat.categories[:known]) == list(audit.AUDIT_ACTIONS)
    assert list(frame["result"].cat.categories[:2]) == list(audit.AUDIT_RESULTS)

    assert frame["id"].tolist() == [row.id for row in changed]  # newest first
    assert frame["action"].astype(str).tolist() == [row.action for row in changed]
    assert frame["server_id"].tolist() == [row.email_server_id for row in changed]
    assert frame["changed_fields"].tolist() == [",".join(row.changed_fields) for row in changed]
    assert frame["occurred_at"].tolist() == [
        pd.Timestamp(row.occurred_at).tz_convert("UTC") for row in changed
    ]
    assert set(frame["workspace"]) == {"Sales"} and set(frame["workspace_id"]) == {SALES}
    top = frame.head(3)
    assert top["actor_email"].tolist() == [ADMIN] * 3
    assert top["changed_fields"].tolist() == ["", "password,sender_address", "name,password"]
    assert top["result"].astype(str).tolist() == ["ok"] * 3
    # By default: every workspace the caller administers (the demo admin: Sales only).
    pd.testing.assert_frame_equal(audit.audit_events_frame(admin), frame)

    # Field names only: neither marker password is anywhere in the frame.
    assert SECRET_MARKER not in frame.to_csv()
    assert SECRET_MARKER not in repr(frame.to_dict("records"))


def test_an_empty_trail_is_an_empty_typed_frame(admin: Client, service: RunningService) -> None:
    if store_events(service, SALES):
        pytest.skip("the seed leaves audit events in Sales")
    frame = audit.audit_events_frame(admin, [SALES])
    assert frame.empty and list(frame.columns) == list(audit.AUDIT_EVENT_COLUMNS)
    assert str(frame["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(frame["action"].dtype, pd.CategoricalDtype)


def test_only_workspace_admins_read_the_trail(analyst: Client, admin: Client) -> None:
    with pytest.raises(PermissionDenied):
        list(analyst.audit_events.list(SALES))
    # A Workspace object skips the lookup by name, so the trail endpoint itself refuses.
    with pytest.raises(PermissionDenied):
        audit.audit_events_frame(analyst, [admin.workspaces.get(SALES)])
    # By name, as for the other frames, the lookup already says it administers nothing.
    with pytest.raises(NotFound):
        audit.audit_events_frame(analyst, [SALES])


def test_bad_arguments_raise_before_any_request(admin: Client) -> None:
    for size in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="page_size"):
            admin.audit_events.list(SALES, page_size=size)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        admin.audit_events.list("")
    with pytest.raises(ValueError):
        admin.audit_events.page(SALES, cursor=" ")
