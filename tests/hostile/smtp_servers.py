"""Hostile SMTP servers on 127.0.0.1, on raw sockets: each speaks just enough to reach the
stage it attacks, then misbehaves. Plain module (no pytest).

::

    with HostileServer(garbage_banner(b"HTTP/1.1 400 Bad Request\\r\\n")) as srv:
        ... srv.port

A behaviour is a function of (connection, stop event); it runs in its own thread per
connection and may block: ``stop()`` closes every connection, which ends any send or read.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable

__all__ = [
    "Behaviour",
    "HostileServer",
    "drip_during_ehlo",
    "endless_multiline",
    "garbage_banner",
    "huge_banner_line",
    "random_garbage",
]

HOST = "127.0.0.1"
Behaviour = Callable[[socket.socket, threading.Event], None]


class HostileServer:
    """Accepts connections on 127.0.0.1 and hands each to ``behaviour`` in a thread."""

    def __init__(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((HOST, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.host = HOST
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        # The client hanging up is the normal end of every attack.
        with contextlib.suppress(OSError), conn:
            self._behaviour(conn, self._stop)

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_line(conn: socket.socket, stop: threading.Event, limit: int = 4096) -> bytes:
    """One command line from the client (its content does not matter to these servers)."""
    conn.settimeout(0.05)
    data = b""
    while not stop.is_set() and b"\n" not in data and len(data) < limit:
        try:
            chunk = conn.recv(limit)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


def _hold(conn: socket.socket, stop: threading.Event) -> None:
    """Keep the connection open, saying nothing more, until the client or the test ends it."""
    _read_line(conn, stop, limit=1 << 20)
    stop.wait(0.05)


def garbage_banner(payload: bytes, *, close: bool = False) -> Behaviour:
    """Greets with ``payload`` (an HTTP answer, random bytes), then holds or closes."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(payload)
        if not close:
            _hold(conn, stop)

    return behave


def random_garbage(seed: int, size: int = 2048) -> bytes:
    """``size`` random bytes that end a line: a reproducible stranger on an SMTP port."""
    return random.Random(seed).randbytes(size) + b"\r\n"


def huge_banner_line(size: int = 1024 * 1024) -> Behaviour:
    """A greeting line of ``size`` bytes that never ends: what the client buffers is the risk."""
    return garbage_banner(b"220 " + b"A" * size)


def endless_multiline(*, at_greeting: bool) -> Behaviour:
    """``220-``/``250-`` continuation lines, as fast as the socket takes them, never a last one."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        code = b"220"
        if not at_greeting:
            conn.sendall(b"220 hostile.test ESMTP\r\n")
            _read_line(conn, stop)  # EHLO
            code = b"250"
        line = code + b"-" + b"x" * 1000 + b"\r\n"
        block = line * 64
        while not stop.is_set():
            conn.sendall(block)

    return behave


def drip_during_ehlo(interval: float = 1.0) -> Behaviour:
    """A proper greeting; then the answer to EHLO, one byte every ``interval`` seconds."""

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"220 hostile.test ESMTP\r\n")
        _read_line(conn, stop)
        reply = b"250-hostile.test greets you slowly\r\n" * 1000
        for byte in reply:
            if stop.wait(interval):
                return
            conn.sendall(bytes([byte]))

    return behave
