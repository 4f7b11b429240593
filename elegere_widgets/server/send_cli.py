"""`elegere send`: hand one message to the running service over HTTP, as the platform would.

It speaks the API (``ELEGERE_URL``, ``ELEGERE_TOKEN``), so trying it exercises it; with httpx
and the shared models, not the client package, which the service may not import. A token: ``elegere token create --user admin@acme.example`` (a Workspace Admin of the
workspace) or ``elegere token create --sender --workspace Sales``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any
from urllib.parse import quote

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
    import httpx
    from pydantic import ValidationError

    from ..errors import ElegereError
    from ..models import MessageIn, MessageSender, field_errors

    if not args.token:
        print(
            "No token: pass --token or set ELEGERE_TOKEN (make one with `elegere token create "
            "--user admin@acme.example`, or `--sender --workspace Sales`).",
            file=sys.stderr,
        )
        return 2
    headers = {"Authorization": f"Bearer {args.token}"}
    # Names a sender token could not look up, sent as ids: said if the service refuses them.
    unresolved: list[str] = []
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request says nothing
    try:
        with httpx.Client(base_url=f"{args.url.rstrip('/')}/api/v1", headers=headers) as http:
            ws = _workspace(http, args.workspace, unresolved)
            if args.notification:
                who = MessageSender(kind="notification", event=args.notification)
            elif args.custom_action:
                who = MessageSender(
                    kind="custom_action",
                    id=_sender_id(http, ws, "custom-actions", args.custom_action, unresolved),
                )
            else:
                who = MessageSender(
                    kind="scheduler_job",
                    id=_sender_id(http, ws, "scheduler-jobs", args.scheduler_job, unresolved),
                )
            message = MessageIn(
                sender=who,
                to=args.to,
                cc=args.cc,
                subject=args.subject,
                text=args.text,
                html=args.html,
                idempotency_key=args.idempotency_key,
            )
            answer = _ok(
                http.post(f"/workspaces/{quote(ws, safe='')}/messages", json=message.to_wire())
            )
    except ValidationError as exc:
        for error in field_errors(exc):
            print(f"elegere send: {error.field}: {error.message}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"elegere send: the service at {args.url} did not answer ({exc}).", file=sys.stderr)
        return 1
    except ElegereError as exc:
        print(f"elegere send: {exc}", file=sys.stderr)
        if unresolved:
            print(
                "elegere send: a sender token may not look names up, so "
                f"{', '.join(repr(n) for n in unresolved)} went as given: pass ids instead "
                "(--workspace ws_sales --custom-action ca_send_quote; a Workspace Admin sees "
                "them in GET /workspaces and …/custom-actions), or use a Workspace Admin's token.",
                file=sys.stderr,
            )
        return 1
    print(
        f"{answer['id']} {answer['message_id']} {answer['status']} via {answer['email_server_id']}"
    )
    return 0


def _ok(response: Any) -> Any:
    """The JSON of a 2xx answer; a problem as the package's error (as the client does)."""
    from ..errors import from_problem
    from ..models import Problem

    if response.is_success:
        return response.json()
    try:
        problem = Problem.model_validate(response.json())
    except ValueError:
        problem = Problem(status=response.status_code, detail=response.text[:200])
    raise from_problem(response.status_code, problem)


def _workspace(http: Any, name: str, unresolved: list[str]) -> str:
    """A workspace id by name, when the token may list workspaces; else the text as given."""
    response = http.get("/workspaces")
    if response.status_code == 403:  # a sender token: its workspace's id must be given
        unresolved.append(name)
        return name
    for ws in _ok(response):
        if name in (ws["id"], ws["name"]) or ws["name"].casefold() == name.casefold():
            return str(ws["id"])
    return name


def _sender_id(http: Any, ws: str, collection: str, name: str, unresolved: list[str]) -> str:
    """A custom action's or job's id by its name; a sender token cannot list: used as given."""
    response = http.get(f"/workspaces/{quote(ws, safe='')}/{collection}")
    if response.status_code == 403:
        unresolved.append(name)
        return name
    for item in _ok(response):
        if name in (item["id"], item["name"]):
            return str(item["id"])
    return name
