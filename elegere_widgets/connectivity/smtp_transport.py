"""The socket side of the SMTP test: a pinned address and a hard deadline.

smtplib's ``timeout`` applies to each socket operation, so a server that drips one byte at a
time, or a TLS handshake that stalls, can hold a test far past its budget. ``PinnedSMTP``
re-arms the socket timeout to what is left of the budget before every command, and a
``Watchdog`` shuts the connection down when the deadline passes, which wakes any blocked read.

What a server sends is bounded too: ``PinnedSMTP.getreply`` refuses a reply line over 8 KiB
(as smtplib does) and a reply of more lines than any SMTP server sends, where smtplib would
collect continuation lines until memory runs out.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import select
import smtplib
import socket
import ssl
import threading
import time

from .stages import Budget

__all__ = [
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "PinnedSMTP",
    "ReplyTooLong",
    "Watchdog",
    "speaks_tls_first",
    "wait_readable",
]

#: smtplib's own limit for one line (RFC 5321 asks for 512 octets; servers exceed it a little).
MAX_REPLY_LINE = 8192
#: An EHLO answer lists a dozen or two extensions; a hundred lines is no SMTP server.
MAX_REPLY_LINES = 100


class ReplyTooLong(smtplib.SMTPException):
    """The server's reply did not end where any SMTP reply ends: a line or a reply too long."""


