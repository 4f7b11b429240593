"""Email servers of a workspace or an organization: what can be read, and the commands.

Network work (connection tests, test sends) and certificate loading never run inside a store
transaction: the transaction that read ends first, and a new one records the outcome. The
network work itself is prepared here (every check that can refuse it, a place among the tests
running at once) and run by the caller on the service's own pool (``ServiceContext.network``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import MappingProxyType, SimpleNamespace
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_core import to_json
from sqlalchemy import Row, Subquery, Text, and_, cast, delete, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ...connectivity.certificates import CertificateError, certificate_info, load_credential
from ...errors import (
    BadReplacement,
    InvalidSettings,
    NameTaken,
    NotFound,
    ReadOnlyServer,
    ServerInUse,
    StaleVersion,
    TestRequired,
)
from ...models import (
    SETTINGS_BY_TYPE,
    AuditEvent,
    ConnectionTestResult,
    DeliverySummary,
    EmailServer,
    EmailServerPatch,
    FieldError,
    GraphSettings,
    LastTest,
    Page,
    ReplacementChoice,
    SendTestResult,
    ServerCheck,
    SmtpSettings,
    Stage,
    Usage,
    UsageCounts,
    field_errors,
)
from ...models.servers import (
    DERIVED_SETTINGS,
    FIELD_LABELS,
    NEXT,
    NEXT_CERTIFICATE_FIELDS,
    NEXT_CERTIFICATE_STORED,
    CertificateInfo,
    GraphServerSpec,
    GraphSettingsView,
    SmtpServerSpec,
    SmtpSettingsView,
    moved_endpoint_fields,
    other_sign_in_fields,
    reenter_secret_message,
    unreadable_secret_message,
)
from .. import audit_log
from ..connections import run_connection_test, send_test_message
from ..context import ServiceContext
from ..listed_documents import ListedDocuments
from ..network_work import Slot
from ..receipts import Receipt, settings_digest
from ..scope import Caller, Scope
from ..secrets import SecretKeyError
from ..security import new_id
from ..store.tables import (
    CustomActionRow,
    DeliveryRow,
    EmailServerRow,
    Organization,
    SchedulerJobRow,
    ServerCheckRow,
    SpentReceipt,
    WorkspaceRow,
    stored_time,
)
from ..unreadable import SEALED_HEAD, UnreadableSecrets
from .health import NO_DELIVERIES, CheckSummary, day_of_deliveries, health_by_server, health_of
from .messages import move_queued_messages
from .next_certificate import NEXT_INFO, NEXT_TEST, test_of_next, with_next_test_kept
from .replacements import Target, choices, move_per_workspace, targets_per_workspace
from .senders import usable_server
from .server_activity import audit_page, delivery_summary
from .server_checks import checks_page, last_test_record, record_check, test_summary

Spec = SmtpServerSpec | GraphServerSpec
AnySettings = SmtpSettings | GraphSettings
SenderModel = type[CustomActionRow] | type[SchedulerJobRow]
Progress = Callable[[Stage], None]
T = TypeVar("T")

# Shown with the settings, derived from the certificates; not settings one can write.
DERIVED_FIELDS = DERIVED_SETTINGS
#: Found out by a passing test, kept until the settings change: how Use SSL is met.
TLS_MODE = "tls_mode"


@dataclass
class Prepared(Generic[T]):
    """Network work that passed every check and holds a place among the tests running at once.

    Run it (``work``) on ``ServiceContext.network`` with ``slot``; the place is freed when it
    ends. Nothing of the request's store session is used by it.
    """

    slot: Slot
    work: Callable[[], T]


def _now() -> datetime:
    return datetime.now(UTC)


def test_record(
    ok: bool,
    elapsed_ms: int,
    detail: str,
    at: datetime | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """A server's ``last_test`` as stored."""
    return last_test_record(ok, elapsed_ms, detail, at or _now(), source)


def _moved_detail(
    usages: int, messages: int, targets: Sequence[Target], default: EmailServerRow | None
) -> str:
    """The audit trail's words for where a deleted server's usages went."""
    where = [f"{t.workspace_name} → '{t.server.name}'" for t in targets]
    if default is not None:
        where.append(f"the rest → '{default.name}'" if where else f"'{default.name}'")
    if not where:
        return ""
    joined = ", ".join(where)
    moved = f"{usages} usage(s) and {messages} queued message(s) moved"
    return f"{moved}: {joined}" if targets else f"{moved} to {joined}"


# ------------------------------------------------------------------ reading


def _visible(scope: Scope) -> Any:
    org_own = and_(
        EmailServerRow.organization_id == scope.organization_id,
        EmailServerRow.workspace_id.is_(None),
    )
    if scope.workspace_id is None:
        return org_own
    return or_(EmailServerRow.workspace_id == scope.workspace_id, org_own)


def _usage_filter(scope: Scope, model: SenderModel) -> Any:
    # From a workspace, only that workspace's usages are visible, also of inherited servers.
    return model.workspace_id == scope.workspace_id if scope.workspace_id else True


def _usages_per_server(scope: Scope, model: SenderModel) -> Subquery:
    """Usage counts of the visible servers, as a table to join: one statement lists them all."""
    visible = select(EmailServerRow.id).where(_visible(scope))
    return (
        select(model.email_server_id, func.count().label("n"))
        .where(model.email_server_id.in_(visible), _usage_filter(scope, model))
        .group_by(model.email_server_id)
        .subquery()
    )


