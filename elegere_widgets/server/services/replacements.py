"""Deleting a server in use, with a replacement chosen per workspace.

An organization's server may be used by several workspaces: by their custom actions,
scheduler jobs and notifications, and as the fallback of their own servers. Each workspace
is a *place* whose usages, and queued messages, move to the server chosen for it: one of its
own servers or another organization server. The organization's own usages (its default
server, the fallback of its servers) are a place too, which only another organization server
can take over. ``replacement_id`` takes over every place not chosen for.

Everything here runs inside the delete's transaction; the caller deletes and commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ...errors import BadReplacement, ServerInUse
from ...models import FieldError, ReplacementCandidate, ReplacementChoice, Usage
from ..store.tables import (
    CustomActionRow,
    EmailServerRow,
    MessageRow,
    Organization,
    SchedulerJobRow,
    WorkspaceRow,
)
from .messages import FINAL_STATUSES

__all__ = ["Target", "choices", "move_per_workspace", "places", "targets_per_workspace"]

#: The place of the organization's own usages.
ORGANIZATION: None = None
Place = str | None


@dataclass(frozen=True)
class Target:
    """The server that takes over in one workspace."""

    workspace_id: str
    workspace_name: str
    server: EmailServerRow


def _usage(kind: str, ident: str, name: str) -> Usage:
    return Usage.model_validate({"kind": kind, "id": ident, "name": name})


def places(session: Session, server: EmailServerRow) -> dict[Place, list[Usage]]:
    """Every usage of the server in its organization, by place: a workspace id, or
    ``ORGANIZATION``. Only places that use it."""
    found: dict[Place, list[Usage]] = {}
    senders: tuple[tuple[Any, str], ...] = (
        (CustomActionRow, "custom_action"),
        (SchedulerJobRow, "scheduler_job"),
    )
    for model, kind in senders:
        rows = session.execute(
            select(model.workspace_id, model.id, model.name)
            .where(model.email_server_id == server.id)
            .order_by(model.name)
        )
        for ws, ident, name in rows:
            found.setdefault(ws, []).append(_usage(kind, ident, name))
    notified = session.execute(
        select(WorkspaceRow.id, WorkspaceRow.name).where(
            WorkspaceRow.organization_id == server.organization_id,
            WorkspaceRow.notifications_server_id == server.id,
        )
    )
    for ws, name in notified:
        found.setdefault(ws, []).append(_usage("notifications", ws, name))
    defaulted = session.execute(
        select(Organization.id, Organization.name).where(
            Organization.id == server.organization_id,
            Organization.default_server_id == server.id,
        )
    )
    for ident, name in defaulted:
        found.setdefault(ORGANIZATION, []).append(_usage("default_server", ident, name))
    falling_back = session.execute(
        select(EmailServerRow.workspace_id, EmailServerRow.id, EmailServerRow.name)
        .where(
            EmailServerRow.organization_id == server.organization_id,
            EmailServerRow.fallback_server_id == server.id,
            EmailServerRow.id != server.id,
        )
        .order_by(EmailServerRow.name_key)
    )
    for ws, ident, name in falling_back:
        found.setdefault(ws, []).append(_usage("fallback", ident, name))
    return found


def _usable_in(server: EmailServerRow, place: Place) -> Any:
    """The servers that may take over ``server``'s usages in ``place``: the place's own and
    the organization's, never ``server`` itself."""
    organization = EmailServerRow.workspace_id.is_(None)
    where = (
        organization
        if place is ORGANIZATION
        else or_(EmailServerRow.workspace_id == place, organization)
    )
    return and_(
        EmailServerRow.organization_id == server.organization_id,
        EmailServerRow.id != server.id,
        where,
    )


def _key_setting(row: EmailServerRow) -> str:
    settings = row.settings
    if row.type == "smtp":
        return f"{settings.get('server', '')}:{settings.get('port', '')}"
    return str(settings.get("account", ""))


def choices(session: Session, server: EmailServerRow) -> list[ReplacementChoice]:
    """Each place that uses the server, with the servers that may take over there: the
    organization's own usages first, then the workspaces by name."""
    used = places(session, server)
    names = dict(
        session.execute(
            select(WorkspaceRow.id, WorkspaceRow.name).where(
                WorkspaceRow.id.in_([p for p in used if p is not ORGANIZATION])
            )
        ).all()
    )
    organization = session.get(Organization, server.organization_id)
    ordered = sorted(used, key=lambda p: (p is not ORGANIZATION, names.get(p or "", "")))
    out: list[ReplacementChoice] = []
    for place in ordered:
        rows = session.scalars(
            select(EmailServerRow)
            .where(_usable_in(server, place))
            .order_by(EmailServerRow.workspace_id.is_(None), EmailServerRow.name_key)
        )
        out.append(
            ReplacementChoice(
                workspace_id=place,
                name=names.get(place, place)
                if place is not ORGANIZATION
                else (organization.name if organization else server.organization_id),
                usages=used[place],
                candidates=[
                    ReplacementCandidate(
                        id=r.id,
                        name=r.name,
                        type=r.type,  # type: ignore[arg-type]
                        scope="organization" if r.workspace_id is None else "workspace",
                        key_setting=_key_setting(r),
                    )
                    for r in rows
                ],
            )
        )
    return out


