"""``audit.checks_frame`` and its summaries on real checks: connection tests through the API
against an aiosmtpd peer that stops and comes back, and a scheduled pass of the worker's
health checker, all read back from the store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from elegere_widgets import audit
from elegere_widgets.client import Client
from elegere_widgets.server.store.tables import ServerCheckRow
from elegere_widgets.server.worker.health import HealthChecker
from tests.fixtures.service import RunningService
from tests.fixtures.smtp import SmtpPeer
from tests.worker.conftest import Clock

from .support import SALES, SQLITE_ONLY, SUPPORT

pytestmark = SQLITE_ONLY
ORG = "org_acme"
INTERVAL_S = 60


@pytest.fixture
def service_settings_overrides(trusting_test_ca: dict[str, object]) -> dict[str, object]:
    return {**trusting_test_ca, "health_interval_s": INTERVAL_S}


@pytest.fixture
def both(admin: Client, delegate: Client) -> Client:
    """The demo admin, made Workspace Admin of Support too: it then sees both workspaces."""
    delegate.workspaces.grant_admin(SUPPORT, "admin@acme.example")
    return admin


def _add(client: Client, owner: str, peer: SmtpPeer, name: str, *, org: bool = False) -> str:
    """A server on the peer, added as the wizard does: its passing test is its first check."""
    api = client.organization_email_servers if org else client.email_servers
    spec = peer.spec(name)
    token = api.test(owner, spec).test_token
    assert token, "the peer's connection test should pass"
    return api.create(owner, spec, test_token=token).id


def _retest(client: Client, server_id: str, peer: SmtpPeer) -> bool:
    """Test the stored server again (its stored password): kept as a manual check."""
    spec = peer.spec(password=None).model_copy(update={"server_id": server_id})
    return client.email_servers.test(SALES, spec).ok


@pytest.fixture
def checked(both: Client, delegate: Client, peer: SmtpPeer, service: RunningService) -> str:
    """A Sales server that passed, failed twice while its peer was down, then passed again;
    an organization server on the same peer; then one scheduled pass over every server.
    Returns the Sales server's id."""
    server_id = _add(both, SALES, peer, "Checked relay")
    _add(delegate, ORG, peer, "Org checked relay", org=True)
    assert _retest(both, server_id, peer)
    port = peer.port
    peer.stop()
    assert not _retest(both, server_id, peer)
    assert not _retest(both, server_id, peer)
    peer.start(port)
    assert _retest(both, server_id, peer)
    clock = Clock()
    checker = HealthChecker(service.ctx, clock=clock)
    try:
        checker.schedule_new_servers(clock())
        clock.advance(seconds=INTERVAL_S)
        assert checker.run_once() == 4  # the relay, the mailer and the two peer servers
    finally:
        checker.stop()
    return server_id


def _stored_checks(service: RunningService) -> list[ServerCheckRow]:
    with service.ctx.sessions() as s:
        return list(
            s.scalars(select(ServerCheckRow).order_by(ServerCheckRow.checked_at, ServerCheckRow.id))
        )


def test_checks_frame_has_every_check_once_oldest_first(
    both: Client, checked: str, service: RunningService
) -> None:
    frame = audit.checks_frame(both)

    stored = _stored_checks(service)
    assert list(frame.columns) == list(audit.CHECK_COLUMNS)
    # Each check once, though the organization's servers are seen from both workspaces.
    assert list(frame["id"]) == [c.id for c in stored]
    assert list(frame["ok"]) == [c.ok for c in stored]
    assert list(frame["checked_at"]) == [pd.Timestamp(c.checked_at) for c in stored]
    assert list(frame["source"].astype(str)) == [c.source for c in stored]
    assert list(frame["failed_stage"].fillna("-")) == [c.failed_stage or "-" for c in stored]
    assert frame["checked_at"].dt.tz is not None
    assert set(frame["source"].cat.categories) >= {"scheduled", "manual"}

    mine = frame[frame["server_id"] == checked]
    assert list(mine["source"].astype(str)) == ["manual"] * 5 + ["scheduled"]
    assert list(mine["ok"]) == [True, True, False, False, True, True]
    assert set(mine["workspace"]) == {"Sales"} and set(mine["scope"]) == {"workspace"}
    assert mine["detail"].iloc[2].startswith("failed at connect")
    org = frame[frame["server_name"] == "Org checked relay"]
    assert len(org) == 2 and set(org["scope"]) == {"organization"}
    assert org["workspace"].isna().all() and org["workspace_id"].isna().all()