# What a listing shows: not the sealed secrets, and plain rows rather than ORM objects that
# the session would track (a workspace may list a thousand servers). The JSON columns and the
# times come as their stored text: a row listed before needs no decoding (see ListedDocuments).
_STORED = (
    EmailServerRow.id,
    EmailServerRow.workspace_id,
    EmailServerRow.organization_id,
    EmailServerRow.type,
    EmailServerRow.name,
    EmailServerRow.version,
    cast(EmailServerRow.settings, Text).label("settings"),
    cast(EmailServerRow.secrets_set, Text).label("secrets_set"),
    cast(EmailServerRow.created_at, Text).label("created_at"),
    cast(EmailServerRow.updated_at, Text).label("updated_at"),
    cast(EmailServerRow.last_test, Text).label("last_test"),
    EmailServerRow.fallback_server_id,
    EmailServerRow.max_per_minute,
)
#: Then what the listing adds (read by position: 1,100 rows' attribute lookups add up).
_STORED_COLUMNS = len(_STORED)
_LISTED = (
    *_STORED,
    SEALED_HEAD,
    cast(EmailServerRow.last_checked_at, Text).label("last_checked_at"),
    EmailServerRow.last_check_detail,
    EmailServerRow.failed_checks,
    cast(EmailServerRow.failing_since, Text).label("failing_since"),
)


def _stored_document(row: EmailServerRow | Row[Any] | SimpleNamespace) -> dict[str, Any]:
    """What a server's document holds of its row alone, in the values pydantic would hold."""
    last_test = row.last_test
    if last_test:
        last_test = {
            **last_test,
            "at": datetime.fromisoformat(last_test["at"]),
            "source": last_test.get("source"),  # tests stored before checks were kept: none
        }
    return {
        "id": row.id,
        "workspace_id": row.workspace_id,
        "organization_id": row.organization_id,
        "scope": "workspace" if row.workspace_id else "organization",
        "type": row.type,
        "name": row.name,
        "version": row.version,
        "settings": _shown_settings(row.type, row.settings),
        "secrets_set": row.secrets_set,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "last_test": last_test,
        "fallback_server_id": row.fallback_server_id,
        "max_per_minute": row.max_per_minute,
    }


def _listed_part(
    scope: Scope,
    workspace_id: str | None,
    custom_actions: int,
    scheduler_jobs: int,
    secrets_unreadable: Sequence[str],
    health: dict[str, Any] | None,
) -> dict[str, Any]:
    """What a server's document holds beside its row: where it is seen from, and now."""
    return {
        "inherited": scope.workspace_id is not None and workspace_id is None,
        "secrets_unreadable": list(secrets_unreadable),
        "usage": {"custom_actions": custom_actions, "scheduler_jobs": scheduler_jobs},
        "health": health,
    }


def _document(
    row: EmailServerRow | Row[Any],
    scope: Scope,
    custom_actions: int,
    scheduler_jobs: int,
    secrets_unreadable: Sequence[str] = (),
    health: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A stored server as EmailServer shows it, in the values pydantic would hold."""
    return {
        **_stored_document(row),
        **_listed_part(
            scope, row.workspace_id, custom_actions, scheduler_jobs, secrets_unreadable, health
        ),
    }


def _decoded(row: Row[Any]) -> SimpleNamespace:
    """A listed row with its JSON columns and times decoded from their stored text."""
    values = row._asdict()
    for name in ("settings", "secrets_set", "last_test"):
        text = values[name]
        values[name] = json.loads(text) if text is not None else None
    values["secrets_set"] = values["secrets_set"] or {}
    for name in ("created_at", "updated_at"):
        values[name] = stored_time(values[name])
    return SimpleNamespace(**values)


def _stored_json(row: Row[Any]) -> bytes:
    """The stored part of a listed row's document, as JSON members without braces."""
    return to_json(_stored_document(_decoded(row)))[1:-1]


NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})


def _with_certificate(settings_text: str) -> bool:
    # A certificate's days left change with the clock: such a row is made afresh each time.
    return "not_after" in settings_text


#: What a server's settings show, by type: the views' fields, nothing else.
_SHOWN_SETTINGS = {
    "smtp": tuple(SmtpSettingsView.model_fields),
    "microsoft_graph": tuple(GraphSettingsView.model_fields),
}
_SHOWN_CERTIFICATE = tuple(CertificateInfo.model_fields)


_SHOWN_TEST = tuple(LastTest.model_fields)


