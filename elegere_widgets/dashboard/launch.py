"""``make run``: the service, its worker, a demo SMTP server and the Voilà dashboard; Ctrl-C
stops them all.

::

    python -m elegere_widgets.dashboard.launch            # signed in as the demo Workspace Admin
    python -m elegere_widgets.dashboard.launch --sign-in  # the page asks for email and password

Ports come from ``ELEGERE_PORT`` (8765) and ``VOILA_PORT`` (8866); the store, the demo
certificates and the logs live in ``.elegere/`` (``ELEGERE_DATA_DIR``). The store gets the demo
data only when it is empty, so a second run keeps what the user changed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from ..server.config import DEFAULT_DATA_DIR
from ..server.send_cli import send_file, write_send_file
from .demo import ENV as DEMO_ENV
from .demo_mail import SEND_WORKSPACE, DemoMail, prepare_demo
from .demo_smtp import DEFAULT_PORT as SMTP_PORT
from .demo_smtp import DemoSmtpServer
from .processes import Child, spawn, stop_all, wait_until_answers

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "email_servers.ipynb"
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
VOILA_TEMPLATE = "elegere"
ADMIN = "admin@acme.example"
HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
#: The worker's health checks in the demo: every 30 s rather than daily, so that a stopped
#: SMTP peer shows degraded, then failing (three checks), while one watches.
DEMO_HEALTH_INTERVAL_S = "30"


class Stop(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: stop everything. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""


def service_command(port: int) -> list[str]:
    """The service as ``make run`` starts it: loopback only, and connection tests may reach
    loopback (the demo SMTP server)."""
    return [
        sys.executable,
        "-m",
        "elegere_widgets.server.cli",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--egress-allow",
        "127.0.0.0/8",
        "--log-level",
        "warning",
    ]


def worker_command() -> list[str]:
    """The worker beside the service: it delivers the messages the service accepts, and may
    reach loopback (the demo SMTP server) like the service's connection tests."""
    return [
        sys.executable,
        "-m",
        "elegere_widgets.server.cli",
        "worker",
        "--threads",
        "2",
        "--egress-allow",
        "127.0.0.0/8",
    ]


def voila_command(port: int, notebook: Path = NOTEBOOK) -> list[str]:
    """Voilà as ``make run`` starts it; run it with the repository as the working directory,
    where ``voila.json`` (sources stripped, a preheated kernel) is read, and with
    :func:`voila_environment` (where the ``elegere`` template is found)."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--Voila.port_retries=0",
        f"--template={VOILA_TEMPLATE}",
    ]


def voila_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the package's Jupyter data directory first on ``JUPYTER_PATH``: Voilà
    finds templates only there, and the ``elegere`` template (the lab one with the page's
    ARIA landmarks) lives in the package."""
    paths = [str(JUPYTER_DATA), *filter(None, env.get("JUPYTER_PATH", "").split(os.pathsep))]
    return {**env, "JUPYTER_PATH": os.pathsep.join(paths)}


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        port = int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a port number.") from None
    if not 1 <= port <= 65535:
        raise SystemExit(f"{name}={port} is not a port number (1-65535).")
    return port


