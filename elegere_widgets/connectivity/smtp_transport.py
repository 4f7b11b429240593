"""The socket side of the SMTP test: a pinned address and a hard deadline.

smtplib's ``timeout`` applies to each socket operation, so a server that drips one byte at a
time, or a TLS handshake that stalls, can hold a test far past its budget. ``PinnedSMTP``
re-arms the socket timeout to what is left of the budget before every command, and a
``Watchdog`` shuts the connection down when the deadline passes, which wakes any blocked read.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import smtplib
import socket
import ssl
import threading

from .stages import Budget

__all__ = ["PinnedSMTP", "Watchdog", "speaks_tls_first", "wait_readable"]


class Watchdog:
    """Shuts a connection down at a deadline, whatever the thread using it is blocked in."""

    def __init__(self, sock: socket.socket, delay: float) -> None:
        # A duplicate descriptor of the same connection: the original socket object is
        # detached when it is wrapped in TLS, but shutdown() on the duplicate still ends the
        # connection underneath, and the duplicate keeps the descriptor number from being
        # reused by someone else before we cancel.
        self._kill_switch = sock.dup()
        self.fired = False
        self._timer = threading.Timer(max(delay, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        with contextlib.suppress(OSError):
            self._kill_switch.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
        # Waits for a _fire that already started, so the descriptor is not closed under it.
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join()
        self._kill_switch.close()


def _address_literal(address: str) -> str:
    """The EHLO argument for our end of the socket: an RFC 5321 address literal, no DNS."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return f"[IPv6:{ip}]" if ip.version == 6 else f"[{ip}]"


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