def _shown_settings(server_type: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Only the view's fields leave the service, whatever else a row holds; days left change
    every day, so they are derived when read, not when saved. A test of the next certificate
    shows only while it is of the next certificate held now."""
    shown = {key: stored[key] for key in _SHOWN_SETTINGS[server_type] if key in stored}
    for key in ("certificate_info", NEXT_INFO):
        info = shown.get(key)
        if info:
            not_after = datetime.fromisoformat(info["not_after"])
            shown[key] = {
                **{name: info[name] for name in _SHOWN_CERTIFICATE if name in info},
                "not_after": not_after,
                "days_left": math.floor((not_after - _now()).total_seconds() / 86400),
            }
    if NEXT_INFO in shown:  # with or without a test: as the view shows it
        test = test_of_next(stored)
        shown[NEXT_TEST] = test and {
            **{name: test[name] for name in _SHOWN_TEST if name in test},
            "at": datetime.fromisoformat(test["at"]),
        }
    return shown


def to_model(
    row: EmailServerRow | Row[Any],
    scope: Scope,
    usage: UsageCounts,
    secrets_unreadable: Sequence[str] = (),
    health: dict[str, Any] | None = None,
) -> EmailServer:
    return EmailServer.model_validate(
        _document(
            row, scope, usage.custom_actions, usage.scheduler_jobs, secrets_unreadable, health
        )
    )


def _stored_secrets(
    ctx: ServiceContext, row: EmailServerRow, given: Mapping[str, Any]
) -> dict[str, str]:
    """The row's secrets; when the key cannot open them, none, as long as every one of them
    is given anew (the repair path), else a field error per secret to enter again."""
    try:
        return ctx.box.open(row.secrets_sealed)
    except SecretKeyError:
        unreadable = [n for n, stored in (row.secrets_set or {}).items() if stored]
        missing = [n for n in unreadable if n not in given]
        if missing:
            raise InvalidSettings(
                field_errors=[
                    FieldError(field=n, message=unreadable_secret_message(n)) for n in missing
                ]
            ) from None
        return {}


@dataclass
class EmailServerQueries:
    """What a scope's email servers look like; reads only."""

    session: Session
    scope: Scope
    #: Marks the servers whose stored secrets the key cannot open; None: none are marked.
    unreadable: UnreadableSecrets | None = None
    #: The listed rows' stored parts as JSON, made before; None: made afresh each call.
    listed: ListedDocuments | None = None

    def list_json(self) -> bytes:
        """The servers the scope sees, as the JSON of ``list[EmailServer]``, inherited first.

        Serialized straight from the stored documents, which were validated when written: the
        same documents that ``to_model`` validates for one server (a test holds the two to one
        answer). Validating 1,100 of them again and dumping the models cost as much as the
        query itself; each row's stored part is made once for as long as its stored values
        stay the same (``ListedDocuments``).
        """
        scope = self.scope
        actions = _usages_per_server(scope, CustomActionRow)
        jobs = _usages_per_server(scope, SchedulerJobRow)
        # Through the connection: the rows as Core returns them, without the ORM's result
        # processing (a sixth of a 1,100-server listing's time).
        result = self.session.connection().execute(
            select(
                *_LISTED,
                func.coalesce(actions.c.n, 0).label("custom_actions"),
                func.coalesce(jobs.c.n, 0).label("scheduler_jobs"),
            )
            .outerjoin(actions, actions.c.email_server_id == EmailServerRow.id)
            .outerjoin(jobs, jobs.c.email_server_id == EmailServerRow.id)
            .where(_visible(scope))
            .order_by(EmailServerRow.workspace_id.is_not(None), EmailServerRow.name_key)
        )
        rows = result.all()
        marked = self.unreadable.of_rows(self.session, rows) if self.unreadable else {}
        # Only a certificate's settings count for health (and its row is made afresh anyway).
        certificates = {r.id: json.loads(r.settings) for r in rows if _with_certificate(r.settings)}
        now = _now()
        days = day_of_deliveries(
            self.session, select(EmailServerRow.id).where(_visible(scope)), now
        )
        listed = self.listed if self.listed is not None else ListedDocuments()
        documents = []
        for r in rows:
            stored = r[:_STORED_COLUMNS]
            server_id, workspace_id = stored[0], stored[1]
            _, last_at, last_detail, failed, failing_since, actions, jobs = r[_STORED_COLUMNS:]
            part = listed.get(server_id, stored)
            if part is None:
                part = _stored_json(r)
                if server_id not in certificates:
                    listed.put(server_id, stored, part)
            checks = CheckSummary(
                stored_time(last_at),
                last_detail,
                failed,
                stored_time(failing_since),
            )
            settings = certificates.get(server_id, NO_SETTINGS)
            health = health_of(settings, checks, days.get(server_id, NO_DELIVERIES), now)
            beside = _listed_part(
                scope, workspace_id, actions, jobs, marked.get(server_id, ()), health
            )
            documents.append(b"{%b,%b" % (part, to_json(beside)[1:]))
        return b"[" + b",".join(documents) + b"]"

    def get(self, server_id: str) -> EmailServer:
        return self.model(self.visible_row(server_id))

    def model(self, row: EmailServerRow) -> EmailServer:
        fields = self.unreadable.of_row(row) if self.unreadable else ()
        health = health_by_server(
            self.session, {row.id: (row.settings, CheckSummary.of(row))}, [row.id], _now()
        )
        return to_model(
            row, self.scope, self._usage_counts([row.id])[row.id], fields, health[row.id]
        )

    def checks(self, server_id: str, *, cursor: str | None, limit: int) -> Page[ServerCheck]:
        self.visible_row(server_id)
        return checks_page(self.session, server_id, cursor=cursor, limit=limit)

    def delivery_summary(
        self, server_id: str, *, since: datetime, failures: int
    ) -> DeliverySummary:
        self.visible_row(server_id)
        return delivery_summary(self.session, self.scope, server_id, since=since, failures=failures)

    def audit_events(self, server_id: str, *, cursor: str | None, limit: int) -> Page[AuditEvent]:
        self.visible_row(server_id)
        return audit_page(self.session, self.scope, server_id, cursor=cursor, limit=limit)

    def usages(self, server_id: str) -> list[Usage]:
        self.visible_row(server_id)
        return self.usages_of(server_id, self.scope)

    def usages_of(self, server_id: str, scope: Scope) -> list[Usage]:
        out: list[Usage] = []
        senders: tuple[tuple[SenderModel, str], ...] = (
            (CustomActionRow, "custom_action"),
            (SchedulerJobRow, "scheduler_job"),
        )
        for model, kind in senders:
            rows = self.session.execute(
                select(model.id, model.name)
                .where(model.email_server_id == server_id, _usage_filter(scope, model))
                .order_by(model.name)
            )
            out.extend(Usage.model_validate({"kind": kind, "id": i, "name": n}) for i, n in rows)
        out.extend(self._routing_usages(server_id, scope))
        return out

    def _routing_usages(self, server_id: str, scope: Scope) -> list[Usage]:
        """Notifications of workspaces, the organization's default, other servers' fallback."""
        found: list[tuple[str, str, str]] = []
        workspaces = select(WorkspaceRow.id, WorkspaceRow.name).where(
            WorkspaceRow.notifications_server_id == server_id,
            WorkspaceRow.organization_id == scope.organization_id,
        )
        if scope.workspace_id:
            workspaces = workspaces.where(WorkspaceRow.id == scope.workspace_id)
        found += [("notifications", i, n) for i, n in self.session.execute(workspaces)]
        if scope.workspace_id is None:
            organizations = select(Organization.id, Organization.name).where(
                Organization.id == scope.organization_id,
                Organization.default_server_id == server_id,
            )
            found += [("default_server", i, n) for i, n in self.session.execute(organizations)]
        fallbacks = select(EmailServerRow.id, EmailServerRow.name).where(
            EmailServerRow.fallback_server_id == server_id,
            EmailServerRow.id != server_id,
            _visible(scope)
            if scope.workspace_id
            else EmailServerRow.organization_id == scope.organization_id,
        )
        found += [("fallback", i, n) for i, n in self.session.execute(fallbacks)]
        return [Usage.model_validate({"kind": k, "id": i, "name": n}) for k, i, n in found]

    def visible_row(self, server_id: str, *, for_update: bool = False) -> EmailServerRow:
        return self._visible_row(self.scope, server_id, for_update=for_update)

    def own_row(self, server_id: str, *, for_update: bool = False) -> EmailServerRow:
        row = self.visible_row(server_id, for_update=for_update)
        if self.scope.workspace_id is not None and row.workspace_id is None:
            raise ReadOnlyServer(
                f"'{row.name}' is inherited from the Organization and is read-only here; only "
                "the Organization's Admin or IT Delegates can change or delete it."
            )
        return row

    def _visible_row(
        self, scope: Scope, server_id: str, *, for_update: bool = False
    ) -> EmailServerRow:
        query = select(EmailServerRow).where(EmailServerRow.id == server_id, _visible(scope))
        if for_update:
            # Fresh values under the lock, not the ones this session read earlier.
            query = query.with_for_update().execution_options(populate_existing=True)
        row = self.session.scalar(query)
        if row is None:
            raise NotFound(f"There is no email server '{server_id}' in {scope.label}.")
        return row

    def check_name_free(self, name: str, *, exclude_id: str | None = None) -> None:
        scope = self.scope
        clash = [EmailServerRow.organization_id == scope.organization_id]
        if scope.workspace_id is not None:
            clash.append(_visible(scope))
        # An organization's server is seen by all its workspaces: it must not clash with any.
        query = select(EmailServerRow).where(*clash, EmailServerRow.name_key == name.casefold())
        if exclude_id:
            query = query.where(EmailServerRow.id != exclude_id)
        other = self.session.scalar(query.limit(1))
        if other is None:
            return
        if other.workspace_id is None:
            where = (
                "inherited from the Organization" if scope.workspace_id else "in the Organization"
            )
        else:
            where = f"in {scope.label}" if scope.workspace_id else "in one of its workspaces"
        raise NameTaken(
            f"A server named '{other.name}' already exists ({where}); choose another name."
        )

    def _usage_counts(self, ids: Sequence[str]) -> dict[str, UsageCounts]:
        counts = {i: UsageCounts() for i in ids}
        if not ids:
            return counts
        for model, attr in (
            (CustomActionRow, "custom_actions"),
            (SchedulerJobRow, "scheduler_jobs"),
        ):
            rows = self.session.execute(
                select(model.email_server_id, func.count())
                .where(model.email_server_id.in_(ids), _usage_filter(self.scope, model))
                .group_by(model.email_server_id)
            )
            for server_id, n in rows:
                setattr(counts[server_id], attr, n)
        return counts


# ------------------------------------------------------------------ settings and secrets


def _validate(server_type: str, values: dict[str, Any]) -> AnySettings:
    try:
        return SETTINGS_BY_TYPE[server_type].model_validate(values)
    except ValidationError as exc:
        raise InvalidSettings(field_errors=field_errors(exc)) from None


def _wire(settings: AnySettings) -> dict[str, Any]:
    return {**settings.public(), **settings.secrets()}


def _stored_public(row: EmailServerRow) -> dict[str, Any]:
    # The TLS mode a test found out is not a setting anyone typed: a change of the settings,
    # or a test of new ones, starts without it.
    return {k: v for k, v in row.settings.items() if k not in (*DERIVED_FIELDS, TLS_MODE)}


def stored_server_settings(ctx: ServiceContext, row: EmailServerRow) -> AnySettings:
    """The server's settings as stored, secrets opened: what a test of the stored server (a
    test send, the worker's scheduled check) uses. Raises InvalidSettings when a stored
    secret cannot be opened (it must be entered again)."""
    stored = {**_stored_public(row), **_stored_secrets(ctx, row, {})}
    if row.settings.get(TLS_MODE):  # sending uses what the test found out
        stored[TLS_MODE] = row.settings[TLS_MODE]
    return _validate(row.type, stored)


def _require_certificate(settings: AnySettings) -> None:
    if settings.uses_certificate and settings.certificate is None:
        raise InvalidSettings(
            field_errors=[
                FieldError(
                    field="certificate",
                    message="Upload the certificate: the .pfx (or .pem) with its private key.",
                )
            ]
        )


def _refuse_next_certificate(settings: AnySettings) -> None:
    """A next certificate is uploaded to a stored server (Update), never tested or added with
    new settings: those sign in with the Certificate."""
    given = [f for f in NEXT_CERTIFICATE_FIELDS if getattr(settings, f) is not None]
    if given:
        raise InvalidSettings(
            field_errors=[
                FieldError(
                    field=f,
                    message=f"{FIELD_LABELS[f]} is uploaded in the server's Update once the "
                    "server is added (then tested and promoted there); a connection test and a "
                    "new server use the Certificate: remove it here.",
                )
                for f in given
            ]
        )


def public_with_derived(settings: AnySettings) -> dict[str, Any]:
    """The settings to store in clear: no secret, plus what may be shown of the certificate.

    Loading the certificate here is what makes a wrong password, a wrong alias, an expired or
    mismatched certificate fail when the settings are saved, not when mail is sent. It can cost
    CPU (key derivation): callers run it outside any store transaction.
    """
    public = settings.public()
    if not settings.uses_certificate:
        return public
    for prefix in ("", NEXT):  # the current certificate, then the next one: the same checks
        info = _certificate_info(settings, prefix)
        if info is not None:
            public[f"{prefix}certificate_info"] = info.model_dump(mode="json")
    current, upcoming = public.get("certificate_info"), public.get(NEXT_INFO)
    if current and upcoming and current["thumbprint_sha256"] == upcoming["thumbprint_sha256"]:
        raise InvalidSettings(
            field_errors=[
                FieldError(
                    field="next_certificate",
                    message="The Next Certificate is the certificate in use now (thumbprint "
                    f"{current['thumbprint_sha1']}); upload the renewed certificate instead.",
                )
            ]
        )
    return public


def _certificate_info(settings: AnySettings, prefix: str) -> CertificateInfo | None:
    """Load one certificate of the settings, the current one (``prefix`` "") or the next
    one (``NEXT``), and say what may be shown of it; None when that one is not set."""
    data = getattr(settings, f"{prefix}certificate")
    if data is None:
        return None
    password = getattr(settings, f"{prefix}certificate_password")
    try:
        loaded = load_credential(
            data.get_secret_value(),
            password=password.get_secret_value() if password else None,
            alias=getattr(settings, f"{prefix}certificate_alias"),
        )
    except CertificateError as exc:
        message = f"Next Certificate: {exc}" if prefix else str(exc)
        raise InvalidSettings(
            field_errors=[FieldError(field=prefix + exc.field, message=message)]
        ) from None
    return certificate_info(loaded)


def _reenter_missing_secrets(
    row: EmailServerRow,
    given: Mapping[str, Any],
    moved: Sequence[str],
    settings: AnySettings,
    unused: Sequence[str] = (),
) -> None:
    # Which secrets are stored is known without decrypting them. Those of the other way to
    # sign in are left behind, not carried: they need not be entered again.
    unused = (
        *unused,
        *other_sign_in_fields(row.type, getattr(settings, "authentication", None)),
    )
    missing = [
        name
        for name, stored in row.secrets_set.items()
        if stored and name not in given and name not in unused
    ]
    if moved and missing:
        raise InvalidSettings(
            field_errors=[
                FieldError(field=name, message=reenter_secret_message(name, moved))
                for name in missing
            ]
        )


def _keep_secrets_with_their_server(
    row: EmailServerRow, settings: AnySettings, given: Mapping[str, Any]
) -> None:
    """A saved change may not carry a stored secret to another server, account or tenant."""
    _reenter_missing_secrets(
        row, given, moved_endpoint_fields(row.type, row.settings, settings.public()), settings
    )


def _send_secrets_only_as_stored(
    row: EmailServerRow, settings: AnySettings, given: Mapping[str, Any]
) -> None:
    """A test sends a stored secret only with exactly the stored settings: endpoint, account,
    sender and TLS mode. Otherwise a caller could test an inherited server's password with
    its own Sender Address, or without TLS."""
    stored = _stored_public(row)
    new = settings.public()
    moved = [name for name in new if stored.get(name) != new[name]]
    # The next certificate goes with no connection test: it need not be entered again.
    _reenter_missing_secrets(row, given, moved, settings, NEXT_CERTIFICATE_FIELDS)


# ------------------------------------------------------------------ the commands


@dataclass
class EmailServerService:
    """The email servers of one scope, as one caller may change them.

    ``caller`` is None only for the service itself (the demo seed): no receipt, no audit trail.
    """

    ctx: ServiceContext
    session: Session
    scope: Scope
    caller: Caller | None = field(default=None)

    @cached_property
    def queries(self) -> EmailServerQueries:
        return EmailServerQueries(self.session, self.scope, self.ctx.unreadable, self.ctx.listed)

    @property
    def _actor(self) -> Caller:
        if self.caller is None:
            raise RuntimeError("this command needs a caller")
        return self.caller

    def audit(self, action: str, *, session: Session | None = None, **kwargs: Any) -> None:
        if self.caller is not None:
            audit_log.record(session or self.session, self.caller, self.scope, action, **kwargs)

    def end_transaction(self) -> None:
        """End what the request has read so far (nothing was written): the slow step that
        follows (network, certificate) holds no transaction and, on SQLite, no write lock.
        A commit rather than a rollback keeps the loaded rows (the caller) usable."""
        self.session.commit()

    # ---------------------------------------------------------------- test

    def count_attempt(self) -> None:
        """Every attempt counts, before anything can refuse or fail it."""
        self.ctx.test_limiter.hit(self._actor.id, "connection tests and test messages")

    def take_slot(self) -> Slot:
        return self.ctx.network.take(self.scope.own_key, self.scope.label)

    def prepare_test(
        self, spec: Spec, *, progress: Progress | None = None
    ) -> Prepared[ConnectionTestResult]:
        """Every check that can refuse the test, now; the test itself (and its record) is the
        work, which reports each stage to ``progress`` as the stage ends.

        A streamed answer calls this before its first byte, so refusals stay plain 4xx answers.
        """
        self.count_attempt()
        _refuse_next_certificate(spec.settings)
        values = _wire(spec.settings)
        record_on: str | None = None
        if spec.server_id:
            row = self.queries.visible_row(spec.server_id)
            if row.type != spec.type:
                raise InvalidSettings(
                    field_errors=[
                        FieldError(field="type", message=f"'{row.name}' is a {row.type} server.")
                    ]
                )
            stored_secrets = _stored_secrets(self.ctx, row, spec.settings.secrets())
            # The next certificate has a test of its own (``CertificateRollover``).
            unused = (
                *other_sign_in_fields(row.type, values.get("authentication")),
                *NEXT_CERTIFICATE_FIELDS,
            )
            stored_secrets = {k: v for k, v in stored_secrets.items() if k not in unused}
            settings = _validate(spec.type, {**stored_secrets, **values})
            _send_secrets_only_as_stored(row, settings, spec.settings.secrets())
            # Only a test of the server as stored, by its own scope, is that server's record.
            stored_public = {
                k: v for k, v in _stored_public(row).items() if k not in NEXT_CERTIFICATE_STORED
            }
            as_stored = _wire(settings) == {**stored_public, **stored_secrets}
            if self._owns(row) and as_stored:
                record_on = row.id
        else:
            settings = _validate(spec.type, values)
        _require_certificate(settings)
        server_id = spec.server_id
        self.end_transaction()  # before any network I/O
        slot = self.take_slot()
        return Prepared(
            slot, lambda: self._run_and_record(spec.type, settings, server_id, record_on, progress)
        )

    def prepare_stored_test(
        self, server_id: str, *, progress: Progress | None = None
    ) -> Prepared[ConnectionTestResult]:
        """Test now: the server's settings and secrets as stored, as the worker's scheduled
        check tests them. Kept as the server's check (its health follows) when this scope owns
        the server; an inherited one's record is its Organization's. No receipt: nothing is
        added with it."""
        self.count_attempt()
        row = self.queries.visible_row(server_id)
        settings = stored_server_settings(self.ctx, row)
        _require_certificate(settings)
        server_type, record_on = row.type, row.id if self._owns(row) else None
        self.end_transaction()  # before any network I/O
        slot = self.take_slot()
        return Prepared(
            slot,
            lambda: self._run_and_record(
                server_type, settings, server_id, record_on, progress, receipt=False
            ),
        )

    def _owns(self, row: EmailServerRow) -> bool:
        """Whether this scope manages the server (an organization, or a workspace's own)."""
        return self.scope.workspace_id is None or row.workspace_id is not None

    def _run_and_record(
        self,
        server_type: str,
        settings: AnySettings,
        server_id: str | None,
        record_on: str | None,
        progress: Progress | None,
        *,
        receipt: bool = True,
    ) -> ConnectionTestResult:
        found: list[str] = []
        result = run_connection_test(
            self.ctx, settings, progress=progress, on_tls_mode=found.append
        )
        tls_mode = found[0] if found and result.ok else None
        if result.ok and receipt:
            result.test_token = self.ctx.receipts.issue(
                digest=settings_digest(self.scope.own_key, server_type, _wire(settings)),
                user_id=self._actor.id,
                elapsed_ms=result.elapsed_ms,
                tls_mode=tls_mode,
            )
        summary = test_summary(result)
        # A session of its own: the request's may be closing in another thread by now.
        with self.ctx.sessions() as session:
            if record_on is not None:
                record_check(session, record_on, result, "manual")
                stored = session.get(EmailServerRow, record_on) if tls_mode else None
                if stored is not None:
                    # Sending through this server need not probe again.
                    session.execute(
                        update(EmailServerRow)
                        .where(EmailServerRow.id == record_on)
                        .values(settings={**stored.settings, TLS_MODE: tls_mode})
                        .execution_options(synchronize_session=False)
                    )
            self.audit(
                "test",
                server_id=server_id,
                result="ok" if result.ok else "failed",
                detail=f"{server_type} test {summary}",
                session=session,
            )
            session.commit()
        return result

    # ---------------------------------------------------------------- create

    def create_tested(self, spec: Spec) -> EmailServer:
        """Add a server whose exact settings passed a test: ``spec.test_token`` is the receipt,
        spent by this create (a second create with it is refused)."""
        settings = spec.settings
        _require_certificate(settings)
        _refuse_next_certificate(settings)
        self.queries.check_name_free(spec.name)
        receipt = self.ctx.receipts.verify(
            spec.test_token,
            digest=settings_digest(self.scope.own_key, spec.type, _wire(settings)),
            user_id=self._actor.id,
        )
        if receipt.tls_mode is not None and isinstance(settings, SmtpSettings):
            # What the test found out is stored with the server: sending does not probe again.
            settings = settings.model_copy(update={TLS_MODE: receipt.tls_mode})
        return self._create(
            spec.type,
            spec.name,
            settings,
            last_test=test_record(
                True, receipt.elapsed_ms, "passed", receipt.tested_at, source="manual"
            ),
            receipt=receipt,
        )

    def create(
        self,
        server_type: str,
        name: str,
        settings: AnySettings,
        *,
        last_test: dict[str, Any] | None,
        server_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> EmailServer:
        """Add a server without a test receipt: for the service itself (the demo seed), never
        reachable over HTTP, whose route calls ``create_tested``."""
        _require_certificate(settings)
        self.queries.check_name_free(name)
        return self._create(
            server_type,
            name,
            settings,
            last_test=last_test,
            server_id=server_id,
            times=(created_at, updated_at),
        )

    def _create(
        self,
        server_type: str,
        name: str,
        settings: AnySettings,
        *,
        last_test: dict[str, Any] | None,
        receipt: Receipt | None = None,
        server_id: str | None = None,
        times: tuple[datetime | None, datetime | None] = (None, None),
    ) -> EmailServer:
        self.end_transaction()
        public = public_with_derived(settings)  # may be slow: outside any transaction
        if receipt is not None:
            self._spend(receipt)
        secrets = settings.secrets()
        now = _now()
        row = EmailServerRow(
            id=server_id or new_id("srv"),
            organization_id=self.scope.organization_id,
            workspace_id=self.scope.workspace_id,
            scope_key=self.scope.own_key,
            type=server_type,
            name=name,
            name_key=name.casefold(),
            settings=public,
            secrets_sealed=self.ctx.box.seal(secrets) if secrets else None,
            secrets_set={f: f in secrets for f in settings.used_secret_fields()},
            created_at=times[0] or now,
            updated_at=times[1] or times[0] or now,
            last_test=last_test,
        )
        self.session.add(row)
        if receipt is not None:  # the passing test that added it is its first kept check
            row.last_checked_at, row.last_check_detail = receipt.tested_at, "passed"
            self.session.add(
                ServerCheckRow(
                    id=new_id("chk"),
                    email_server_id=row.id,
                    checked_at=receipt.tested_at,
                    ok=True,
                    elapsed_ms=receipt.elapsed_ms,
                    detail="passed",
                    source="manual",
                )
            )
        self.audit(
            "create",
            server_id=row.id,
            changed_fields=["name", "type", *settings.public(), *secrets],
        )
        self._commit_or_name_taken(name)
        return self.queries.model(row)

    def _spend(self, receipt: Receipt) -> None:
        """Mark the receipt used, in the create's transaction: a second create with it (here or
        in another process) fails on the key, and nothing of it is kept."""
        # Receipts older than their life are refused anyway: their ids need no keeping.
        horizon = _now() - timedelta(seconds=2 * self.ctx.receipts.ttl_s + 60)
        self.session.execute(delete(SpentReceipt).where(SpentReceipt.spent_at < horizon))
        self.session.add(SpentReceipt(id=receipt.id, spent_at=_now()))
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise TestRequired(
                "This passing test already added a server; run Test Connection again to add "
                "another."
            ) from None

    def _commit_or_name_taken(self, name: str) -> None:
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise NameTaken(
                f"A server named '{name}' already exists; choose another name."
            ) from None

    # ---------------------------------------------------------------- update

    def update(self, server_id: str, patch: EmailServerPatch, expected_version: int) -> EmailServer:
        """Partial update of the version the caller read; omitted fields and secrets stay."""
        row = self.queries.own_row(server_id)
        self.check_version(row, expected_version)
        given = {k: v for k, v in patch.settings.items() if v is not None}
        stored = {**_stored_public(row), **_stored_secrets(self.ctx, row, given)}
        authentication = given.get("authentication", stored.get("authentication"))
        left = other_sign_in_fields(row.type, authentication)
        stored = {k: v for k, v in stored.items() if k not in left}
        settings = _validate(row.type, {**stored, **given})
        _keep_secrets_with_their_server(row, settings, given)
        changed = sorted(
            k for k, v in _wire(settings).items() if k in patch.settings and stored.get(k) != v
        )
        renamed = patch.name is not None and patch.name != row.name
        if renamed and patch.name is not None:
            self.queries.check_name_free(patch.name, exclude_id=row.id)
            changed.append("name")
        routing = self._routing_changes(row, patch)
        public: dict[str, Any] | None = None
        if changed:
            self.end_transaction()
            public = public_with_derived(settings)  # may be slow: outside any transaction
            # Changed in between? The version says so, and nothing is written.
            row = self.queries.own_row(server_id, for_update=True)
            self.check_version(row, expected_version)
        else:
            row = self.queries.own_row(server_id, for_update=True)
        if renamed and patch.name is not None:
            row.name, row.name_key = patch.name, patch.name.casefold()
        if routing:
            for key, value in routing.items():
                setattr(row, key, value)
            row.updated_at = _now()
            if public is None:
                self.audit("update", server_id=row.id, changed_fields=sorted(routing))
        if public is not None:
            self.write_settings(row, settings, self._kept_derived(row, public, changed))
            self.audit("update", server_id=row.id, changed_fields=changed + sorted(routing))
        self.commit_change(row)
        return self.queries.model(row)

    def commit_change(self, row: EmailServerRow) -> None:
        """Commit the change of a locked row: another save at the same time is StaleVersion."""
        try:
            self._commit_or_name_taken(row.name)
        except StaleDataError:
            self.session.rollback()
            raise StaleVersion(
                f"'{row.name}' was changed by someone else at the same time; reload it and make "
                "your change again."
            ) from None

    def write_settings(
        self, row: EmailServerRow, settings: AnySettings, public: dict[str, Any]
    ) -> None:
        """Store new settings on a locked row: ``public`` in the clear (with what was derived
        from them), the secrets sealed; the caller commits (the version grows)."""
        secrets = settings.secrets()
        row.settings = public
        row.secrets_sealed = self.ctx.box.seal(secrets) if secrets else None
        row.secrets_set = {f: f in secrets for f in settings.used_secret_fields()}
        row.updated_at = _now()

    @staticmethod
    def _kept_derived(
        row: EmailServerRow, public: dict[str, Any], changed: Sequence[str]
    ) -> dict[str, Any]:
        """What tests found out and a change leaves true: the TLS mode, when only the next
        certificate changed (it does not sign in to the SMTP server yet); the next
        certificate's test, while it is of the same certificate, tenant, app and account."""
        changed = [name for name in changed if name != "name"]  # a name is no setting
        if row.settings.get(TLS_MODE) and set(changed) <= set(NEXT_CERTIFICATE_FIELDS):
            public = {**public, TLS_MODE: row.settings[TLS_MODE]}
        return with_next_test_kept(row.type, row.settings, public, changed)

    def _routing_changes(self, row: EmailServerRow, patch: EmailServerPatch) -> dict[str, Any]:
        """The fallback and pace the patch sets (given, also as null) and that differ."""
        changes: dict[str, Any] = {}
        given = patch.model_fields_set
        if "max_per_minute" in given and patch.max_per_minute != row.max_per_minute:
            changes["max_per_minute"] = patch.max_per_minute
        fallback = patch.fallback_server_id
        if "fallback_server_id" in given and fallback != row.fallback_server_id:
            if fallback is not None:
                self._check_fallback(row, fallback)
            changes["fallback_server_id"] = fallback
        return changes

    def _check_fallback(self, row: EmailServerRow, fallback_id: str) -> None:
        """Own or inherited (from the server's own scope), not itself, and no cycle."""

        def refuse(message: str) -> InvalidSettings:
            return InvalidSettings(
                field_errors=[FieldError(field="fallback_server_id", message=message)]
            )

        if fallback_id == row.id:
            raise refuse("A server cannot be its own fallback; choose another server, or null.")
        own_scope = Scope(row.organization_id, row.workspace_id, self.scope.label)
        fallback = usable_server(self.session, own_scope, fallback_id, "fallback_server_id")
        seen, current = {row.id}, fallback.fallback_server_id
        while current is not None:
            if current in seen:
                raise refuse(
                    f"'{fallback.name}' falls back (through its own fallbacks) to this server: "
                    "that would be a cycle. Choose another server, or null."
                )
            seen.add(current)
            current = self.session.scalar(
                select(EmailServerRow.fallback_server_id).where(EmailServerRow.id == current)
            )

    @staticmethod
    def check_version(row: EmailServerRow, expected: int) -> None:
        if row.version != expected:
            raise StaleVersion(
                f"'{row.name}' was changed by someone else since you loaded it (you have version "
                f"{expected}, it is now {row.version}); reload it and make your change again."
            )

    # ---------------------------------------------------------------- delete

    def delete(
        self,
        server_id: str,
        replacement_id: str | None,
        replacements: Mapping[str, str] | None = None,
    ) -> None:
        """Delete; when in use, ``replacement_id`` takes over every usage in the same
        transaction, or, with ``replacements`` (workspace id -> server), each workspace's
        usages go to the server chosen for it and ``replacement_id`` takes over the rest."""
        row = self.queries.own_row(server_id, for_update=True)
        # Every usage, in every workspace: an organization's server may be used across them.
        usages = self.queries.usages_of(row.id, self.scope.whole_organization)
        default = self._replacement(row, replacement_id) if replacement_id else None
        targets: list[Target] = []
        messages = 0
        if replacements:
            # Every choice is checked before anything moves.
            targets = targets_per_workspace(self.session, row, replacements, default)
            messages = move_per_workspace(self.session, row.id, targets)
        elif default is None and usages:
            names = ", ".join(u.name for u in usages[:5])
            more = f" and {len(usages) - 5} more" if len(usages) > 5 else ""
            raise ServerInUse(
                f"'{row.name}' is used by {names}{more}; choose a replacement server to take over "
                "before deleting it.",
                usages=usages,
            )
        if default is not None:
            self._move_usages(row.id, default)
            messages += move_queued_messages(self.session, row.id, default.id)
        failed = move_queued_messages(self.session, row.id, None)  # only what nothing took over
        detail = _moved_detail(len(usages), messages, targets, default)
        if failed:
            detail = "; ".join(filter(None, [detail, f"{failed} queued message(s) failed"]))
        self.session.delete(row)
        self.audit("delete", server_id=row.id, detail=detail)
        self.session.commit()

    def replacement_choices(self, server_id: str) -> list[ReplacementChoice]:
        """Where the server is used, place by place, and what may take over in each."""
        return choices(self.session, self.queries.own_row(server_id))

    def _move_usages(self, server_id: str, replacement: EmailServerRow) -> None:
        """Every sender, notifications setting, default and fallback to the replacement."""
        moves: list[tuple[Any, Any, Any]] = [
            (CustomActionRow, CustomActionRow.email_server_id, true()),
            (SchedulerJobRow, SchedulerJobRow.email_server_id, true()),
            (WorkspaceRow, WorkspaceRow.notifications_server_id, true()),
            (Organization, Organization.default_server_id, true()),
            # A server does not fall back to itself: the replacement's own fallback is cleared.
            (
                EmailServerRow,
                EmailServerRow.fallback_server_id,
                EmailServerRow.id != replacement.id,
            ),
        ]
        for model, column, where in moves:
            self.session.execute(
                update(model)
                .where(column == server_id, where)
                .values({column.key: replacement.id})
                .execution_options(synchronize_session=False)
            )
        self.session.execute(
            update(EmailServerRow)
            .where(
                EmailServerRow.id == replacement.id, EmailServerRow.fallback_server_id == server_id
            )
            .values(fallback_server_id=None)
            .execution_options(synchronize_session=False)
        )

    def _replacement(self, row: EmailServerRow, replacement_id: str) -> EmailServerRow:
        def bad(message: str) -> BadReplacement:
            return BadReplacement(
                field_errors=[FieldError(field="replacement_id", message=message)]
            )

        if replacement_id == row.id:
            raise bad("Choose a replacement other than the server being deleted.")
        # An organization's server may be used by any workspace: only another organization
        # server is visible to all of them.
        scope = self.scope if row.workspace_id else self.scope.whole_organization
        try:
            return self.queries._visible_row(scope, replacement_id, for_update=True)
        except NotFound:
            raise bad(
                f"'{replacement_id}' is not a server {self.scope.label} can use; choose one of "
                "its own servers or one inherited from the Organization."
                if row.workspace_id
                else f"'{replacement_id}' is not one of the Organization's servers; choose one "
                "of them."
            ) from None

    # ---------------------------------------------------------------- send a test message

    def prepare_send_test(
        self, server_id: str, to: str, *, progress: Progress | None = None
    ) -> Prepared[SendTestResult]:
        """Every check that can refuse sending a real test message through a stored server;
        the sending (and its record as a delivery) is the work, in one session whose stages
        go to ``progress`` as they end."""
        self.count_attempt()
        # Own and inherited alike: a test message changes nothing of the server, and a
        # Workspace Admin needs to know that the Organization's server carries its mail.
        row = self.queries.visible_row(server_id)
        settings = stored_server_settings(self.ctx, row)
        name = row.name
        self.end_transaction()  # no transaction is held while the message is sent
        slot = self.take_slot()
        return Prepared(
            slot, lambda: self._send_and_record(settings, server_id, name, to, progress)
        )

    def _send_and_record(
        self,
        settings: AnySettings,
        server_id: str,
        name: str,
        to: str,
        progress: Progress | None,
    ) -> SendTestResult:
        outcome = send_test_message(self.ctx, settings, name=name, to=to, progress=progress)
        sent = "accepted" if isinstance(settings, GraphSettings) else "sent"
        delivery = DeliveryRow(
            id=new_id("dlv"),
            workspace_id=self.scope.workspace_id,
            email_server_id=server_id,
            email_server_name=name,
            kind="test",
            recipients=[to],
            status=sent if outcome.ok else "failed",
            error=None if outcome.ok else outcome.detail,
            created_at=_now(),
        )
        with self.ctx.sessions() as session:
            session.add(delivery)
            self.audit(
                "send_test",
                server_id=server_id,
                result="ok" if outcome.ok else "failed",
                detail=outcome.detail,
                session=session,
            )
            session.commit()
        return SendTestResult(
            ok=outcome.ok,
            detail=outcome.detail,
            delivery_id=delivery.id,
            elapsed_ms=outcome.elapsed_ms,
            stages=outcome.stages,
        )
