"""What the email-server endpoints do, for a workspace or an organization scope.

Network work (connection tests, test sends) never runs inside a store transaction: the
transaction that read the server ends first, and a new one records the outcome.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json
from sqlalchemy import Row, Subquery, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..connectivity.certificates import CertificateError, certificate_info, load_credential
from ..errors import (
    BadReplacement,
    BadRequest,
    InvalidSettings,
    NameTaken,
    NotFound,
    ReadOnlyServer,
    ServerInUse,
    StaleVersion,
    VersionRequired,
)
from ..models import (
    SECRET_FIELDS,
    SETTINGS_BY_TYPE,
    ConnectionTestResult,
    EmailServer,
    EmailServerPatch,
    FieldError,
    GraphSettings,
    SendTestResult,
    SmtpSettings,
    Stage,
    Usage,
    UsageCounts,
    field_errors,
)
from ..models.servers import (
    CertificateInfo,
    GraphServerSpec,
    GraphSettingsView,
    SmtpServerSpec,
    SmtpSettingsView,
    moved_endpoint_fields,
    reenter_secret_message,
)
from . import audit_log
from .connections import run_connection_test, send_test_message
from .context import ServiceContext
from .deps import Caller, Scope
from .receipts import settings_digest
from .security import new_id
from .store.tables import (
    CustomActionRow,
    DeliveryRow,
    EmailServerRow,
    SchedulerJobRow,
)

Spec = SmtpServerSpec | GraphServerSpec
AnySettings = SmtpSettings | GraphSettings

# Shown with the settings, derived from the certificate; not a setting one can write.
DERIVED_FIELDS = ("certificate_info",)


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ reading


def _visible(scope: Scope) -> Any:
    org_own = and_(
        EmailServerRow.organization_id == scope.organization_id,
        EmailServerRow.workspace_id.is_(None),
    )
    if scope.workspace_id is None:
        return org_own
    return or_(EmailServerRow.workspace_id == scope.workspace_id, org_own)


def _usage_filter(scope: Scope, model: type[CustomActionRow] | type[SchedulerJobRow]) -> Any:
    # From a workspace, only that workspace's usages are visible, also of inherited servers.
    return model.workspace_id == scope.workspace_id if scope.workspace_id else True


def _usage_counts(session: Session, scope: Scope, ids: Sequence[str]) -> dict[str, UsageCounts]:
    counts = {i: UsageCounts() for i in ids}
    if not ids:
        return counts
    for model, attr in ((CustomActionRow, "custom_actions"), (SchedulerJobRow, "scheduler_jobs")):
        rows = session.execute(
            select(model.email_server_id, func.count())
            .where(model.email_server_id.in_(ids), _usage_filter(scope, model))
            .group_by(model.email_server_id)
        )
        for server_id, n in rows:
            setattr(counts[server_id], attr, n)
    return counts


def _usages_per_server(
    scope: Scope, model: type[CustomActionRow] | type[SchedulerJobRow]
) -> Subquery:
    """Usage counts of the visible servers, as a table to join: one statement lists them all."""
    visible = select(EmailServerRow.id).where(_visible(scope))
    return (
        select(model.email_server_id, func.count().label("n"))
        .where(model.email_server_id.in_(visible), _usage_filter(scope, model))
        .group_by(model.email_server_id)
        .subquery()
    )


# What a listing shows: not the sealed secrets, and plain rows rather than ORM objects that
# the session would track (a workspace may list a thousand servers).
_LISTED = (
    EmailServerRow.id,
    EmailServerRow.workspace_id,
    EmailServerRow.organization_id,
    EmailServerRow.type,
    EmailServerRow.name,
    EmailServerRow.version,
    EmailServerRow.settings,
    EmailServerRow.secrets_set,
    EmailServerRow.created_at,
    EmailServerRow.updated_at,
    EmailServerRow.last_test,
)


def _document(
    row: EmailServerRow | Row[Any], scope: Scope, custom_actions: int, scheduler_jobs: int
) -> dict[str, Any]:
    """A stored server as EmailServer shows it, in the values pydantic would hold."""
    last_test = row.last_test
    if last_test:
        last_test = {**last_test, "at": datetime.fromisoformat(last_test["at"])}
    return {
        "id": row.id,
        "workspace_id": row.workspace_id,
        "organization_id": row.organization_id,
        "scope": "workspace" if row.workspace_id else "organization",
        "inherited": scope.workspace_id is not None and row.workspace_id is None,
        "type": row.type,
        "name": row.name,
        "version": row.version,
        "settings": _shown_settings(row.type, row.settings),
        "secrets_set": row.secrets_set,
        "usage": {"custom_actions": custom_actions, "scheduler_jobs": scheduler_jobs},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "last_test": last_test,
    }


#: What a server's settings show, by type: the views' fields, nothing else.
_SHOWN_SETTINGS = {
    "smtp": tuple(SmtpSettingsView.model_fields),
    "microsoft_graph": tuple(GraphSettingsView.model_fields),
}
_SHOWN_CERTIFICATE = tuple(CertificateInfo.model_fields)


def _shown_settings(server_type: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Only the view's fields leave the service, whatever else a row holds; days left change
    every day, so they are derived when read, not when saved."""
    shown = {key: stored[key] for key in _SHOWN_SETTINGS[server_type] if key in stored}
    info = shown.get("certificate_info")
    if info:
        not_after = datetime.fromisoformat(info["not_after"])
        shown["certificate_info"] = {
            **{key: info[key] for key in _SHOWN_CERTIFICATE if key in info},
            "not_after": not_after,
            "days_left": math.floor((not_after - _now()).total_seconds() / 86400),
        }
    return shown