def _refuse(field: str, message: str) -> BadReplacement:
    return BadReplacement(field_errors=[FieldError(field=field, message=message)])


def targets_per_workspace(
    session: Session,
    server: EmailServerRow,
    chosen: Mapping[str, str],
    default: EmailServerRow | None,
) -> list[Target]:
    """The server chosen for each workspace, checked (locked, in the delete's transaction);
    refuses, before anything moves, a choice that cannot take over, and a place that uses the
    server with nothing to take over there."""
    names = dict(
        session.execute(
            select(WorkspaceRow.id, WorkspaceRow.name).where(
                WorkspaceRow.organization_id == server.organization_id
            )
        ).all()
    )
    targets: list[Target] = []
    for ws, target_id in chosen.items():
        field = f"replacements.{ws}"
        if ws not in names:
            raise _refuse(
                field, f"There is no workspace '{ws}' in your organization; name workspaces by id."
            )
        if server.workspace_id is not None and ws != server.workspace_id:
            raise _refuse(
                field,
                f"'{server.name}' is a server of {names[server.workspace_id]}: only that "
                f"workspace uses it. Choose a replacement for '{server.workspace_id}' only.",
            )
        if target_id == server.id:
            raise _refuse(field, "Choose a replacement other than the server being deleted.")
        target = session.scalar(
            select(EmailServerRow)
            .where(EmailServerRow.id == target_id, _usable_in(server, ws))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if target is None:
            raise _refuse(
                field,
                f"'{target_id}' is not a server {names[ws]} can use; choose one of its own "
                "servers or one of the Organization's.",
            )
        targets.append(Target(ws, names[ws], target))
    covered = {t.workspace_id for t in targets}
    uncovered = {
        place: usages
        for place, usages in places(session, server).items()
        if default is None and place not in covered
    }
    if uncovered:
        raise _still_in_use(server, uncovered, names)
    return targets


def _still_in_use(
    server: EmailServerRow, uncovered: Mapping[Place, Sequence[Usage]], names: Mapping[str, str]
) -> ServerInUse:
    usages = [u for place in uncovered.values() for u in place]
    wanted = [f"'{p}' ({names.get(p, p)})" for p in uncovered if p is not ORGANIZATION]
    parts = []
    if wanted:
        parts.append(f"a replacement for {', '.join(wanted)} in replacements")
    if ORGANIZATION in uncovered:
        parts.append(
            "an organization server as replacement_id for the organization's own usages "
            "(its default server, the fallback of its servers)"
        )
    listed = ", ".join(u.name for u in usages[:5]) + (
        f" and {len(usages) - 5} more" if len(usages) > 5 else ""
    )
    return ServerInUse(
        f"'{server.name}' is still used by {listed}; choose {' and '.join(parts)}, then delete it.",
        usages=usages,
    )


def move_per_workspace(session: Session, server_id: str, targets: Sequence[Target]) -> int:
    """Each workspace's usages and queued messages to its target; returns how many messages
    moved. What no target covers is left for ``replacement_id``."""
    messages = 0
    for chosen in targets:
        ws, target = chosen.workspace_id, chosen.server
        moves: list[Any] = [
            update(CustomActionRow)
            .where(CustomActionRow.email_server_id == server_id, CustomActionRow.workspace_id == ws)
            .values(email_server_id=target.id),
            update(SchedulerJobRow)
            .where(SchedulerJobRow.email_server_id == server_id, SchedulerJobRow.workspace_id == ws)
            .values(email_server_id=target.id),
            update(WorkspaceRow)
            .where(WorkspaceRow.id == ws, WorkspaceRow.notifications_server_id == server_id)
            .values(notifications_server_id=target.id),
            update(EmailServerRow)
            .where(
                EmailServerRow.workspace_id == ws,
                EmailServerRow.fallback_server_id == server_id,
                EmailServerRow.id != target.id,
            )
            .values(fallback_server_id=target.id),
            # A server does not fall back to itself: the target's own fallback is cleared.
            update(EmailServerRow)
            .where(EmailServerRow.id == target.id, EmailServerRow.fallback_server_id == server_id)
            .values(fallback_server_id=None),
        ]
        for move in moves:
            session.execute(move.execution_options(synchronize_session=False))
        queued = (
            update(MessageRow)
            .where(
                MessageRow.email_server_id == server_id,
                MessageRow.workspace_id == ws,
                MessageRow.status.not_in(FINAL_STATUSES),
            )
            .values(email_server_id=target.id)
        )
        messages += _rows(session.execute(queued.execution_options(synchronize_session=False)))
    return messages


def _rows(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
