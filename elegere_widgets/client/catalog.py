"""``client.custom_actions`` and ``client.scheduler_jobs``: what sends mail in a workspace.

The widgets use them to show, before a delete, which server each of them sends through.
"""

from __future__ import annotations

import builtins
from typing import Generic, TypeVar

from ..models.senders import SenderIn, SenderPatch
from ..models.usage import CustomAction, SchedulerJob
from ._args import require_text, segment
from ._http import Http, Resource, parse

S = TypeVar("S", CustomAction, SchedulerJob)


class _Senders(Resource, Generic[S]):
    """``/workspaces/{ws}/<collection>``: list, create, update, delete."""

    _collection: str
    _model: type[S]

    def __init__(self, http: Http) -> None:
        super().__init__(http)

    def list(self, ws: str, /) -> builtins.list[S]:
        """The workspace's senders of this kind and the email server each sends through."""
        return parse(self._http.request("GET", self._base(ws)), builtins.list[self._model])  # type: ignore[name-defined]

    def create(self, ws: str, /, *, name: str, email_server_id: str) -> S:
        """Add one; it sends through one of the workspace's servers (own or inherited)."""
        body = SenderIn(name=require_text(name, "name"), email_server_id=email_server_id)
        return parse(
            self._http.request("POST", self._base(ws), json=body.model_dump()), self._model
        )

    def update(
        self,
        ws: str,
        ident: str,
        /,
        *,
        name: str | None = None,
        email_server_id: str | None = None,
    ) -> S:
        """Rename it, or change its server; what is not given stays."""
        patch = SenderPatch(name=name, email_server_id=email_server_id)
        path = self._one(ws, ident)
        return parse(self._http.request("PATCH", path, json=patch.to_wire()), self._model)

    def delete(self, ws: str, ident: str, /) -> None:
        self._http.request("DELETE", self._one(ws, ident))

    def _base(self, ws: str) -> str:
        return f"/workspaces/{segment(ws, 'workspace id')}/{self._collection}"

    def _one(self, ws: str, ident: str) -> str:
        return f"{self._base(ws)}/{segment(ident, 'id')}"


class CustomActions(_Senders[CustomAction]):
    """``/workspaces/{ws}/custom-actions``."""

    _collection = "custom-actions"
    _model = CustomAction


class SchedulerJobs(_Senders[SchedulerJob]):
    """``/workspaces/{ws}/scheduler-jobs``."""

    _collection = "scheduler-jobs"
    _model = SchedulerJob