def to_model(row: EmailServerRow | Row[Any], scope: Scope, usage: UsageCounts) -> EmailServer:
    return EmailServer.model_validate(
        _document(row, scope, usage.custom_actions, usage.scheduler_jobs)
    )


def list_servers_json(session: Session, scope: Scope) -> bytes:
    """The servers the scope sees, as the JSON of ``list[EmailServer]``, inherited ones first.

    Serialized straight from the stored documents, which were validated when written: the same
    documents that ``to_model`` validates for one server (a test holds the two to one answer).
    Validating 1,100 of them again and dumping the models cost as much as the query itself.
    """
    actions = _usages_per_server(scope, CustomActionRow)
    jobs = _usages_per_server(scope, SchedulerJobRow)
    # Through the connection: the rows as Core returns them, without the ORM's result
    # processing (a sixth of a 1,100-server listing's time).
    rows = session.connection().execute(
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
    return to_json([_document(r, scope, r.custom_actions, r.scheduler_jobs) for r in rows])


def one_server(session: Session, scope: Scope, row: EmailServerRow) -> EmailServer:
    return to_model(row, scope, _usage_counts(session, scope, [row.id])[row.id])


def load_visible(
    session: Session, scope: Scope, server_id: str, *, for_update: bool = False
) -> EmailServerRow:
    query = select(EmailServerRow).where(EmailServerRow.id == server_id, _visible(scope))
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"There is no email server '{server_id}' in {scope.label}.")
    return row


def load_own(
    session: Session, scope: Scope, server_id: str, *, for_update: bool = False
) -> EmailServerRow:
    row = load_visible(session, scope, server_id, for_update=for_update)
    if scope.workspace_id is not None and row.workspace_id is None:
        raise ReadOnlyServer(
            f"'{row.name}' is inherited from the Organization and is read-only here; only the "
            "Organization's Admin or IT Delegates can change or delete it."
        )
    return row


def list_usages(session: Session, scope: Scope, server_id: str) -> list[Usage]:
    load_visible(session, scope, server_id)
    return _usages(session, scope, server_id)


def _usages(session: Session, scope: Scope, server_id: str) -> list[Usage]:
    out: list[Usage] = []
    for model, kind in ((CustomActionRow, "custom_action"), (SchedulerJobRow, "scheduler_job")):
        rows = session.execute(
            select(model.id, model.name)
            .where(model.email_server_id == server_id, _usage_filter(scope, model))
            .order_by(model.name)
        )
        out.extend(Usage(kind=kind, id=i, name=n) for i, n in rows)  # type: ignore[arg-type]
    return out


# ------------------------------------------------------------------ settings and secrets


def _stored_settings(ctx: ServiceContext, row: EmailServerRow) -> dict[str, Any]:
    public = {k: v for k, v in row.settings.items() if k not in DERIVED_FIELDS}
    return {**public, **ctx.box.open(row.secrets_sealed)}


def _validate(server_type: str, values: dict[str, Any]) -> AnySettings:
    try:
        return SETTINGS_BY_TYPE[server_type].model_validate(values)
    except ValidationError as exc:
        raise InvalidSettings(field_errors=field_errors(exc)) from None


