"""``client.custom_actions`` and ``client.scheduler_jobs``: what sends mail, read-only.

The widgets use them to show, before a delete, which server each of them sends through.
"""

from __future__ import annotations

import builtins

from ..models.usage import CustomAction, SchedulerJob
from ._args import segment
from ._http import Resource, parse


class CustomActions(Resource):
    """``/workspaces/{ws}/custom-actions``."""

    def list(self, ws: str, /) -> builtins.list[CustomAction]:
        """The workspace's custom actions and the email server each sends through."""
        path = f"/workspaces/{segment(ws, 'workspace id')}/custom-actions"
        return parse(self._http.request("GET", path), list[CustomAction])


class SchedulerJobs(Resource):
    """``/workspaces/{ws}/scheduler-jobs``."""

    def list(self, ws: str, /) -> builtins.list[SchedulerJob]:
        """The workspace's scheduler jobs and the email server each sends through."""
        path = f"/workspaces/{segment(ws, 'workspace id')}/scheduler-jobs"
        return parse(self._http.request("GET", path), list[SchedulerJob])
