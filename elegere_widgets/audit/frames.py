"""The frames: servers, usages, deliveries and the audit trail, read through the API as the
caller."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..client import Client
from ..csv_cells import NEUTRALISED
from ..models import TYPE_LABELS, AuditEvent, EmailServer, Workspace
from ..models.servers import SmtpSettingsView, is_exchange_online

WorkspacesArg = str | Workspace | Iterable[str | Workspace] | None

DELIVERY_STATUSES = ("sent", "deferred", "accepted", "failed", "bounced")
# A bounce is a failure that came back later; both count against a server's failure rate.
FAILED_STATUSES = ("failed", "bounced")
DELIVERY_KINDS = (
    "action",
    "tag",
    "reply",
    "account",
    "custom_action",
    "scheduler_job",
    "test",
)
UTC_NS = "datetime64[ns, UTC]"

SERVER_TYPES = pd.CategoricalDtype(list(TYPE_LABELS.values()))
SCOPES = pd.CategoricalDtype(["workspace", "organization"])
USAGE_KINDS = pd.CategoricalDtype(["custom_action", "scheduler_job"])
AUDIT_ACTIONS = (
    "create",
    "update",
    "delete",
    "test",
    "send_test",
    "test_next_certificate",
    "promote_certificate",
    "drop_next_certificate",
)
AUDIT_RESULTS = ("ok", "failed")

# The servers frame's columns, in order, and their types.
_SERVER_DTYPES: dict[str, Any] = {
    "workspace": "str",
    "workspace_id": "str",
    "server_id": "str",
    "name": "str",
    "type": SERVER_TYPES,
    "scope": SCOPES,
    "inherited": "bool",
    "key_setting": "str",
    "custom_actions": "int64",
    "scheduler_jobs": "int64",
    "used": "bool",
    "last_test_ok": "boolean",
    "last_test_at": UTC_NS,
    "certificate_days_left": "Int64",
    "certificate_expires_at": UTC_NS,
    "next_certificate_days_left": "Int64",
    "next_certificate_expires_at": UTC_NS,
    "next_certificate_tested": "boolean",
    "exchange_online_basic_auth": "bool",
}

# The CSV columns the frame keeps, typed as pyarrow parses them. `recipients` (a JSON array
# per row) is skipped: the count comes ready-made, and parsing JSON per row is what a
# million-row audit cannot afford. Dictionary types become pandas categoricals for free.
_DICT = pa.dictionary(pa.int32(), pa.string())
_CSV_TYPES: dict[str, pa.DataType] = {
    "id": pa.string(),
    "created_at": pa.timestamp("ns", tz="UTC"),
    "workspace_id": _DICT,
    "email_server_id": _DICT,
    "email_server_name": _DICT,
    "kind": _DICT,
    "status": _DICT,
    "recipient_count": pa.int64(),
    "error": pa.string(),
    "message_id": pa.string(),
    "stage": _DICT,
    "reply_code": pa.int64(),
    "history": pa.bool_(),
}
_RENAMED = {"email_server_id": "server_id", "email_server_name": "server_name"}
DELIVERY_COLUMNS = (
    "id",
    "created_at",
    "workspace",
    "workspace_id",
    "server_id",
    "server_name",
    "kind",
    "status",
    "recipient_count",
    "error",
    "message_id",
    "stage",
    "reply_code",
    "history",
)


def servers_frame(client: Client, workspaces: WorkspacesArg = None) -> pd.DataFrame:
    """One row per server per workspace, own and inherited.

    ``workspaces``: names or ids (or ``Workspace`` objects); by default every workspace
    the caller administers. An organization's server shows once in each workspace that
    inherits it; its usage counts are that workspace's. Columns: workspace, workspace_id,
    server_id, name, type (SMTP / Microsoft Graph), scope, inherited, key_setting,
    custom_actions, scheduler_jobs, used, last_test_ok (NA: never tested), last_test_at
    (UTC), certificate_days_left and certificate_expires_at (UTC; NA without a
    certificate), next_certificate_days_left, next_certificate_expires_at and
    next_certificate_tested (the certificate waiting to be promoted: whether it passed its
    test; NA without one), exchange_online_basic_auth (an SMTP server that signs in to
    Microsoft 365 with a password, which Microsoft turns off: move it to OAuth 2.0 or the
    Microsoft Graph type).
    """
    records = [
        _server_record(ws, server)
        for ws in _resolve(client, workspaces)
        for server in client.email_servers.list(ws.id)
    ]
    frame = pd.DataFrame.from_records(records, columns=list(_SERVER_DTYPES))
    for column in ("last_test_at", "certificate_expires_at", "next_certificate_expires_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.astype(_SERVER_DTYPES)


def _server_record(ws: Workspace, server: EmailServer) -> dict[str, object]:
    # Only named fields are copied, never the settings as a whole: a setting added to the
    # API later cannot slip into an audit (or a notebook output) unreviewed.
    settings = server.settings
    certificate, upcoming = settings.certificate_info, settings.next_certificate_info
    next_test = settings.next_certificate_test
    password_on_exchange = (
        isinstance(settings, SmtpSettingsView)
        and settings.authentication == "password"
        and bool(server.secrets_set.get("password"))
        and is_exchange_online(settings.server)
    )
    last = server.last_test
    return {
        "workspace": ws.name,
        "workspace_id": ws.id,
        "server_id": server.id,
        "name": server.name,
        "type": server.type_label,
        "scope": server.scope,
        "inherited": server.inherited,
        "key_setting": server.key_setting,
        "custom_actions": server.usage.custom_actions,
        "scheduler_jobs": server.usage.scheduler_jobs,
        "used": server.usage.total > 0,
        "last_test_ok": last.ok if last else None,
        "last_test_at": last.at if last else None,
        "certificate_days_left": certificate.days_left if certificate else None,
        "certificate_expires_at": certificate.not_after if certificate else None,
        "next_certificate_days_left": upcoming.days_left if upcoming else None,
        "next_certificate_expires_at": upcoming.not_after if upcoming else None,
        "next_certificate_tested": (bool(next_test and next_test.ok) if upcoming else None),
        "exchange_online_basic_auth": password_on_exchange,
    }


def usages_frame(client: Client, workspaces: WorkspacesArg = None) -> pd.DataFrame:
    """The custom actions and scheduler jobs of the workspaces, with the server each uses.

    Columns: kind (custom_action / scheduler_job), id, name, workspace, workspace_id,
    server_id, server_name.
    """
    records: list[dict[str, object]] = []
    for ws in _resolve(client, workspaces):
        names = {s.id: s.name for s in client.email_servers.list(ws.id)}
        for kind, items in (
            ("custom_action", client.custom_actions.list(ws.id)),
            ("scheduler_job", client.scheduler_jobs.list(ws.id)),
        ):
            records.extend(
                {
                    "kind": kind,
                    "id": item.id,
                    "name": item.name,
                    "workspace": ws.name,
                    "workspace_id": ws.id,
                    "server_id": item.email_server_id,
                    "server_name": names.get(item.email_server_id),
                }
                for item in items
            )
    columns = ["kind", "id", "name", "workspace", "workspace_id", "server_id", "server_name"]
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype({"kind": USAGE_KINDS} | {c: "str" for c in columns[1:]})


def deliveries_frame(
    client: Client,
    workspaces: WorkspacesArg = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    server_id: str | None = None,
) -> pd.DataFrame:
    """Every delivery of the workspaces in ``[since, until)``, oldest first.

    ``since``/``until`` need a time zone. Columns: id, created_at (UTC), workspace,
    workspace_id, server_id, server_name (the name when sent), kind, status (categorical:
    sent, deferred, failed; accepted and bounced in the seeded history), recipient_count,
    error (the server's reply text, NA when none), message_id (the message this attempt
    delivered, NA for connection tests and history), stage (the step the attempt ended
    at), reply_code (Int64, NA when none), history (True for the rows the demo seed
    invented: ``frame[~frame.history]`` is what actually happened).
    """
    tables: list[pa.Table] = []
    names: dict[str, str] = {}
    for ws in _resolve(client, workspaces):
        names[ws.id] = ws.name
        with client.deliveries.export(ws.id, server_id=server_id, since=since, until=until) as f:
            tables.append(_read_csv(f))
    table = pa.concat_tables(tables) if tables else _empty_deliveries()
    table = _restored(table, ("email_server_name", "error"))
    # self_destruct frees each Arrow column once converted: the peak stays near one copy.
    frame = table.to_pandas(self_destruct=True, split_blocks=True).rename(columns=_RENAMED)
    frame["workspace"] = frame["workspace_id"].map(names).astype("category")
    frame["kind"] = _with_known_categories(frame["kind"], DELIVERY_KINDS)
    frame["status"] = _with_known_categories(frame["status"], DELIVERY_STATUSES)
    frame["reply_code"] = frame["reply_code"].astype("Int64")  # NA, not a float NaN
    frame = frame[list(DELIVERY_COLUMNS)]
    if len(tables) > 1:  # each export is already oldest first
        frame = frame.sort_values(["created_at", "id"], kind="stable", ignore_index=True)
    return frame


def _read_csv(body: BinaryIO) -> pa.Table:
    # pyarrow.csv rather than pd.read_csv(engine="pyarrow"): pandas does not pass
    # newlines_in_values, and an error text with a line break that straddles one of
    # pyarrow's 1 MiB blocks then fails ("CSV parser got out of sync with chunker").
    return pa_csv.read_csv(
        body,
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=_CSV_TYPES,
            include_columns=list(_CSV_TYPES),
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def _restored(table: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """The original text of cells the service made inert for spreadsheets (see csv_cells),
    column-wise in Arrow: for a dictionary column only its distinct values."""
    pattern = "^" + NEUTRALISED.pattern
    for name in columns:
        chunks = []
        for chunk in table.column(name).chunks:
            if pa.types.is_dictionary(chunk.type):
                values = _restore_strings(chunk.dictionary, pattern)
                chunk = pa.DictionaryArray.from_arrays(chunk.indices, values)
            else:
                chunk = _restore_strings(chunk, pattern)
            chunks.append(chunk)
        column = pa.chunked_array(chunks, type=table.schema.field(name).type)
        table = table.set_column(table.schema.get_field_index(name), name, column)
    return table


def _restore_strings(values: pa.Array, pattern: str) -> pa.Array:
    marked = pc.match_substring_regex(values, pattern)
    if not pc.any(marked).as_py():
        return values
    return pc.if_else(marked, pc.utf8_slice_codeunits(values, 1), values)


def _empty_deliveries() -> pa.Table:
    return pa.table({name: pa.array([], type=t) for name, t in _CSV_TYPES.items()})


def _with_known_categories(column: pd.Series, known: tuple[str, ...]) -> pd.Series:
    # Fixed categories keep plots and group-bys stable between periods; a value this
    # version does not know is kept at the end, not turned into NaN.
    extra = sorted(set(column.cat.categories) - set(known))
    return column.cat.set_categories([*known, *extra])


# The audit-events frame's columns, in order, and their types (the categoricals are set
# with their known categories, plus any value this version does not know).
_AUDIT_DTYPES: dict[str, Any] = {
    "id": "int64",
    "occurred_at": UTC_NS,
    "workspace": "str",
    "workspace_id": "str",
    "server_id": "str",
    "actor_email": "str",
    "action": "category",
    "result": "category",
    "changed_fields": "str",
    "detail": "str",
}
AUDIT_EVENT_COLUMNS = tuple(_AUDIT_DTYPES)


def audit_events_frame(client: Client, workspaces: WorkspacesArg = None) -> pd.DataFrame:
    """The audit trail of the workspaces' servers, newest first: one row per event.

    ``workspaces``: names or ids (or ``Workspace`` objects); by default every workspace
    the caller administers (only Workspace Admins may read it: PermissionDenied otherwise).
    Columns: id, occurred_at (UTC), workspace, workspace_id, server_id (NA when the event
    names no server), actor_email, action (create / update / delete / test / send_test,
    categorical), result (ok / failed, categorical), changed_fields (the names of the
    changed fields, comma-joined and sorted, "" when none: never a value), detail.
    """
    records = [
        _audit_record(ws, event)
        for ws in _resolve(client, workspaces)
        for event in client.audit_events.list(ws.id)
    ]
    frame = pd.DataFrame.from_records(records, columns=list(AUDIT_EVENT_COLUMNS))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame = frame.astype(_AUDIT_DTYPES)  # "str" keeps a missing server or actor as NA
    frame["action"] = _with_known_categories(frame["action"], AUDIT_ACTIONS)
    frame["result"] = _with_known_categories(frame["result"], AUDIT_RESULTS)
    return frame.sort_values(
        ["occurred_at", "id"], ascending=False, kind="stable", ignore_index=True
    )


def _audit_record(ws: Workspace, event: AuditEvent) -> dict[str, object]:
    # Named fields only, as for the servers: nothing added to the API later slips in.
    return {
        "id": event.id,
        "occurred_at": event.occurred_at,
        "workspace": ws.name,
        "workspace_id": event.workspace_id or ws.id,
        "server_id": event.email_server_id,
        "actor_email": event.actor_email,
        "action": event.action,
        "result": event.result,
        "changed_fields": ",".join(sorted(event.changed_fields)),
        "detail": event.detail,
    }


def _resolve(client: Client, workspaces: WorkspacesArg) -> list[Workspace]:
    if workspaces is None:
        return client.workspaces.list()
    wanted = [workspaces] if isinstance(workspaces, str | Workspace) else list(workspaces)
    found: dict[str, Workspace] = {}
    for w in wanted:
        ws = w if isinstance(w, Workspace) else client.workspaces.get(w)
        found.setdefault(ws.id, ws)
    return list(found.values())