def _wire(settings: AnySettings) -> dict[str, Any]:
    return {**settings.public(), **settings.secrets()}


def _require_certificate(settings: AnySettings) -> None:
    if isinstance(settings, GraphSettings) and settings.certificate is None:
        raise InvalidSettings(
            field_errors=[
                FieldError(
                    field="certificate",
                    message="Upload the certificate: the .pfx (or .pem) with its private key.",
                )
            ]
        )


def _public_with_derived(settings: AnySettings) -> dict[str, Any]:
    """The settings to store in clear: no secret, plus what may be shown of the certificate.

    Loading the certificate here is what makes a wrong password, a wrong alias, an expired or
    mismatched certificate fail when the settings are saved, not when mail is sent.
    """
    public = settings.public()
    if isinstance(settings, GraphSettings) and settings.certificate is not None:
        password = settings.certificate_password
        try:
            loaded = load_credential(
                settings.certificate.get_secret_value(),
                password=password.get_secret_value() if password else None,
                alias=settings.certificate_alias,
            )
        except CertificateError as exc:
            raise InvalidSettings(
                field_errors=[FieldError(field=exc.field, message=str(exc))]
            ) from None
        public["certificate_info"] = certificate_info(loaded).model_dump(mode="json")
    return public


def _keep_secrets_with_their_server(
    row: EmailServerRow,
    settings: AnySettings,
    given: Mapping[str, Any],
) -> None:
    """Refuse to reuse a stored secret for another server, account or tenant."""
    moved = moved_endpoint_fields(row.type, row.settings, settings.public())
    # Which secrets are stored is known without decrypting them.
    missing = [name for name, stored in row.secrets_set.items() if stored and name not in given]
    if moved and missing:
        raise InvalidSettings(
            field_errors=[
                FieldError(field=name, message=reenter_secret_message(name, moved))
                for name in missing
            ]
        )


def _check_name_free(
    session: Session, scope: Scope, name: str, *, exclude_id: str | None = None
) -> None:
    key = name.casefold()
    clash = [EmailServerRow.organization_id == scope.organization_id]
    if scope.workspace_id is not None:
        clash.append(_visible(scope))
    # An organization's server is seen by all its workspaces: it must not clash with any.
    query = select(EmailServerRow).where(*clash, EmailServerRow.name_key == key)
    if exclude_id:
        query = query.where(EmailServerRow.id != exclude_id)
    other = session.scalar(query.limit(1))
    if other is None:
        return
    if other.workspace_id is None:
        where = "inherited from the Organization" if scope.workspace_id else "in the Organization"
    else:
        where = f"in {scope.label}" if scope.workspace_id else "in one of its workspaces"
    raise NameTaken(f"A server named '{other.name}' already exists ({where}); choose another name.")


# ------------------------------------------------------------------ test and add


Progress = Callable[[Stage], None]
TestRun = Callable[[Progress | None], ConnectionTestResult]


def test_settings(
    ctx: ServiceContext,
    session: Session,
    scope: Scope,
    caller: Caller,
    spec: Spec,
    *,
    progress: Progress | None = None,
) -> ConnectionTestResult:
    """Check, run and record a connection test; ``progress`` gets each stage as it ends."""
    return prepare_test(ctx, session, scope, caller, spec)(progress)


def prepare_test(
    ctx: ServiceContext, session: Session, scope: Scope, caller: Caller, spec: Spec
) -> TestRun:
    """Every check that can refuse the test, now; the test itself (and its record) later.

    A streamed answer calls this before its first byte, so refusals stay plain 4xx answers.
    """
    values = _wire(spec.settings)
    row_id: str | None = None
    if spec.server_id:
        row = load_visible(session, scope, spec.server_id)
        if row.type != spec.type:
            raise InvalidSettings(
                field_errors=[
                    FieldError(field="type", message=f"'{row.name}' is a {row.type} server.")
                ]
            )
        stored_secrets = ctx.box.open(row.secrets_sealed)
        values = {**stored_secrets, **values}
        row_id = row.id
    settings = _validate(spec.type, values)
    if spec.server_id:
        _keep_secrets_with_their_server(row, settings, spec.settings.secrets())
    _require_certificate(settings)
    ctx.test_limiter.hit(caller.id, "connection tests and test messages")
    session.rollback()  # end the read transaction before any network I/O
    return lambda progress: _run_and_record(
        ctx, session, scope, caller, spec.type, settings, row_id, progress
    )


