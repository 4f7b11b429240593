"""Summaries of the frames, as frames: ready to show, filter and plot."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from .frames import FAILED_STATUSES

# ---------------------------------------------------------------- deliveries


def deliveries_per_server_per_day(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Deliveries per UTC day (rows) per server (columns), from ``deliveries_frame``.

    Every day from the first delivery to the last is a row, zeros included, so that a plot
    shows the quiet days. Columns carry the server's latest name (with its id, should two
    servers share a name).
    """
    day = deliveries["created_at"].dt.floor("D").rename("day")
    counts = deliveries.groupby([day, "server_id"], observed=True).size()
    table = counts.unstack("server_id", fill_value=0)
    if not table.empty:
        every_day = pd.date_range(table.index.min(), table.index.max(), freq="D", name="day")
        table = table.reindex(every_day, fill_value=0)
    ids = table.columns.astype("str")
    table.columns = pd.Index(_server_labels(deliveries).reindex(ids), name="server")
    return table


def failure_rate_per_server(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Per server (index: server_id): server_name, deliveries, failed and failure_rate.

    ``failed`` counts the statuses in ``FAILED_STATUSES`` (failed, bounced); the rate is a
    fraction from 0 to 1. The worst server comes first.
    """
    failed = deliveries["status"].isin(FAILED_STATUSES)
    by_server = failed.groupby(deliveries["server_id"], observed=True)
    table = pd.DataFrame({"deliveries": by_server.size(), "failed": by_server.sum()})
    table["failure_rate"] = table["failed"] / table["deliveries"]
    table.index = pd.Index(table.index.astype("str"), name="server_id")
    table.insert(0, "server_name", _server_labels(deliveries).reindex(table.index))
    return table.sort_values(["failure_rate", "deliveries"], ascending=[False, False])


def _server_labels(deliveries: pd.DataFrame) -> pd.Series:
    """server_id -> the name of its latest delivery, with the id added where names clash."""
    # idxmax finds each server's latest row without sorting or copying a million rows.
    latest = deliveries.groupby("server_id", observed=True)["created_at"].idxmax()
    names = deliveries.loc[latest.to_numpy(), "server_name"].astype("str").to_numpy()
    label = pd.Series(names, index=latest.index.astype("str"), dtype="str")
    clash = label.duplicated(keep=False)
    label[clash] = label[clash] + " (" + label.index[clash] + ")"
    return label


# ---------------------------------------------------------------- servers


def unused_servers(servers: pd.DataFrame) -> pd.DataFrame:
    """Servers no custom action or scheduler job uses in any of the frame's workspaces.

    An organization's server may still be used in a workspace the frame does not cover
    (one the caller does not administer): ``workspaces`` says where it was looked at.
    """
    total = servers["custom_actions"] + servers["scheduler_jobs"]
    per_server = _one_row_per_server(servers.assign(total=total), total=("total", "sum"))
    unused = per_server[per_server["total"] == 0]
    return unused.drop(columns="total").reset_index(drop=True)


def stale_or_failed_tests(
    servers: pd.DataFrame, *, days: int = 30, now: datetime | None = None
) -> pd.DataFrame:
    """Servers whose last connection test failed, is older than ``days``, or never ran.

    One row per server, with a ``reason``. ``now`` (aware) defaults to the current time.
    """
    if now is not None and now.utcoffset() is None:
        raise ValueError("now has no time zone; pass an aware datetime, e.g. in UTC.")
    moment = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    one = _one_row_per_server(servers)
    never = one["last_test_at"].isna()
    failed = one["last_test_ok"].eq(False).fillna(False).astype(bool)
    old = (one["last_test_at"] < moment - pd.Timedelta(days=days)).fillna(False)
    reason = np.select(
        [never.to_numpy(), failed.to_numpy(), old.to_numpy()],
        ["never tested", "last test failed", f"last test older than {days} days"],
        default="",
    )
    return one.assign(reason=reason)[reason != ""].reset_index(drop=True)


def expiring_certificates(servers: pd.DataFrame, *, days: int = 30) -> pd.DataFrame:
    """Microsoft Graph servers whose certificate expires within ``days`` (or has expired).

    One row per server, soonest first; SMTP servers have no certificate and never appear.
    """
    one = _one_row_per_server(servers)
    soon = one["certificate_days_left"].le(days).fillna(False).astype(bool)
    return one[soon].sort_values("certificate_days_left").reset_index(drop=True)


def passwords_on_exchange_online(servers: pd.DataFrame) -> pd.DataFrame:
    """SMTP servers that sign in to Microsoft 365 (Exchange Online) with a password.

    Microsoft turns password sign-in for SMTP off (by default from the end of December 2026):
    each of these stops sending then unless it moves to OAuth 2.0 or the Microsoft Graph type.
    One row per server.
    """
    flagged = servers[servers["exchange_online_basic_auth"]]
    return _one_row_per_server(flagged).reset_index(drop=True)


def inherited_only_workspaces(servers: pd.DataFrame) -> pd.DataFrame:
    """Workspaces with no server of their own: all their mail goes through inherited ones.

    Columns: workspace_id, workspace, inherited_servers (how many they can send through).
    """
    table = servers.groupby("workspace_id", observed=True).agg(
        workspace=("workspace", "first"),
        own_servers=("inherited", lambda s: int((~s).sum())),
        inherited_servers=("inherited", "sum"),
    )
    return table[table["own_servers"] == 0].drop(columns="own_servers").reset_index()


def _one_row_per_server(servers: pd.DataFrame, **extra: tuple[str, str]) -> pd.DataFrame:
    # An organization's server has a row per workspace that inherits it; the summaries are
    # about servers, so fold those rows and name the workspaces they came from.
    columns = ["name", "type", "scope", "key_setting", "last_test_ok", "last_test_at"]
    columns.append("certificate_days_left")
    table = servers.groupby("server_id", observed=True, sort=False).agg(
        **{c: (c, "first") for c in columns},
        workspaces=("workspace", lambda s: ", ".join(sorted(set(s)))),
        **extra,
    )
    return table.reset_index()
