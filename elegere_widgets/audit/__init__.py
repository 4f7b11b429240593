"""Audits of email-server usage as pandas DataFrames: which servers, used by what, how well.

::

    from elegere_widgets import audit
    from elegere_widgets.client import Client

    with Client.from_env() as client:
        servers = audit.servers_frame(client)          # every workspace you administer
        usages = audit.usages_frame(client, ["Sales"])
        deliveries = audit.deliveries_frame(client, since=start)
        trail = audit.audit_events_frame(client)      # who changed or tested which server
        checks = audit.checks_frame(client, since=start)  # every kept connection test
        audit.recoveries(checks)                      # each failure: how long until it passed
        audit.failure_rate_per_server(deliveries)

Everything is read through the API as the caller, so a frame holds what that caller may see
and never a secret (the API has none to give). This package is the only one that imports
pandas: the service, the client and the widgets stay free of it.

Deliveries come from the streamed CSV export (``client.deliveries.export``) and are parsed
column-wise by pyarrow as they download, never row by row in Python, so a year of a busy
organization (a million rows) stays practical in time and memory. The summaries take the
frames and return frames, ready to plot.
"""

from __future__ import annotations

from .checks import (
    CHECK_COLUMNS,
    CHECK_SOURCES,
    checks_frame,
    checks_per_server_per_day,
    recoveries,
)
from .frames import (
    AUDIT_ACTIONS,
    AUDIT_EVENT_COLUMNS,
    AUDIT_RESULTS,
    DELIVERY_COLUMNS,
    DELIVERY_KINDS,
    DELIVERY_STATUSES,
    FAILED_STATUSES,
    audit_events_frame,
    deliveries_frame,
    servers_frame,
    usages_frame,
)
from .summaries import (
    deliveries_per_server_per_day,
    expiring_certificates,
    failure_rate_per_server,
    inherited_only_workspaces,
    passwords_on_exchange_online,
    stale_or_failed_tests,
    unused_servers,
)

__all__ = [
    "AUDIT_ACTIONS",
    "AUDIT_EVENT_COLUMNS",
    "AUDIT_RESULTS",
    "CHECK_COLUMNS",
    "CHECK_SOURCES",
    "DELIVERY_COLUMNS",
    "DELIVERY_KINDS",
    "DELIVERY_STATUSES",
    "FAILED_STATUSES",
    "audit_events_frame",
    "checks_frame",
    "checks_per_server_per_day",
    "deliveries_frame",
    "deliveries_per_server_per_day",
    "expiring_certificates",
    "failure_rate_per_server",
    "inherited_only_workspaces",
    "passwords_on_exchange_online",
    "recoveries",
    "servers_frame",
    "stale_or_failed_tests",
    "unused_servers",
    "usages_frame",
]
