"""The audit frames and summaries on the seeded service, checked against the store."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from elegere_widgets import audit
from elegere_widgets.client import Client
from elegere_widgets.errors import NotFound
from elegere_widgets.server.store.tables import (
    CustomActionRow,
    EmailServerRow,
    SchedulerJobRow,
)
from tests.fixtures.service import RunningService

from .support import (
    MAILER,
    RELAY,
    SALES,
    SECRET_MARKER,
    SQLITE_ONLY,
    SUPPORT,
    TRICKY_ERROR,
    insert_delivery,
    insert_exchange_smtp_server,
    insert_graph_server,
    insert_smtp_server,
    store_deliveries,
)

pytestmark = SQLITE_ONLY


@pytest.fixture
def both(admin: Client, delegate: Client) -> Client:
    """The demo admin, made Workspace Admin of Support too: it then sees both workspaces."""
    delegate.workspaces.grant_admin(SUPPORT, "admin@acme.example")
    return admin


# ---------------------------------------------------------------- servers


def test_servers_frame_has_a_typed_row_per_server_per_workspace(
    both: Client, service: RunningService
) -> None:
    frame = audit.servers_frame(both)

    with service.ctx.sessions() as s:
        rows = {r.id: r for r in s.scalars(select(EmailServerRow))}
        usage = Counter(
            (u.workspace_id, u.email_server_id)
            for model in (CustomActionRow, SchedulerJobRow)
            for u in s.scalars(select(model))
        )
    expected = sorted(
        (ws, row.id)
        for ws in (SALES, SUPPORT)
        for row in rows.values()
        if row.workspace_id in (ws, None)
    )
    assert sorted(zip(frame["workspace_id"], frame["server_id"], strict=True)) == expected
    assert list(frame.columns) == [
        "workspace",
        "workspace_id",
        "server_id",
        "name",
        "type",
        "scope",
        "inherited",
        "key_setting",
        "custom_actions",
        "scheduler_jobs",
        "used",
        "last_test_ok",
        "last_test_at",
        "certificate_days_left",
        "certificate_expires_at",
        "next_certificate_days_left",
        "next_certificate_expires_at",
        "next_certificate_tested",
        "exchange_online_basic_auth",
    ]
    assert str(frame["last_test_at"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(frame["type"].dtype, pd.CategoricalDtype)
    assert list(frame["type"].cat.categories) == ["SMTP", "Microsoft Graph"]
    assert str(frame["certificate_days_left"].dtype) == "Int64"
    for r in frame.itertuples():
        stored = rows[r.server_id]
        assert r.workspace == {SALES: "Sales", SUPPORT: "Support"}[r.workspace_id]
        assert r.name == stored.name and r.inherited == (stored.workspace_id is None)
        assert r.scope == ("organization" if stored.workspace_id is None else "workspace")
        assert r.key_setting == f"{stored.settings['server']}:{stored.settings['port']}"
        assert r.custom_actions + r.scheduler_jobs == usage[(r.workspace_id, r.server_id)]
        assert r.used == (usage[(r.workspace_id, r.server_id)] > 0)
        assert r.last_test_ok == stored.last_test["ok"]
        assert r.last_test_at == pd.Timestamp(stored.last_test["at"])
        assert pd.isna(r.certificate_days_left)  # SMTP
        assert r.exchange_online_basic_auth is False  # the seed's relays are not Microsoft's


def test_certificate_days_left_for_graph_servers(both: Client, service: RunningService) -> None:
    now = datetime.now(UTC)
    # Half a day off the boundary, so that the test does not depend on the hour it runs.
    insert_graph_server(
        service, "srv_graph_soon", "Graph Soon", SALES, not_after=now + timedelta(days=10.5)
    )
    insert_graph_server(
        service, "srv_graph_later", "Graph Later", None, not_after=now + timedelta(days=90.5)
    )

    frame = audit.servers_frame(both).set_index(["workspace_id", "server_id"])

    assert frame.loc[(SALES, "srv_graph_soon"), "certificate_days_left"] == 10
    assert frame.loc[(SALES, "srv_graph_soon"), "type"] == "Microsoft Graph"
    assert frame.loc[(SALES, "srv_graph_soon"), "key_setting"] == "srv_graph_soon@acme.example"
    assert frame.loc[(SUPPORT, "srv_graph_later"), "certificate_days_left"] == 90
    expiring = audit.expiring_certificates(frame.reset_index())
    assert list(expiring["server_id"]) == ["srv_graph_soon"]
    assert list(audit.expiring_certificates(frame.reset_index(), days=100)["server_id"]) == [
        "srv_graph_soon",
        "srv_graph_later",
    ]


def test_the_servers_frame_shows_the_current_and_the_next_certificates_expiry(
    both: Client, service: RunningService
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    soon, later = now + timedelta(days=10.5), now + timedelta(days=400.5)
    insert_graph_server(service, "srv_graph_none", "Graph None", SALES, not_after=soon)
    insert_graph_server(
        service, "srv_graph_held", "Graph Held", SALES, not_after=soon, next_after=later
    )
    insert_graph_server(
        service,
        "srv_graph_ready",
        "Graph Ready",
        SALES,
        not_after=soon,
        next_after=later,
        next_tested=True,
    )
    insert_graph_server(
        service,
        "srv_graph_refused",
        "Graph Refused",
        SALES,
        not_after=soon,
        next_after=later,
        next_tested=False,
    )

    frame = audit.servers_frame(both, [SALES]).set_index("server_id")

    assert str(frame["next_certificate_expires_at"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["next_certificate_tested"].dtype) == "boolean"
    ready = frame.loc["srv_graph_ready"]
    assert ready["certificate_expires_at"] == pd.Timestamp(soon)
    assert ready["certificate_days_left"] == 10
    assert ready["next_certificate_expires_at"] == pd.Timestamp(later)
    assert ready["next_certificate_days_left"] == 400
    assert ready["next_certificate_tested"]
    assert not frame.loc["srv_graph_held", "next_certificate_tested"]  # not tested yet
    assert not frame.loc["srv_graph_refused", "next_certificate_tested"]
    none = frame.loc["srv_graph_none"]
    assert pd.isna(none["next_certificate_expires_at"]) and pd.isna(none["next_certificate_tested"])
    assert pd.isna(frame.loc["srv_sales_mailer", "certificate_expires_at"])  # SMTP: none


def test_no_secret_reaches_any_frame(both: Client, service: RunningService) -> None:
    insert_smtp_server(service, "srv_hush", "Hush", SALES)
    insert_graph_server(
        service, "srv_graph_hush", "Graph Hush", SUPPORT, not_after=datetime.now(UTC)
    )
    insert_delivery(service, "dlv_hush", email_server_id="srv_hush")
    with service.ctx.sessions() as s:  # the marker is stored, sealed: the test can fail
        sealed = s.get(EmailServerRow, "srv_hush").secrets_sealed  # type: ignore[union-attr]
        assert SECRET_MARKER in service.ctx.box.open(sealed).values()

    servers = audit.servers_frame(both)
    deliveries = audit.deliveries_frame(both)
    frames = {
        "servers": servers,
        "usages": audit.usages_frame(both),
        "deliveries": deliveries,
        "per day": audit.deliveries_per_server_per_day(deliveries),
        "failure rate": audit.failure_rate_per_server(deliveries),
        "unused": audit.unused_servers(servers),
        "tests": audit.stale_or_failed_tests(servers),
        "certificates": audit.expiring_certificates(servers),
        "inherited only": audit.inherited_only_workspaces(servers),
    }
    assert "srv_hush" in set(servers["server_id"])
    for what, frame in frames.items():
        text = frame.to_csv() + " ".join(map(str, frame.columns))
        assert SECRET_MARKER not in text, what
    for frame in (servers, frames["usages"], deliveries):  # columns that are fields
        names = " ".join(map(str, frame.columns)).lower()
        assert "password" not in names and "secret" not in names


# ---------------------------------------------------------------- usages


def test_usages_frame_names_each_user_of_a_server(both: Client, service: RunningService) -> None:
    frame = audit.usages_frame(both)

    with service.ctx.sessions() as s:
        names = {r.id: r.name for r in s.scalars(select(EmailServerRow))}
        expected = sorted(
            (kind, u.id, u.name, u.workspace_id, u.email_server_id, names[u.email_server_id])
            for kind, model in (
                ("custom_action", CustomActionRow),
                ("scheduler_job", SchedulerJobRow),
            )
            for u in s.scalars(select(model))
        )
    got = sorted(
        frame[["kind", "id", "name", "workspace_id", "server_id", "server_name"]].itertuples(
            index=False, name=None
        )
    )
    assert got == expected and expected
    assert list(frame["kind"].cat.categories) == ["custom_action", "scheduler_job"]
    assert set(frame["workspace"]) == {"Sales", "Support"}


# ---------------------------------------------------------------- deliveries


def test_deliveries_frame_counts_and_types(both: Client, service: RunningService) -> None:
    stored = store_deliveries(service, SALES, SUPPORT)

    frame = audit.deliveries_frame(both)

    assert len(frame) == len(stored) and len(frame) > 100
    assert list(frame["id"]) == [d.id for d in stored]  # oldest first across workspaces
    dtypes = frame.dtypes.astype(str).to_dict()
    assert dtypes["created_at"] == "datetime64[ns, UTC]"
    for column in ("status", "kind", "workspace", "workspace_id", "server_id", "server_name"):
        assert dtypes[column] == "category", column
    assert list(frame["status"].cat.categories) == list(audit.DELIVERY_STATUSES)
    assert dtypes["recipient_count"] == "int64"
    counted = Counter(zip(frame["workspace_id"], frame["server_id"], frame["status"], strict=True))
    assert counted == Counter((d.workspace_id, d.email_server_id, d.status) for d in stored)
    assert list(frame["created_at"]) == [pd.Timestamp(d.created_at) for d in stored]
    assert list(frame["recipient_count"]) == [len(d.recipients) for d in stored]
    assert list(frame["error"].fillna("")) == [d.error or "" for d in stored]
    assert set(frame["workspace"]) == {"Sales", "Support"}


def test_deliveries_frame_period_and_server_filters(both: Client, service: RunningService) -> None:
    stored = store_deliveries(service, SALES)
    times = sorted(d.created_at for d in stored)
    since, until = times[len(times) // 4], times[3 * len(times) // 4]

    frame = audit.deliveries_frame(both, "Sales", since, until)
    relay = audit.deliveries_frame(both, [SALES], since=since, server_id=RELAY)

    assert sorted(frame["id"]) == sorted(d.id for d in stored if since <= d.created_at < until)
    assert frame["created_at"].min() >= pd.Timestamp(since)
    assert frame["created_at"].max() < pd.Timestamp(until)
    assert sorted(relay["id"]) == sorted(
        d.id for d in stored if d.created_at >= since and d.email_server_id == RELAY
    )
    empty = audit.deliveries_frame(both, SALES, since=datetime(2100, 1, 1, tzinfo=UTC))
    assert empty.empty
    assert empty.dtypes.astype(str).to_dict() == frame.dtypes.astype(str).to_dict()


def test_a_tricky_error_text_arrives_whole(both: Client, service: RunningService) -> None:
    insert_delivery(service, "dlv_tricky", status="failed", error=TRICKY_ERROR)

    frame = audit.deliveries_frame(both, SALES).set_index("id")

    assert frame.loc["dlv_tricky", "error"] == TRICKY_ERROR
    assert frame.loc["dlv_tricky", "status"] == "failed"


def test_workspaces_by_name_id_or_object(both: Client) -> None:
    sales = both.workspaces.get("Sales")
    for chosen in ("sales", SALES, sales, [sales, "Sales"]):
        assert set(audit.servers_frame(both, chosen)["workspace_id"]) == {SALES}  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        audit.deliveries_frame(both, "Marketing")


def test_a_caller_without_workspaces_gets_empty_typed_frames(analyst: Client, both: Client) -> None:
    for build in (audit.servers_frame, audit.usages_frame, audit.deliveries_frame):
        empty = build(analyst)
        full = build(both)
        assert empty.empty
        assert empty.dtypes.astype(str).to_dict() == full.dtypes.astype(str).to_dict()
    assert audit.deliveries_per_server_per_day(audit.deliveries_frame(analyst)).empty
    assert audit.failure_rate_per_server(audit.deliveries_frame(analyst)).empty


# ---------------------------------------------------------------- summaries


def test_deliveries_per_server_per_day(both: Client, service: RunningService) -> None:
    stored = store_deliveries(service, SALES, SUPPORT)
    expected = Counter((d.created_at.astimezone(UTC).date(), d.email_server_id) for d in stored)
    names = {d.email_server_id: d.email_server_name for d in stored}

    table = audit.deliveries_per_server_per_day(audit.deliveries_frame(both))

    assert sorted(table.columns) == sorted(names[i] for i in {s for _, s in expected})
    first, last = min(d for d, _ in expected), max(d for d, _ in expected)
    assert len(table) == (last - first).days + 1  # days without mail are rows of zeros
    assert str(table.index.dtype) == "datetime64[ns, UTC]"
    for (day, server), n in expected.items():
        assert table.loc[pd.Timestamp(day, tz="UTC"), names[server]] == n
    assert int(table.to_numpy().sum()) == len(stored)


def test_failure_rate_per_server(both: Client, service: RunningService) -> None:
    insert_delivery(service, "dlv_bounce", email_server_id=RELAY, status="bounced")
    stored = store_deliveries(service, SALES, SUPPORT)
    total = Counter(d.email_server_id for d in stored)
    failed = Counter(d.email_server_id for d in stored if d.status in ("failed", "bounced"))

    table = audit.failure_rate_per_server(audit.deliveries_frame(both))

    assert set(table.index) == set(total)
    for server, row in table.iterrows():
        assert row["deliveries"] == total[server]
        assert row["failed"] == failed[server]
        assert math.isclose(row["failure_rate"], failed[server] / total[server])
    assert list(table["failure_rate"]) == sorted(table["failure_rate"], reverse=True)
    assert 0 < table["failure_rate"].max() < 0.5  # the demo fails about 6 %


def test_unused_servers(both: Client, admin: Client, service: RunningService) -> None:
    insert_smtp_server(service, "srv_idle", "Idle", SALES)

    unused = audit.unused_servers(audit.servers_frame(both))

    assert list(unused["server_id"]) == ["srv_idle"]
    assert list(unused["workspaces"]) == ["Sales"]
    # Seen from Sales alone, the relay looks unused: Support's use is out of sight.
    sales_only = audit.unused_servers(audit.servers_frame(admin, SALES))
    assert set(sales_only["server_id"]) == {"srv_idle", RELAY}


def test_stale_or_failed_tests(both: Client, service: RunningService) -> None:
    now = datetime.now(UTC)
    failed = {"ok": False, "at": now.isoformat(), "elapsed_ms": 10, "detail": "535"}
    insert_smtp_server(service, "srv_failing", "Failing", SALES, last_test=failed)
    insert_smtp_server(service, "srv_untested", "Untested", SUPPORT, last_test=None)
    with service.ctx.sessions() as s:
        tested = {
            r.id: datetime.fromisoformat(r.last_test["at"])
            for r in s.scalars(select(EmailServerRow))
            if r.last_test
        }
    old = {i for i, at in tested.items() if at < now - timedelta(days=30)}
    assert MAILER in old  # the demo's mailer was tested 40 days ago

    table = audit.stale_or_failed_tests(audit.servers_frame(both), now=now)

    reasons = dict(zip(table["server_id"], table["reason"], strict=True))
    assert reasons == {
        "srv_failing": "last test failed",
        "srv_untested": "never tested",
        **dict.fromkeys(old, "last test older than 30 days"),
    }
    with pytest.raises(ValueError, match="time zone"):
        audit.stale_or_failed_tests(audit.servers_frame(both), now=datetime(2026, 1, 1))


def test_inherited_only_workspaces(both: Client, service: RunningService) -> None:
    frame = audit.servers_frame(both)
    with service.ctx.sessions() as s:
        owners = {r.workspace_id for r in s.scalars(select(EmailServerRow))}
    expected = sorted({SALES, SUPPORT} - owners)
    assert expected == [SUPPORT]  # the demo: Support sends through Acme Relay only

    table = audit.inherited_only_workspaces(frame)

    assert list(table["workspace_id"]) == expected
    assert list(table["workspace"]) == ["Support"]
    assert list(table["inherited_servers"]) == [1]


def test_formula_cells_reach_the_frame_as_their_original_text(
    both: Client, service: RunningService
) -> None:
    from .support import FORMULA_CELLS

    for n, name in enumerate(FORMULA_CELLS):
        insert_delivery(service, f"dlv_formula_{n}", email_server_name=name, error=name)

    frame = audit.deliveries_frame(both, SALES).set_index("id")

    for n, name in enumerate(FORMULA_CELLS):
        assert frame.loc[f"dlv_formula_{n}", "server_name"] == name
        assert frame.loc[f"dlv_formula_{n}", "error"] == name
    assert str(frame["server_name"].dtype) == "category"


def test_passwords_on_exchange_online_are_flagged(both: Client, service: RunningService) -> None:
    insert_exchange_smtp_server(
        service, "srv_o365", "Office Relay", SALES, host="smtp.office365.com"
    )
    insert_exchange_smtp_server(
        service, "srv_mx", "Tenant MX", None, host="contoso-com.mail.protection.outlook.com"
    )
    insert_exchange_smtp_server(
        service, "srv_oauth", "Office OAuth", SALES, host="smtp.office365.com", oauth=True
    )
    frame = audit.servers_frame(both)
    flagged = audit.passwords_on_exchange_online(frame)
    assert sorted(flagged["server_id"]) == ["srv_mx", "srv_o365"]
    assert frame["exchange_online_basic_auth"].dtype == bool
    assert not frame.set_index("server_id").loc["srv_oauth", "exchange_online_basic_auth"]
