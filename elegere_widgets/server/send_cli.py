"""`elegere send`: hand one message to the running service over HTTP, as the platform would.

It goes through the client (``ELEGERE_URL``, ``ELEGERE_TOKEN``), so trying it exercises the
API. A token: ``elegere token create --user admin@acme.example`` (a Workspace Admin of the
workspace) or ``elegere token create --sender --workspace Sales``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8765"


def add_send_command(sub: Any) -> None:
    send = sub.add_parser("send", help="send one message through the running service")
    send.add_argument("--url", default=os.environ.get("ELEGERE_URL") or DEFAULT_URL)
    send.add_argument("--token", default=os.environ.get("ELEGERE_TOKEN"), help="or ELEGERE_TOKEN")
    send.add_argument("--workspace", required=True, metavar="NAME", help="its name or id")
    who = send.add_mutually_exclusive_group(required=True)
    who.add_argument("--custom-action", metavar="NAME", help="its name or id")
    who.add_argument("--scheduler-job", metavar="NAME", help="its name or id")
    who.add_argument("--notification", choices=("action", "tag", "reply", "account"))
    send.add_argument("--to", action="append", default=[], metavar="ADDRESS", required=True)
    send.add_argument("--cc", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--subject", required=True)
    send.add_argument("--text")
    send.add_argument("--html")
    send.add_argument("--idempotency-key")
    send.set_defaults(func=cmd_send)


def cmd_send(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..client import Client
    from ..client.messages import sender
    from ..errors import ElegereError
    from ..models import field_errors

    if not args.token:
        print(
            "No token: pass --token or set ELEGERE_TOKEN (make one with `elegere token create "
            "--user admin@acme.example`, or `--sender --workspace Sales`).",
            file=sys.stderr,
        )
        return 2
    try:
        with Client(args.url, args.token) as client:
            ws = _workspace(client, args.workspace)
            who = sender(
                custom_action=_sender_id(client.custom_actions.list, ws, args.custom_action),
                scheduler_job=_sender_id(client.scheduler_jobs.list, ws, args.scheduler_job),
                notification=args.notification,
            )
            accepted = client.messages.send(
                ws,
                sender=who,
                to=args.to,
                cc=args.cc,
                subject=args.subject,
                text=args.text,
                html=args.html,
                idempotency_key=args.idempotency_key,
            )
    except ValidationError as exc:
        for error in field_errors(exc):
            print(f"elegere send: {error.field}: {error.message}", file=sys.stderr)
        return 2
    except ElegereError as exc:
        print(f"elegere send: {exc}", file=sys.stderr)
        return 1
    print(f"{accepted.id} {accepted.message_id} {accepted.status} via {accepted.email_server_id}")
    return 0


def _workspace(client: Any, name: str) -> str:
    """A workspace id by name, when the token may list workspaces; else the text as given."""
    from ..errors import PermissionDenied

    try:
        workspaces = client.workspaces.list()
    except PermissionDenied:  # a sender token: its workspace's id must be given
        return name
    for ws in workspaces:
        if name in (ws.id, ws.name) or ws.name.casefold() == name.casefold():
            return str(ws.id)
    return name


def _sender_id(lister: Any, ws: str, name: str | None) -> str | None:
    """A custom action's or job's id by its name; a sender token cannot list: used as given."""
    from ..errors import PermissionDenied

    if name is None:
        return None
    try:
        for item in lister(ws):
            if name in (item.id, item.name):
                return str(item.id)
    except PermissionDenied:
        pass
    return name