def _run_and_record(
    ctx: ServiceContext,
    session: Session,
    scope: Scope,
    caller: Caller,
    server_type: str,
    settings: AnySettings,
    row_id: str | None,
    progress: Progress | None,
) -> ConnectionTestResult:
    result = run_connection_test(ctx, settings, progress=progress)
    if result.ok:
        result.test_token = ctx.receipts.issue(
            digest=settings_digest(scope.own_key, server_type, _wire(settings)),
            user_id=caller.id,
            elapsed_ms=result.elapsed_ms,
        )
    failed = result.failed_stage
    summary = (
        "passed" if result.ok else f"failed at {failed.name}: {failed.detail}" if failed else ""
    )
    if row_id is not None:
        session.execute(
            update(EmailServerRow)
            .where(EmailServerRow.id == row_id)
            .values(last_test=_last_test(result.ok, result.elapsed_ms, summary))
            .execution_options(synchronize_session=False)
        )
    audit_log.record(
        session,
        caller,
        scope,
        "test",
        server_id=row_id,
        result="ok" if result.ok else "failed",
        detail=f"{server_type} test {summary}",
    )
    session.commit()
    return result


def _last_test(
    ok: bool, elapsed_ms: int, detail: str, at: datetime | None = None
) -> dict[str, Any]:
    return {"ok": ok, "at": (at or _now()).isoformat(), "elapsed_ms": elapsed_ms, "detail": detail}


def create_server(
    ctx: ServiceContext, session: Session, scope: Scope, caller: Caller, spec: Spec
) -> EmailServer:
    settings = spec.settings
    _require_certificate(settings)
    _check_name_free(session, scope, spec.name)
    receipt = ctx.receipts.verify(
        spec.test_token,
        digest=settings_digest(scope.own_key, spec.type, _wire(settings)),
        user_id=caller.id,
    )
    secrets = settings.secrets()
    now = _now()
    row = EmailServerRow(
        id=new_id("srv"),
        organization_id=scope.organization_id,
        workspace_id=scope.workspace_id,
        scope_key=scope.own_key,
        type=spec.type,
        name=spec.name,
        name_key=spec.name.casefold(),
        settings=_public_with_derived(settings),
        secrets_sealed=ctx.box.seal(secrets) if secrets else None,
        secrets_set={f: f in secrets for f in SECRET_FIELDS[spec.type]},
        created_at=now,
        updated_at=now,
        last_test=_last_test(
            True,
            int(receipt.get("ms", 0)),
            "passed",
            datetime.fromtimestamp(receipt.get("at", now.timestamp()), UTC),
        ),
    )
    session.add(row)
    audit_log.record(
        session,
        caller,
        scope,
        "create",
        server_id=row.id,
        changed_fields=["name", "type", *settings.public(), *secrets],
    )
    _commit_or_name_taken(session, spec.name)
    return one_server(session, scope, row)


