"""``client.messages`` (send and read the platform's mail) and ``client.mail_settings``."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ..models import Page
from ..models.messages import (
    AcceptedBatch,
    Message,
    MessageAccepted,
    MessageIn,
    MessageSender,
    MessageSummary,
)
from ..models.senders import OrganizationMailSettings, WorkspaceNotifications
from ._args import require_text, segment
from ._http import Resource, follow_pages, parse


def sender(
    *,
    custom_action: str | None = None,
    scheduler_job: str | None = None,
    notification: str | None = None,
) -> MessageSender:
    """Exactly one of: a custom action's id, a scheduler job's id, a notification's event."""
    given = [
        (kind, value)
        for kind, value in (
            ("custom_action", custom_action),
            ("scheduler_job", scheduler_job),
            ("notification", notification),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise ValueError("Name exactly one sender: custom_action, scheduler_job or notification.")
    kind, value = given[0]
    if kind == "notification":
        return MessageSender(kind=kind, event=value)
    return MessageSender(kind=kind, id=value)


class Messages(Resource):
    """``/workspaces/{ws}/messages``: hand messages over to be sent, and follow them."""

    def send(
        self,
        ws: str,
        /,
        *,
        sender: MessageSender,
        to: Sequence[str] = (),
        cc: Sequence[str] = (),
        bcc: Sequence[str] = (),
        subject: str,
        text: str | None = None,
        html: str | None = None,
        reply_to: str | None = None,
        idempotency_key: str | None = None,
    ) -> MessageAccepted:
        """Hand one message over; it is in the store (its Message-ID fixed) when this returns.

        Addresses and the subject are checked here first (InvalidSettings-style ValueError
        from pydantic before any request): no line breaks, valid addresses.
        """
        message = MessageIn(
            sender=sender,
            to=list(to),
            cc=list(cc),
            bcc=list(bcc),
            subject=subject,
            text=text,
            html=html,
            reply_to=reply_to,
            idempotency_key=idempotency_key,
        )
        response = self._http.request("POST", self._base(ws), json=message.to_wire())
        return parse(response, MessageAccepted)

    def send_many(
        self, ws: str, messages: Iterable[MessageIn], /
    ) -> builtins.list[MessageAccepted]:
        """Hand over up to 500 messages in one request; the answers are in the same order."""
        items = list(messages)
        if not all(isinstance(m, MessageIn) for m in items):
            raise TypeError("messages must be MessageIn models.")
        body: dict[str, Any] = {"messages": [m.to_wire() for m in items]}
        return parse(self._http.request("POST", self._base(ws), json=body), AcceptedBatch).items

    def get(self, ws: str, message_id: str, /) -> Message:
        """One message with its recipients' states and every attempt (never its body)."""
        path = f"{self._base(ws)}/{segment(message_id, 'message id')}"
        return parse(self._http.request("GET", path), Message)

    def list(
        self,
        ws: str,
        /,
        *,
        status: str | None = None,
        since: datetime | None = None,
        page_size: int = 500,
    ) -> Iterator[MessageSummary]:
        """Every matching message, oldest first, following the pages as they are consumed."""
        return follow_pages(
            self._http, self._base(ws), _query(status, since, page_size), MessageSummary, "messages"
        )

    def page(
        self,
        ws: str,
        /,
        *,
        status: str | None = None,
        since: datetime | None = None,
        page_size: int = 500,
        cursor: str | None = None,
    ) -> Page[MessageSummary]:
        """One page; pass its ``next_cursor`` back as ``cursor`` for the next one."""
        params = _query(status, since, page_size)
        if cursor is not None:
            params["cursor"] = require_text(cursor, "cursor")
        response = self._http.request("GET", self._base(ws), params=params)
        return parse(response, Page[MessageSummary])

    def _base(self, ws: str) -> str:
        return f"/workspaces/{segment(ws, 'workspace id')}/messages"


def _query(status: str | None, since: datetime | None, page_size: int) -> dict[str, str | int]:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ValueError(f"page_size must be a positive int, not {page_size!r}.")
    params: dict[str, str | int] = {"limit": page_size}
    if status is not None:
        params["status"] = require_text(status, "status")
    if since is not None:
        if since.tzinfo is None:
            raise ValueError("since needs a time zone, e.g. datetime(2026, 11, 1, tzinfo=UTC).")
        params["since"] = since.isoformat()
    return params


class MailSettings(Resource):
    """``/workspaces/{ws}/mail-settings`` and ``/organizations/{org}/mail-settings``."""

    def get(self, ws: str, /) -> WorkspaceNotifications:
        """The workspace's notifications server (None: the organization's default, which
        ``organization_default_server_id`` names)."""
        return parse(self._http.request("GET", _ws(ws)), WorkspaceNotifications)

    def set_notifications_server(self, ws: str, /, server_id: str | None) -> WorkspaceNotifications:
        """Set (an own or inherited server) or clear (None) the notifications server."""
        body = {"notifications_server_id": server_id}
        return parse(self._http.request("PATCH", _ws(ws), json=body), WorkspaceNotifications)

    def get_organization(self, org: str, /) -> OrganizationMailSettings:
        return parse(self._http.request("GET", _org(org)), OrganizationMailSettings)

    def set_default_server(self, org: str, /, server_id: str | None) -> OrganizationMailSettings:
        """Set (one of the organization's servers) or clear (None) its default server."""
        body = {"default_server_id": server_id}
        return parse(self._http.request("PATCH", _org(org), json=body), OrganizationMailSettings)


def _ws(ws: str) -> str:
    return f"/workspaces/{segment(ws, 'workspace id')}/mail-settings"


def _org(org: str) -> str:
    return f"/organizations/{segment(org, 'organization id')}/mail-settings"