def prepare_store(data_dir: Path) -> tuple[bool, str]:
    """Migrate, seed the demo data when the store is empty, and make a token for the demo
    Workspace Admin: (whether the demo data was added, the token). The store as the demo
    seeds it: its servers still point at made-up hosts (``_run`` points them at the demo
    SMTP server)."""
    demo = prepare_demo(data_dir, ADMIN, None)
    return demo.added, demo.admin_token


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def _print(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sign-in",
        action="store_true",
        help="give the dashboard no token: it shows the sign-in form (password: demo)",
    )
    args = parser.parse_args(argv)
    service_port = _env_port("ELEGERE_PORT", 8765)
    voila_port = _env_port("VOILA_PORT", 8866)
    taken = [
        f"{name}={port}"
        for name, port in (("ELEGERE_PORT", service_port), ("VOILA_PORT", voila_port))
        if not _port_free(port)
    ]
    if taken:
        _print(
            f"Port {' and '.join(taken)} is in use (another `make run`?). Stop it, or pick free "
            "ports: ELEGERE_PORT=9765 VOILA_PORT=9866 make run"
        )
        return 1
    data_dir = Path(os.environ.get("ELEGERE_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
    children: list[Child] = []
    from ..server.files import private_dir

    private_dir(data_dir)  # 0700 before anything is put in it (the store warns otherwise)
    smtp = DemoSmtpServer(data_dir / "demo-smtp", on_message=_tell_message)
    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)
        return _run(args, service_port, voila_port, data_dir, smtp, children)
    except Stop:
        return 0
    except (RuntimeError, OSError) as exc:  # a child that did not start, a port taken
        _print(str(exc))
        return 1
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave processes behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if any(child.running() for child in children):
            _print("", f"Stopping (at most {STOP_TIMEOUT_S:.0f} s)…")
        stop_all(children, timeout=STOP_TIMEOUT_S)
        smtp.stop()
        send_file(data_dir).unlink(missing_ok=True)  # `elegere send` must not find a gone service
        _print("Stopped: nothing of `make run` is running any more.")


def _run(
    args: argparse.Namespace,
    service_port: int,
    voila_port: int,
    data_dir: Path,
    smtp: DemoSmtpServer,
    children: list[Child],
) -> int:
    started = time.monotonic()
    # The CA before the service starts (it must trust it) and the port before the store is
    # prepared (the demo's servers point at it); the SMTP server's thread only after every
    # child is spawned (see processes._death_signal).
    smtp_info = smtp.prepare()
    _print(f"Preparing the store in {data_dir} …")
    try:
        demo = prepare_demo(data_dir, ADMIN, smtp_info)
    except Exception as exc:  # a bad ELEGERE_SECRET_KEY or database URL: say it plainly
        _print(f"The store could not be prepared: {exc}")
        return 2
    _print(
        "  demo data added"
        if demo.added
        else "  kept as you left it (the demo data is added only once)"
    )
    token = demo.admin_token
    assert smtp.pki is not None
    ca_file, smtp_port = smtp.pki.ca_file, smtp_info.port
    service_url = f"http://{HOST}:{service_port}"
    base = {k: v for k, v in os.environ.items() if k not in ("ELEGERE_TOKEN", DEMO_ENV)}
    # The service gets the user's ELEGERE_* settings (database, key); the dashboard's kernel
    # needs none of them, and should not hold the key that encrypts stored passwords.
    service_env = base | {
        "ELEGERE_DATA_DIR": str(data_dir),
        "ELEGERE_SMTP_CA_FILE": str(ca_file),
        # The user's own interval wins.
        "ELEGERE_HEALTH_INTERVAL_S": base.get("ELEGERE_HEALTH_INTERVAL_S")
        or DEMO_HEALTH_INTERVAL_S,
    }
    service_argv = service_command(service_port)
    if smtp_port != SMTP_PORT:
        # 2525 is a mail port the egress guard allows; the next free one needs allowing.
        service_argv += ["--egress-allow-port", str(smtp_port)]
    logs = data_dir / "logs"
    children.append(
        spawn(
            "service",
            service_argv,
            env=service_env,
            cwd=Path.cwd(),
            log_path=logs / "service.log",
        )
    )
    voila_env = {k: v for k, v in base.items() if not k.startswith("ELEGERE_")}
    voila_env |= {"ELEGERE_URL": service_url, DEMO_ENV: smtp_info.to_env()}
    if not args.sign_in:
        voila_env["ELEGERE_TOKEN"] = token
    children.append(
        spawn(
            "dashboard (Voilà)",
            voila_command(voila_port),
            env=voila_environment(voila_env),
            cwd=ROOT,
            log_path=logs / "voila.log",
        )
    )
    worker_argv = worker_command()
    if smtp_port != SMTP_PORT:
        worker_argv += ["--egress-allow-port", str(smtp_port)]
    children.append(
        spawn("worker", worker_argv, env=service_env, cwd=Path.cwd(), log_path=logs / "worker.log")
    )
    smtp.start()
    _print("Starting the service and the dashboard (the first start takes a while) …")
    wait_until_answers(f"{service_url}/api/v1/me", children[0], timeout=START_TIMEOUT_S)
    wait_until_answers(
        f"http://{HOST}:{voila_port}/voila/static/", children[1], timeout=START_TIMEOUT_S
    )
    who = (
        "the sign-in form (any demo user, password 'demo')"
        if args.sign_in
        else f"signed in as {ADMIN}, Workspace Admin of Sales"
    )
    assert demo.sender_token is not None
    found_in = write_send_file(data_dir, service_url, demo.sender_token)
    _print(
        "",
        f"Dashboard:  http://{HOST}:{voila_port}   ({who})",
        f"Service:    {service_url}   (API docs: {service_url}/api/v1/docs)",
        f"API token of {ADMIN}: {token}",
        "",
        "Demo SMTP server: it lists here each message it receives, and delivers none. "
        + _routed(demo),
        "To try Add Email Server → SMTP, type:",
        *(f"  {line}" for line in smtp_info.lines()),
        "",
        "Send a message: in a second terminal, in this directory, run",
        f"  {send_command(data_dir)}",
        "It shows up here as a [demo SMTP] line within seconds, and in the dashboard's audit "
        f"(deliveries). `elegere send` finds this service, and a sender token of {SEND_WORKSPACE}, "
        f"in {_shown(found_in)}.",
        "",
        f"Health checks of every server: every {service_env['ELEGERE_HEALTH_INTERVAL_S']} s "
        "(ELEGERE_HEALTH_INTERVAL_S)",
        f"Logs: {logs}/   Ready in {time.monotonic() - started:.1f} s. Ctrl-C stops everything.",
    )
    while True:
        for child in children:
            if not child.running():
                _print(
                    f"The {child.name} stopped (exit code {child.process.returncode}); stopping "
                    f"the rest. The end of {child.log_path}:",
                    child.log_tail(),
                )
                return 1
        time.sleep(0.25)


def _routed(demo: DemoMail) -> str:
    if demo.routed:
        return f"The demo's mail goes to it: {' and '.join(demo.routed)} send through it."
    return (
        "No server sends through it now (the demo's servers were changed): add it as below "
        "and choose it for Send quote, to see your messages here."
    )


def _shown(path: Path) -> str:
    """``path`` as short as it can be typed from the current directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def send_command(data_dir: Path) -> str:
    """The ``elegere send`` line to paste into a second terminal opened in this directory."""
    script = Path(sys.executable).with_name("elegere")  # the venv's console script
    program = [_shown(script)] if script.exists() else [sys.executable, "-m", "elegere_widgets.cli"]
    words = [
        *program,
        "send",
        "--workspace",
        SEND_WORKSPACE,
        "--custom-action",
        "Send quote",
        "--to",
        "you@example.org",
        "--subject",
        "Hello",
        "--text",
        "My first message.",
    ]
    command = shlex.join(words)
    if data_dir == (Path.cwd() / DEFAULT_DATA_DIR).resolve():
        return command
    # `elegere send` looks for the service in ./.elegere unless told where the data is (the
    # name unquoted: a quoted assignment is not one to the shell).
    return f"ELEGERE_DATA_DIR={shlex.quote(str(data_dir))} {command}"


def _tell_message(sender: str, recipients: list[str], subject: str, message_id: str) -> None:
    # One line per message, with what finds it again: `elegere send` prints the Message-ID,
    # GET …/messages/{id} and the audit's deliveries show it too.
    _print(
        f"[demo SMTP] From: {sender}  To: {', '.join(recipients)}  Subject: {subject!r}  "
        f"Message-ID: {message_id or '(none)'}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
