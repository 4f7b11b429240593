"""``make run``'s launcher as a person runs it: a process in a terminal, read line by line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

LAUNCH = [sys.executable, "-m", "elegere_widgets.dashboard.launch"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Launcher:
    """``python -m elegere_widgets.dashboard.launch`` in ``cwd``, its output collected."""

    def __init__(
        self, cwd: Path, service_port: int, voila_port: int, *args: str, **env: str
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ELEGERE_")}
        full_env |= {"ELEGERE_PORT": str(service_port), "VOILA_PORT": str(voila_port), **env}
        self.process = subprocess.Popen(
            [*LAUNCH, *args],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None:
                self._reader.join(5)
                if text in self.output:
                    break
                raise AssertionError(f"the launcher exited before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}")
            time.sleep(0.05)
        return self.output

    def token(self) -> str:
        found = re.search(r"API token of admin@acme\.example: (elg_\S+)", self.output)
        assert found, self.output
        return found.group(1)

    def smtp_port(self) -> int:
        found = re.search(r"Port:\s+(\d+)", self.output)
        assert found, self.output
        return int(found.group(1))

    def descendants(self) -> list[psutil.Process]:
        try:
            return list(psutil.Process(self.process.pid).children(recursive=True))
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill_everything(self) -> None:
        """Test cleanup: whatever is left, gone (a failing test must not leak servers)."""
        left = self.descendants()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.process.wait(10)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = alive(processes)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = alive(left)
    return left