def test_since_leaves_older_checks_out(both: Client, checked: str) -> None:
    full = audit.checks_frame(both)
    cut = full["checked_at"].iloc[len(full) // 2]
    recent = audit.checks_frame(both, since=cut.to_pydatetime())
    assert list(recent["id"]) == list(full.loc[full["checked_at"] >= cut, "id"])
    assert 0 < len(recent) < len(full)
    with pytest.raises(ValueError, match="time zone"):
        audit.checks_frame(both, since=datetime.now())


def test_checks_per_server_per_day(both: Client, checked: str, service: RunningService) -> None:
    table = audit.checks_per_server_per_day(audit.checks_frame(both))

    stored = _stored_checks(service)
    checks = Counter((c.checked_at.astimezone(UTC).date(), c.email_server_id) for c in stored)
    failed = Counter(
        (c.checked_at.astimezone(UTC).date(), c.email_server_id) for c in stored if not c.ok
    )
    got = {(row.day.date(), row.server_id): row for row in table.itertuples()}
    assert set(got) == set(checks)
    for key, row in got.items():
        assert (row.checks, row.failed) == (checks[key], failed[key])
        assert row.failed_share == failed[key] / checks[key]
    assert table["day"].is_monotonic_increasing
    assert "Checked relay" in set(table["server_name"])


def test_recoveries_say_how_long_each_failure_lasted(
    both: Client, checked: str, service: RunningService
) -> None:
    table = audit.recoveries(audit.checks_frame(both))

    mine = [c for c in _stored_checks(service) if c.email_server_id == checked]
    first_failed, back = mine[2], mine[4]
    rows = table[table["server_id"] == checked]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["failed_at"] == pd.Timestamp(first_failed.checked_at)
    assert row["failed_checks"] == 2
    assert row["recovered_at"] == pd.Timestamp(back.checked_at)
    assert row["time_to_recovery"] == back.checked_at - first_failed.checked_at
    assert row["last_failure"].startswith("failed at connect")
    # The demo's hosts do not exist: their one scheduled check failed, and still fails.
    demo = table[table["server_id"].isin(["srv_acme_relay", "srv_sales_mailer"])]
    assert len(demo) == 2 and demo["recovered_at"].isna().all()
    assert demo["time_to_recovery"].isna().all()


def test_no_secret_reaches_the_checks_frames(
    both: Client, checked: str, peer: SmtpPeer, service: RunningService
) -> None:
    frame = audit.checks_frame(both)
    for what, table in {
        "checks": frame,
        "per day": audit.checks_per_server_per_day(frame),
        "recoveries": audit.recoveries(frame),
    }.items():
        text = table.to_csv() + " ".join(map(str, table.columns))
        assert peer.password not in text, what
        assert "relay-demo-password" not in text and "sales-demo-password" not in text, what


def test_a_caller_without_workspaces_gets_an_empty_typed_frame(
    analyst: Client, both: Client, checked: str
) -> None:
    empty = audit.checks_frame(analyst)
    full = audit.checks_frame(both)
    assert empty.empty and not full.empty
    assert empty.dtypes.astype(str).to_dict() == full.dtypes.astype(str).to_dict()
    assert audit.checks_per_server_per_day(empty).empty
    assert audit.recoveries(empty).empty
    assert list(audit.recoveries(empty).columns) == list(audit.recoveries(full).columns)


def test_workspaces_narrow_the_servers(both: Client, checked: str) -> None:
    support = audit.checks_frame(both, "Support")
    # Support has no server of its own: only the organization's, whose checks show there too.
    assert set(support["scope"]) == {"organization"}
    assert checked not in set(support["server_id"])
    assert set(support["server_id"]) == {"srv_acme_relay"} | set(
        support.loc[support["server_name"] == "Org checked relay", "server_id"]
    )
    assert timedelta(0) <= support["checked_at"].diff().dropna().min()
