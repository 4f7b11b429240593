"""`elegere send`: hand one message to the running service over HTTP, as the platform would.

It speaks the API, so trying it exercises it; with httpx and the shared models, not the client
package, which the service may not import. Where the service is and which token to use:
``--url``/``--token``, else ``ELEGERE_URL``/``ELEGERE_TOKEN``, else the file ``make run`` writes
in the data directory (``.elegere/send.json``: its URL and a sender token of Sales), so that
``elegere send`` works from a second terminal with nothing to set. A token of one's own:
``elegere token create --sender --workspace Sales`` (may only send) or
``elegere token create --user admin@acme.example`` (a Workspace Admin of the workspace).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .config import DEFAULT_DATA_DIR

DEFAULT_URL = "http://127.0.0.1:8765"
#: In the data directory: the running service's URL and a token, written by ``make run``.
SEND_FILE = "send.json"
#: The ids the service gives each kind of sender start so (``ca_…``, ``job_…``).
ID_PREFIX = {"custom_action": "ca_", "scheduler_job": "job_"}


# ---------------------------------------------------------------- the running service's file


@dataclass(frozen=True)
class Target:
    """Where ``elegere send`` sends, and with which token; ``source`` says where they came from."""

    url: str
    token: str | None
    source: str = ""


def send_file(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        data_dir = Path(os.environ.get("ELEGERE_DATA_DIR") or DEFAULT_DATA_DIR)
    return data_dir / SEND_FILE


def write_send_file(data_dir: Path, url: str, token: str) -> Path:
    """What ``elegere send`` run in another terminal needs: the file is its owner's alone
    (it holds a token), in the data directory (0700)."""
    path = send_file(data_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "token": token, "written_by": "make run"}, out)
    return path


def _read_send_file(path: Path) -> Target | None:
    try:
        data = json.loads(path.read_text())
        return Target(str(data["url"]), str(data["token"]), source=str(path))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def target(url: str | None, token: str | None) -> Target:
    """Flags, else the environment, else ``make run``'s file; the file only when neither a URL
    nor a token is given (its token must not go to another URL)."""
    url = url or os.environ.get("ELEGERE_URL") or None
    token = token or os.environ.get("ELEGERE_TOKEN") or None
    if url is None and token is None:
        found = _read_send_file(send_file())
        if found is not None:
            return found
    return Target(url or DEFAULT_URL, token)


# ---------------------------------------------------------------- the command


def add_send_command(sub: Any) -> None:
    send = sub.add_parser(
        "send",
        help="send one message through the running service",
        description="Send one message through the running service. After `make run`, in the "
        f"same directory, it needs no URL or token (it reads .elegere/{SEND_FILE}).",
    )
    send.add_argument("--url", help=f"the service (or ELEGERE_URL; default {DEFAULT_URL})")
    send.add_argument("--token", help="or ELEGERE_TOKEN")
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


class _Refused(Exception):
    """A name that is not there: the message says which there are."""


def cmd_send(args: argparse.Namespace) -> int:
    import httpx
    from pydantic import ValidationError

    from ..errors import ElegereError
    from ..models import MessageIn, field_errors

    where = target(args.url, args.token)
    if not where.token:
        print(
            "elegere send: no token. Pass --token or set ELEGERE_TOKEN (make one with "
            "`elegere token create --sender --workspace Sales`, or `--user "
            f"admin@acme.example`); after `make run`, run it where make run runs (it reads "
            f"{send_file()}).",
            file=sys.stderr,
        )
        return 2
    headers = {"Authorization": f"Bearer {where.token}"}
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request says nothing
    try:
        with httpx.Client(base_url=f"{where.url.rstrip('/')}/api/v1", headers=headers) as http:
            ws, label = _workspace(http, args.workspace)
            message = MessageIn(
                sender=_sender(http, ws, label, args),
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
    except _Refused as exc:
        print(f"elegere send: {exc}", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"elegere send: the service at {where.url} did not answer ({exc}).", file=sys.stderr)
        if where.source:
            print(
                f"elegere send: the URL came from {where.source}, which `make run` writes: is "
                "it still running? Start it again, or pass --url and --token.",
                file=sys.stderr,
            )
        return 1
    except ElegereError as exc:
        print(f"elegere send: {exc}", file=sys.stderr)
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


def _listed(items: list[Any]) -> str:
    names = [repr(item["name"]) for item in items]
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def _pick(items: list[Any], name: str) -> Any | None:
    """The item with this id, or this name whatever its case (names are unique so)."""
    for item in items:
        if name == item["id"] or name.casefold() == item["name"].casefold():
            return item
    return None


def _workspace(http: Any, name: str) -> tuple[str, str]:
    """The workspace's id by its name or id, and its name. A sender token may not list
    workspaces: the service takes its workspace's name as well as its id."""
    response = http.get("/workspaces")
    if response.status_code == 403:
        return name, name
    workspaces = _ok(response)
    found = _pick(workspaces, name)
    if found is None:
        raise _Refused(
            f"there is no workspace {name!r} you can see; yours: {_listed(workspaces)}."
            if workspaces
            else f"there is no workspace {name!r} you can see (you see none)."
        )
    return str(found["id"]), str(found["name"])


def _sender(http: Any, ws: str, label: str, args: argparse.Namespace) -> Any:
    """The sender as the service takes it: a notification's event, or the custom action's or
    job's id (looked up by name when the token may list them; a sender token may not, and
    sends the name, which the service looks up)."""
    from ..models import MessageSender

    if args.notification:
        return MessageSender(kind="notification", event=args.notification)
    kind = "custom_action" if args.custom_action else "scheduler_job"
    value = args.custom_action or args.scheduler_job
    collection = kind.replace("_", "-") + "s"
    response = http.get(f"/workspaces/{quote(ws, safe='')}/{collection}")
    if response.status_code == 403:
        if re.fullmatch(rf"{ID_PREFIX[kind]}\w+", value):
            return MessageSender(kind=kind, id=value)
        return MessageSender(kind=kind, name=value)
    items = _ok(response)
    found = _pick(items, value)
    if found is None:
        what = kind.replace("_", " ")
        there = f"its {what}s: {_listed(items)}" if items else f"it has no {what} yet"
        raise _Refused(f"there is no {what} {value!r} in {label}; {there}.")
    return MessageSender(kind=kind, id=str(found["id"]))
