"""Child processes that all stop together: their own process groups, terminate, then kill.

Each child runs in a new session, so a Ctrl-C in the terminal reaches only the launcher, which
then stops the children in order instead of every process reacting on its own (Voilà, for one,
would ask "Shutdown this server?"). Two safety nets for what a plain terminate misses:

- Jupyter kernels start in sessions of their own: their PIDs are collected before the stop
  and any that survive are killed too;
- on Linux each child gets ``PR_SET_PDEATHSIG``: if the launcher itself is killed (SIGKILL, no
  chance to clean up), the kernel sends the child SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
# Looked up here, in the parent: a child between fork and exec should only make the call.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


@dataclass
class Child:
    """A started child: its name for messages, the process, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _death_signal() -> None:
    """Runs in the child between fork and exec: die with the parent (Linux only).

    ``launch`` spawns before it starts any thread: code after a fork in a threaded process
    may deadlock, so this does no more than one system call.
    """
    parent = os.getppid()
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os._exit(1)


def spawn(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
) -> Child:
    """Start ``argv`` in a new session, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_death_signal if _PRCTL is not None else None,
        )
    return Child(name, process, log_path)


def descendants(pid: int) -> list[Any]:
    """Every process below ``pid``, as ``psutil.Process`` objects, which know their start
    time: a PID the system has since given to another process is never signalled. psutil
    comes with ipykernel; without it, none are known."""
    try:
        import psutil
    except ImportError:
        return []
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _send(proc: Any, sig: signal.Signals) -> None:
    import psutil

    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)  # refuses a PID that was reused


def _signal_group(child: Child, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def stop_all(children: Iterable[Child], *, timeout: float = 10.0) -> None:
    """Terminate every child's process group, wait up to ``timeout`` s, then kill what is left
    (the groups, and any descendant seen before the stop)."""
    children = list(children)
    seen = [proc for child in children if child.running() for proc in descendants(child.pid)]
    for child in children:
        if child.running():
            _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        if child.running():  # once reaped, its PID (and group id) may belong to another
            _signal_group(child, signal.SIGKILL)
            child.process.wait(5)
    # Kernels run in sessions of their own; Voilà shuts them down on SIGTERM, but a kernel
    # stuck in a cell would not listen.
    stragglers = [proc for proc in seen if _alive(proc)]
    for proc in stragglers:
        _send(proc, signal.SIGTERM)
    end = time.monotonic() + 3.0
    while stragglers and time.monotonic() < end:
        stragglers = [proc for proc in stragglers if _alive(proc)]
        time.sleep(0.05)
    for proc in stragglers:
        _send(proc, signal.SIGKILL)


def wait_until_answers(url: str, child: Child, *, timeout: float) -> float:
    """Poll ``url`` until it answers with any HTTP status; the seconds it took.

    RuntimeError when the child exits first or the time runs out (the log's tail in the
    message, since the child's output goes to its log file).
    """
    start = time.monotonic()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    while True:
        try:
            with opener.open(url, timeout=2):
                return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start  # it answered: an error status is an answer
        except (urllib.error.URLError, OSError):
            pass
        if not child.running():
            raise RuntimeError(
                f"The {child.name} stopped while starting (exit code {child.process.returncode})."
                f" The end of {child.log_path}:\n{child.log_tail()}"
            )
        if time.monotonic() - start > timeout:
            raise RuntimeError(
                f"The {child.name} did not answer at {url} within {timeout:.0f} s. "
                f"The end of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(0.1)
