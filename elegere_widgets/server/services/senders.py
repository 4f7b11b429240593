"""Custom actions, scheduler jobs and the servers of notifications: what sends mail.

A sender names a server its workspace can use: one of its own, or one inherited from the
organization; a server of another workspace is refused on the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ...errors import InvalidSettings, NameTaken, NotFound
from ...models import CustomAction, FieldError, SchedulerJob
from ...models.senders import (
    OrganizationMailSettings,
    SenderIn,
    SenderPatch,
    WorkspaceMailSettings,
    WorkspaceNotifications,
)
from ..scope import Scope
from ..security import new_id
from ..store.tables import (
    CustomActionRow,
    EmailServerRow,
    Organization,
    SchedulerJobRow,
    WorkspaceRow,
    sender_name_key,
)

SenderRow = CustomActionRow | SchedulerJobRow
KINDS: dict[str, tuple[type[CustomActionRow] | type[SchedulerJobRow], str, str]] = {
    "custom_action": (CustomActionRow, "custom action", "ca"),
    "scheduler_job": (SchedulerJobRow, "scheduler job", "job"),
}


def _refuse(field: str, message: str) -> InvalidSettings:
    return InvalidSettings(field_errors=[FieldError(field=field, message=message)])


def usable_server(session: Session, scope: Scope, server_id: str, field: str) -> EmailServerRow:
    """A server the scope may send through: for a workspace its own or an inherited one,
    for an organization one of its own servers; else 422 on ``field``."""
    own = EmailServerRow.workspace_id == scope.workspace_id
    inherited = EmailServerRow.workspace_id.is_(None)
    row = session.scalar(
        select(EmailServerRow).where(
            EmailServerRow.id == server_id,
            EmailServerRow.organization_id == scope.organization_id,
            or_(own, inherited) if scope.workspace_id else inherited,
        )
    )
    if row is None:
        raise _refuse(
            field,
            f"'{server_id}' is not a server {scope.label} can use; choose one of its own "
            "servers or one inherited from the Organization."
            if scope.workspace_id
            else f"'{server_id}' is not one of the Organization's servers; choose one of them.",
        )
    return row


def _model(kind: str, row: SenderRow) -> CustomAction | SchedulerJob:
    model = CustomAction if kind == "custom_action" else SchedulerJob
    return model.model_validate(row, from_attributes=True)


@dataclass
class SenderService:
    """A workspace's custom actions and scheduler jobs, and its notifications server."""

    session: Session
    scope: Scope

    def create(self, kind: str, body: SenderIn) -> CustomAction | SchedulerJob:
        model, _, prefix = KINDS[kind]
        self._check_name_free(kind, body.name)
        server = usable_server(self.session, self.scope, body.email_server_id, "email_server_id")
        row = model(
            id=new_id(prefix),
            workspace_id=self.scope.workspace_id,
            name=body.name,
            email_server_id=server.id,
        )
        self.session.add(row)
        self._commit_or_name_taken(kind, row.name, exclude_id=row.id)
        return _model(kind, row)

    def update(self, kind: str, ident: str, patch: SenderPatch) -> CustomAction | SchedulerJob:
        row = self._row(kind, ident)
        if patch.name is not None and patch.name != row.name:
            self._check_name_free(kind, patch.name, exclude_id=row.id)
            row.name = patch.name
        if patch.email_server_id is not None:
            server = usable_server(
                self.session, self.scope, patch.email_server_id, "email_server_id"
            )
            row.email_server_id = server.id
        self._commit_or_name_taken(kind, row.name, exclude_id=row.id)
        return _model(kind, row)

    def delete(self, kind: str, ident: str) -> None:
        self.session.delete(self._row(kind, ident))
        self.session.commit()

    def _row(self, kind: str, ident: str) -> SenderRow:
        model, what, _ = KINDS[kind]
        row: SenderRow | None = self.session.scalar(  # type: ignore[assignment]
            select(model).where(model.id == ident, model.workspace_id == self.scope.workspace_id)
        )
        if row is None:
            raise NotFound(f"There is no {what} '{ident}' in {self.scope.label}.")
        return row

    def _check_name_free(self, kind: str, name: str, *, exclude_id: str | None = None) -> None:
        model, what, _ = KINDS[kind]
        query = select(model.id).where(
            model.workspace_id == self.scope.workspace_id,
            model.name_key == sender_name_key(name),
        )
        if exclude_id:
            query = query.where(model.id != exclude_id)
        if self.session.scalar(query.limit(1)) is not None:
            raise NameTaken(
                f"{self.scope.label} already has a {what} named '{name}' (names are unique "
                f"in a workspace, whatever their case); choose another name."
            )

    def _commit_or_name_taken(self, kind: str, name: str, *, exclude_id: str) -> None:
        """Commit; when the store refuses the name (another request took it since the check
        above), the same 409 as the check. Any other refusal is not about the name."""
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            self._check_name_free(kind, name, exclude_id=exclude_id)
            raise

    # ---------------------------------------------------------------- notifications

    def _workspace(self) -> WorkspaceRow:
        row = self.session.get(WorkspaceRow, self.scope.workspace_id)
        if row is None:  # the scope was built from this row in this request
            raise NotFound(f"There is no workspace '{self.scope.workspace_id}'.")
        return row

    def mail_settings(self) -> WorkspaceNotifications:
        organization = self.session.get(Organization, self.scope.organization_id)
        return WorkspaceNotifications(
            notifications_server_id=self._workspace().notifications_server_id,
            organization_default_server_id=organization.default_server_id if organization else None,
        )

    def set_mail_settings(self, body: WorkspaceMailSettings) -> WorkspaceNotifications:
        row = self._workspace()
        if "notifications_server_id" not in body.model_fields_set:
            return self.mail_settings()  # PATCH {}: nothing to change
        server_id = body.notifications_server_id
        if server_id is not None:
            server_id = usable_server(
                self.session, self.scope, server_id, "notifications_server_id"
            ).id
        row.notifications_server_id = server_id
        self.session.commit()
        return self.mail_settings()


@dataclass
class OrganizationMailService:
    """The organization's default server, for its Admin and IT Delegates."""

    session: Session
    scope: Scope

    def _organization(self) -> Organization:
        row = self.session.get(Organization, self.scope.organization_id)
        if row is None:
            raise NotFound(f"There is no organization '{self.scope.organization_id}'.")
        return row

    def mail_settings(self) -> OrganizationMailSettings:
        return OrganizationMailSettings(default_server_id=self._organization().default_server_id)

    def set_mail_settings(self, body: OrganizationMailSettings) -> OrganizationMailSettings:
        row = self._organization()
        if "default_server_id" not in body.model_fields_set:
            return self.mail_settings()  # PATCH {}: nothing to change
        server_id = body.default_server_id
        if server_id is not None:
            server_id = usable_server(self.session, self.scope, server_id, "default_server_id").id
        row.default_server_id = server_id
        self.session.commit()
        return OrganizationMailSettings(default_server_id=server_id)