class _Deadlines:
    """One thread that fires every watchdog at its deadline.

    A thread of its own per connection cost more than a whole SMTP conversation on loopback:
    ``Thread.start`` waits until the new thread runs, and ``join`` until it ends.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, dog: Watchdog, deadline: float) -> None:
        with self.lock:
            heapq.heappush(self._heap, (deadline, next(self._order), dog))
            if self._thread is None or not self._thread.is_alive():  # first use, or a fork
                self._thread = threading.Thread(target=self._run, name="smtp-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is dog:  # sooner than what the thread waits for
                self.lock.notify()

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                if self._heap and (self._heap[0][2].cancelled or self._heap[0][0] <= now):
                    _, _, dog = heapq.heappop(self._heap)
                    if not dog.cancelled:
                        dog.fire()  # holding the lock: cancel() cannot close it meanwhile
                    continue
                self.lock.wait(self._heap[0][0] - now if self._heap else None)


class Watchdog:
    """Shuts a connection down at a deadline, whatever the thread using it is blocked in."""

    def __init__(self, sock: socket.socket, delay: float) -> None:
        # A duplicate descriptor of the same connection: the original socket object is
        # detached when it is wrapped in TLS, but shutdown() on the duplicate still ends the
        # connection underneath, and the duplicate keeps the descriptor number from being
        # reused by someone else before we cancel.
        self._kill_switch = sock.dup()
        self.fired = False
        self.cancelled = False
        _DEADLINES.add(self, time.monotonic() + max(delay, 0.0))

    def fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            self._kill_switch.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        # Under the lock a fire runs with: one already started ends first, none starts after,
        # so the descriptor is not closed under it.
        with _DEADLINES.lock:
            self.cancelled = True
        self._kill_switch.close()


_DEADLINES = _Deadlines()


def _address_literal(address: str) -> str:
    """The EHLO argument for our end of the socket (as ``getsockname`` writes it, already in
    its canonical form): an RFC 5321 address literal, no DNS."""
    address = address.split("%", 1)[0]  # an IPv6 zone is local to this host
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


class PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP connected to an address resolved (and checked) beforehand.

    ``self._host`` stays the host name the user typed: smtplib passes it as ``server_hostname``
    to ``wrap_socket`` in ``starttls()``, so SNI and certificate checks use the name while the
    TCP connection goes to the pinned address. Implicit TLS wraps the same way (``wrap_tls``),
    which is what ``smtplib.SMTP_SSL`` does, but as its own step so it can be timed alone.
    """

    def __init__(self, host: str, address: str, port: int, budget: Budget) -> None:
        # No host here: smtplib would connect at once. An explicit local_hostname spares the
        # socket.getfqdn() lookup smtplib does otherwise, which can stall on DNS.
        super().__init__(local_hostname="localhost", timeout=max(budget.remaining(), 0.001))
        self._host = host
        self.address = address
        self.port = port
        self.budget = budget
        self.watchdog: Watchdog | None = None

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # `host` is deliberately unused: resolving it again could answer a different address.
        return socket.create_connection((self.address, port), timeout)

    @property
    def timed_out(self) -> bool:
        return self.budget.expired or (self.watchdog is not None and self.watchdog.fired)

    @property
    def encrypted(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def arm(self, limit: float | None = None) -> None:
        """Before each operation: give it what is left of the budget (or ``limit``), no more."""
        remaining = self.budget.remaining()
        if remaining <= 0:
            raise TimeoutError("the time budget ran out")
        if limit is not None:
            remaining = min(remaining, limit)
        self.timeout = remaining
        if self.sock is not None:
            self.sock.settimeout(remaining)

    def open(self) -> None:
        """The TCP connection, and the watchdog that ends it at the deadline."""
        self.arm()
        sock = self._get_socket(self._host, self.port, self.budget.remaining())
        self.sock, self.file = sock, None
        self.local_hostname = _address_literal(sock.getsockname()[0])
        self.watchdog = Watchdog(sock, self.budget.remaining())

    def wrap_tls(self, context: ssl.SSLContext) -> None:
        """Implicit TLS: the handshake right after connecting, before any SMTP byte."""
        self.arm()
        assert self.sock is not None
        self.sock = context.wrap_socket(self.sock, server_hostname=self._host)
        self.file = None

    def tls_summary(self) -> str:
        if not isinstance(self.sock, ssl.SSLSocket):
            return "unencrypted"
        cipher = self.sock.cipher()
        return f"{self.sock.version()}, {cipher[0]}" if cipher else str(self.sock.version())

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's ``getreply``, with the number of lines bounded and a cut line refused.

        A line that ends without its line end is the connection closing mid-reply (the
        watchdog's shutdown, or the server): smtplib would take its first bytes as a reply
        code and carry on as if the server had answered.
        """
        if self.file is None:
            assert self.sock is not None
            self.file = self.sock.makefile("rb")
        lines: list[bytes] = []
        while True:
            try:
                line = self.file.readline(MAX_REPLY_LINE + 1)
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    f"Connection unexpectedly closed: {exc}"
                ) from exc
            if len(line) > MAX_REPLY_LINE:
                self.close()
                raise ReplyTooLong(f"a reply line of over {MAX_REPLY_LINE} bytes")
            if not line.endswith(b"\n"):
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    "Connection closed in the middle of a reply" if line else "Connection closed"
                )
            try:
                code = int(line[:3])
            except ValueError:
                # Not a reply code: keep the line whole ("HTTP/1.1 400 …"), read no further.
                return -1, b"\n".join([*lines, line.strip(b" \t\r\n")])
            lines.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] != b"-":
                return code, b"\n".join(lines)
            if len(lines) >= MAX_REPLY_LINES:
                self.close()
                raise ReplyTooLong(f"a reply of over {MAX_REPLY_LINES} lines")

    def forget_credentials(self) -> None:
        # smtplib.login() keeps the password on the object for its auth callbacks.
        self.user = self.password = ""

    def dispose(self) -> None:
        self.forget_credentials()
        if self.watchdog is not None:
            self.watchdog.cancel()
        self.close()


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer sent something (or closed) within ``seconds``, without reading it."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], max(seconds, 0.0))
    return bool(readable)


def speaks_tls_first(address: str, port: int, host: str, budget: Budget, limit: float) -> bool:
    """On a fresh connection, whether the server answers a TLS ClientHello.

    Used only to explain a server that never greets in plain SMTP: if it completes a TLS
    handshake, it is an implicit-TLS port. Nothing is sent after the handshake, so the
    certificate need not be trusted for this question.
    """
    timeout = min(budget.remaining(), limit)
    if timeout <= 0:
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection((address, port), timeout)
    except OSError:
        return False
    watchdog = Watchdog(raw, timeout)
    try:
        with context.wrap_socket(raw, server_hostname=host):
            return True
    except (OSError, ValueError):
        return False
    finally:
        watchdog.cancel()
        raw.close()
