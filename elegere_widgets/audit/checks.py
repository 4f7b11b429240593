"""Health over time: the servers' kept connection tests (scheduled and manual) as a frame, and
what they say: checks per server per day, and how long each failure lasted."""

from __future__ import annotations

from datetime import datetime
from itertools import takewhile
from typing import Any

import pandas as pd

from ..client import Client
from ..models import EmailServer, ServerCheck, Workspace
from .frames import SCOPES, UTC_NS, WorkspacesArg, _resolve, _with_known_categories

CHECK_SOURCES = ("scheduled", "manual")

# The checks frame's columns, in order, and their types.
_CHECK_DTYPES: dict[str, Any] = {
    "checked_at": UTC_NS,
    "server_id": "str",
    "server_name": "str",
    "scope": SCOPES,
    "workspace": "str",
    "workspace_id": "str",
    "id": "str",
    "ok": "bool",
    "failed_stage": "str",
    "elapsed_ms": "int64",
    "detail": "str",
    "source": "category",
}
CHECK_COLUMNS = tuple(_CHECK_DTYPES)
#: Checks asked for per request: a year of daily checks of a server in one page.
_PAGE = 500


def checks_frame(
    client: Client, workspaces: WorkspacesArg = None, since: datetime | None = None
) -> pd.DataFrame:
    """Every kept connection test of the servers the workspaces can see, oldest first.

    ``workspaces``: names or ids (or ``Workspace`` objects); by default every workspace the
    caller administers. ``since`` (aware) leaves older checks out, and stops reading them.
    One row per check: an organization's server shows once however many of the workspaces
    inherit it (its ``workspace`` and ``workspace_id`` are NA). Columns: checked_at (UTC),
    server_id, server_name (its current name), scope (workspace / organization), workspace,
    workspace_id, id, ok, failed_stage (NA when ok), elapsed_ms, detail (what happened, e.g.
    the server's reply: never a secret), source (scheduled by the worker, or manual).
    """
    if since is not None and since.utcoffset() is None:
        raise ValueError("since has no time zone; pass an aware datetime, e.g. in UTC.")
    records: list[dict[str, object]] = []
    for ws, server in _servers_once(client, _resolve(client, workspaces)):
        checks = client.email_servers.checks(ws.id, server.id, page_size=_PAGE)
        if since is not None:  # newest first: the rest are older still
            checks = takewhile(lambda c: c.checked_at >= since, checks)
        records.extend(_check_record(ws, server, check) for check in checks)
    frame = pd.DataFrame.from_records(records, columns=list(CHECK_COLUMNS))
    frame["checked_at"] = pd.to_datetime(frame["checked_at"], utc=True)
    frame = frame.astype(_CHECK_DTYPES)
    frame["source"] = _with_known_categories(frame["source"], CHECK_SOURCES)
    return frame.sort_values(["checked_at", "id"], kind="stable", ignore_index=True)


def _servers_once(
    client: Client, workspaces: list[Workspace]
) -> list[tuple[Workspace, EmailServer]]:
    """Each server once, with a workspace that sees it (to read its checks through)."""
    seen: dict[str, tuple[Workspace, EmailServer]] = {}
    for ws in workspaces:
        for server in client.email_servers.list(ws.id):
            seen.setdefault(server.id, (ws, server))
    return list(seen.values())


def _check_record(ws: Workspace, server: EmailServer, check: ServerCheck) -> dict[str, object]:
    # Named fields only, as for the other frames: nothing added to the API later slips in.
    own = server.scope == "workspace"
    return {
        "checked_at": check.checked_at,
        "server_id": server.id,
        "server_name": server.name,
        "scope": server.scope,
        "workspace": ws.name if own else None,
        "workspace_id": ws.id if own else None,
        "id": check.id,
        "ok": check.ok,
        "failed_stage": check.failed_stage,
        "elapsed_ms": check.elapsed_ms,
        "detail": check.detail,
        "source": check.source,
    }


# ---------------------------------------------------------------- summaries


def checks_per_server_per_day(checks: pd.DataFrame) -> pd.DataFrame:
    """Per UTC day and server, from ``checks_frame``: checks, failed, failed_share (0 to 1).

    One row per day a server was checked, oldest day first; columns day, server_id,
    server_name, checks, failed, failed_share. ``.pivot(index="day", columns="server_name",
    values="failed")`` makes it a table to plot.
    """
    day = checks["checked_at"].dt.floor("D").rename("day")
    with_failed = checks.assign(failed=~checks["ok"].astype(bool))
    table = with_failed.groupby([day, "server_id"], observed=True, sort=True).agg(
        server_name=("server_name", "last"),
        checks=("ok", "size"),
        failed=("failed", "sum"),
    )
    table = table.astype({"checks": "int64", "failed": "int64"})
    table["failed_share"] = table["failed"] / table["checks"]
    return table.reset_index()


def recoveries(checks: pd.DataFrame) -> pd.DataFrame:
    """Each failure of a server, from ``checks_frame``: when it began, when it ended, how long.

    A failure is a run of failed checks; it ends at the next passing check. One row per run,
    oldest first. Columns: server_id, server_name, failed_at (the run's first failed check),
    failed_checks, last_failure (the run's last failed check's detail), recovered_at and
    time_to_recovery (NaT while the server still fails).
    """
    ordered = checks.sort_values(["server_id", "checked_at", "id"], kind="stable")
    server = ordered["server_id"].astype("str")
    ok = ordered["ok"].astype(bool)
    # A new run wherever the server or the outcome changes: the runs of each server, in order.
    run = ((server != server.shift()) | (ok != ok.shift())).cumsum()
    runs = ordered.groupby(run, sort=True).agg(
        server_id=("server_id", "first"),
        server_name=("server_name", "last"),
        ok=("ok", "first"),
        started=("checked_at", "first"),
        size=("ok", "size"),
        last_failure=("detail", "last"),
    )
    # The run after a failed one, when it is the same server's, is its recovery.
    after = runs.shift(-1)
    failed = runs[~runs["ok"].astype(bool)]
    recovered_at = after.loc[failed.index, "started"].where(
        after.loc[failed.index, "server_id"] == failed["server_id"]
    )
    table = pd.DataFrame(
        {
            "server_id": failed["server_id"].astype("str"),
            "server_name": failed["server_name"].astype("str"),
            "failed_at": failed["started"],
            "failed_checks": failed["size"].astype("int64"),
            "last_failure": failed["last_failure"].astype("str"),
            "recovered_at": pd.to_datetime(recovered_at, utc=True),
        }
    )
    table["time_to_recovery"] = table["recovered_at"] - table["failed_at"]
    return table.sort_values("failed_at", kind="stable", ignore_index=True)