def _commit_or_name_taken(session: Session, name: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise NameTaken(f"A server named '{name}' already exists; choose another name.") from None


# ------------------------------------------------------------------ update


def parse_if_match(value: str | None) -> int:
    if value is None or not value.strip():
        raise VersionRequired(
            "Send the version you are changing in an If-Match header (the ETag of the server, "
            'e.g. If-Match: "3"), so that nobody else\'s change is overwritten.'
        )
    raw = value.strip().removeprefix("W/").strip('"')
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(
            f'If-Match must be the server\'s version number, like "3"; got {value!r}.'
        ) from None


def update_server(
    ctx: ServiceContext,
    session: Session,
    scope: Scope,
    caller: Caller,
    server_id: str,
    patch: EmailServerPatch,
    if_match: str | None,
) -> EmailServer:
    version = parse_if_match(if_match)
    row = load_own(session, scope, server_id, for_update=True)
    if row.version != version:
        raise StaleVersion(
            f"'{row.name}' was changed by someone else since you loaded it (you have version "
            f"{version}, it is now {row.version}); reload it and make your change again."
        )
    stored = _stored_settings(ctx, row)
    given = {k: v for k, v in patch.settings.items() if v is not None}
    merged = {**stored, **given}
    settings = _validate(row.type, merged)
    _keep_secrets_with_their_server(row, settings, given)
    changed = sorted(
        k for k, v in _wire(settings).items() if k in patch.settings and stored.get(k) != v
    )
    if patch.name is not None and patch.name != row.name:
        _check_name_free(session, scope, patch.name, exclude_id=row.id)
        changed.append("name")
        row.name, row.name_key = patch.name, patch.name.casefold()
    if changed:
        secrets = settings.secrets()
        row.settings = _public_with_derived(settings)
        row.secrets_sealed = ctx.box.seal(secrets) if secrets else None
        row.secrets_set = {f: f in secrets for f in SECRET_FIELDS[row.type]}
        row.updated_at = _now()
        audit_log.record(session, caller, scope, "update", server_id=row.id, changed_fields=changed)
    try:
        _commit_or_name_taken(session, row.name)
    except StaleDataError:
        session.rollback()
        raise StaleVersion(
            f"'{row.name}' was changed by someone else at the same time; reload it and make your "
            "change again."
        ) from None
    return one_server(session, scope, row)


# ------------------------------------------------------------------ delete


def delete_server(
    session: Session, scope: Scope, caller: Caller, server_id: str, replacement_id: str | None
) -> None:
    row = load_own(session, scope, server_id, for_update=True)
    # Every usage, in every workspace: an organization's server may be used across them.
    usages = _usages(session, Scope(row.organization_id, None, scope.label), row.id)
    detail = ""
    if replacement_id:
        replacement = _replacement(session, scope, row, replacement_id)
        for model in (CustomActionRow, SchedulerJobRow):
            session.execute(
                update(model)
                .where(model.email_server_id == row.id)
                .values(email_server_id=replacement.id)
                .execution_options(synchronize_session=False)
            )
        detail = f"{len(usages)} usage(s) moved to '{replacement.name}'"
    elif usages:
        names = ", ".join(u.name for u in usages[:5])
        more = f" and {len(usages) - 5} more" if len(usages) > 5 else ""
        raise ServerInUse(
            f"'{row.name}' is used by {names}{more}; choose a replacement server to take over "
            "before deleting it.",
            usages=usages,
        )
    session.delete(row)
    audit_log.record(session, caller, scope, "delete", server_id=row.id, detail=detail)
    session.commit()


def _replacement(
    session: Session, scope: Scope, row: EmailServerRow, replacement_id: str
) -> EmailServerRow:
    def bad(message: str) -> BadReplacement:
        return BadReplacement(field_errors=[FieldError(field="replacement_id", message=message)])

    if replacement_id == row.id:
        raise bad("Choose a replacement other than the server being deleted.")
    # An organization's server may be used by any workspace: only another organization
    # server is visible to all of them.
    replacement_scope = scope if row.workspace_id else Scope(row.organization_id, None, scope.label)
    try:
        return load_visible(session, replacement_scope, replacement_id, for_update=True)
    except NotFound:
        raise bad(
            f"'{replacement_id}' is not a server {scope.label} can use; choose one of its own "
            "servers or one inherited from the Organization."
            if row.workspace_id
            else f"'{replacement_id}' is not one of the Organization's servers; choose one of them."
        ) from None


# ------------------------------------------------------------------ send a test message


def send_test(
    ctx: ServiceContext, session: Session, scope: Scope, caller: Caller, server_id: str, to: str
) -> SendTestResult:
    row = load_own(session, scope, server_id)
    settings = _validate(row.type, _stored_settings(ctx, row))
    name, org_id = row.name, row.organization_id
    ctx.test_limiter.hit(caller.id, "connection tests and test messages")
    session.rollback()  # no transaction is held while the message is sent

    outcome = send_test_message(ctx, settings, name=name, to=to)
    status = ("accepted" if row.type == "microsoft_graph" else "sent") if outcome.ok else "failed"
    delivery = DeliveryRow(
        id=new_id("dlv"),
        workspace_id=scope.workspace_id,
        email_server_id=server_id,
        email_server_name=name,
        kind="test",
        recipients=[to],
        status=status,
        error=None if outcome.ok else outcome.detail,
        created_at=_now(),
    )
    session.add(delivery)
    audit_log.record(
        session,
        caller,
        Scope(org_id, scope.workspace_id, scope.label),
        "send_test",
        server_id=server_id,
        result="ok" if outcome.ok else "failed",
        detail=outcome.detail,
    )
    session.commit()
    return SendTestResult(ok=outcome.ok, detail=outcome.detail, delivery_id=delivery.id)
