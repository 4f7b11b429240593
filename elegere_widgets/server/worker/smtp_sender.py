"""SMTP delivery: the connection test's session, kept open for consecutive messages.

The connection is set up by ``SmtpRun``, as the connection test's is, and opened by
``SmtpSession.open`` (resolve once through the egress guard and pin the address; TLS as the
settings require; a password only over an encrypted connection; with OAuth 2.0 the app's
certificate and token first, then AUTH XOAUTH2), so a message goes out on exactly the terms
the connection test checked. The token comes from the process's cache while it has more than
a few minutes to live, so reconnecting does not sign in again. One connection per
server per worker thread; it is reused for the next message (RSET first when a transaction
was left open), reopened when the server dropped it, and closed after ``smtp_idle_s`` unused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING

from ...connectivity.egress import EgressPolicy
from ...connectivity.smtp import OAuthEndpoints, SmtpRun, said
from ...connectivity.smtp_hints import SmtpExplainer, reply_detail
from ...connectivity.smtp_transport import PinnedSMTP, Watchdog
from ...connectivity.stages import Budget, StageFailed
from ...models import SmtpSettings
from .compose import Outgoing, compose, needs_smtputf8, wire_bytes
from .outcome import Attempt, Outcome, RecipientResult

if TYPE_CHECKING:
    from ...connectivity.app_token import TokenCache

__all__ = ["SmtpConnection", "SmtpConnections"]

log = logging.getLogger(__name__)


def _envelope_address(address: str, smtputf8: bool) -> str | None:
    """The address as MAIL/RCPT carry it: an IDN domain as A-labels without SMTPUTF8; None
    when the local part is not ASCII and the server cannot take it."""
    if smtputf8 or address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return None
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


def _arm_watchdog(conn: PinnedSMTP, seconds: float) -> None:
    """A fresh deadline for this message. The socket may be TLS-wrapped (which cannot be
    dup()'ed), so the watchdog gets a plain socket on a duplicate of its descriptor."""
    if conn.watchdog is not None:
        conn.watchdog.cancel()
        conn.watchdog = None
    assert conn.sock is not None
    raw = socket.socket(fileno=os.dup(conn.sock.fileno()))
    try:
        conn.watchdog = Watchdog(raw, seconds)
    finally:
        raw.close()


def _code(code: str | None) -> int | None:
    """An SMTP reply code as a delivery keeps it (not AADSTS… nor other words)."""
    return int(code) if code and code.isdigit() else None


class _ConnectionLost(Exception):
    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.cause = cause


@dataclass
class SmtpConnection:
    """One server's connection, used by one worker thread at a time (``lock``)."""

    settings: SmtpSettings
    egress: EgressPolicy
    ssl_context: ssl.SSLContext | None
    budget_s: float
    #: Where an OAuth 2.0 server's app signs in (the service's authority and its CAs).
    oauth: OAuthEndpoints = field(default_factory=OAuthEndpoints)
    #: Its tokens, per credential (the process's cache); None signs in on every connection.
    token_cache: TokenCache | None = field(default=None, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last_used: float = field(default_factory=time.monotonic)
    conn: PinnedSMTP | None = field(default=None, repr=False)
    explainer: SmtpExplainer | None = field(default=None, repr=False)
    #: A transaction (MAIL FROM …) is open on the server: RSET before the next one.
    dirty: bool = False
    #: Masks this connection's secrets (the password, or the token it signed in with) in
    #: whatever a server says, and cuts it to a stage's length.
    redact: Callable[[str], str] = field(default=lambda text: text, repr=False)

    # ------------------------------------------------------------------ lifecycle

    def _open(self) -> Attempt | None:
        """Connect as the connection test does; on failure the attempt that says why (every
        recipient deferred), in the test's words: the reply, then the hint."""
        s = self.settings
        run = SmtpRun(
            s,
            egress=self.egress,
            budget_s=self.budget_s,
            ssl_context=self.ssl_context,
            recipient=s.sender_address,
            oauth=self.oauth,
            token_cache=self.token_cache,
        )
        try:
            self.conn = run.start().open()
        except StageFailed:
            run.close()
            failed = run.recorder.failed
            assert failed is not None
            return Attempt.server_failure(
                stage=failed.name, code=_code(failed.code), reply=said(failed.detail, failed.hint)
            )
        self.explainer = run.explainer
        self.redact = run.redact
        self.dirty = False
        return None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            if conn.sock is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    _arm_watchdog(conn, 1.0)
                    conn.budget = Budget(1.0)
                    conn.arm()
                    conn.quit()
        finally:
            conn.dispose()

    # ------------------------------------------------------------------ one message

    def send(self, message: Outgoing) -> Attempt:
        """Deliver ``message`` to its pending recipients; never raises for the network."""
        with self.lock:
            try:
                reused = self.conn is not None
                if self.conn is None and (failure := self._open()) is not None:
                    return failure
                try:
                    return self._transaction(message)
                except _ConnectionLost as lost:
                    self.close()
                    if not (reused and lost.stage == "sender"):
                        return self._lost(lost)
                # The server dropped an idle connection: one fresh one, then give up.
                if (failure := self._open()) is not None:
                    return failure
                try:
                    return self._transaction(message)
                except _ConnectionLost as lost:
                    self.close()
                    return self._lost(lost)
            finally:
                self.last_used = time.monotonic()

    def _lost(self, lost: _ConnectionLost) -> Attempt:
        assert self.explainer is not None
        failure = self.explainer(lost.stage, lost.cause)
        return Attempt.server_failure(
            stage=lost.stage,
            code=_code(failure.code),
            reply=self.redact(said(failure.detail, failure.hint)),
        )

    def _step(self, stage: str, fn: Callable[[], tuple[int, bytes]]) -> tuple[int, str]:
        conn = self.conn
        assert conn is not None
        try:
            conn.arm()
            code, reply = fn()
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise _ConnectionLost(stage, exc) from None
        if code == -1 and not reply:
            raise _ConnectionLost(stage, smtplib.SMTPServerDisconnected("Connection closed"))
        if code == 421:  # the server is closing the connection (often: it was idle too long)
            raise _ConnectionLost(stage, smtplib.SMTPResponseException(code, reply))
        return code, self.redact(reply_detail(code, reply))

    def _transaction(self, message: Outgoing) -> Attempt:
        conn = self.conn
        assert conn is not None
        sender = self.settings.sender_address
        try:
            built = compose(sender, message)
        except (ValueError, TypeError) as exc:  # a header the email package refuses
            return Attempt.refused_all(
                message.pending,
                stage="data",
                code=None,
                reply=f"The message cannot be sent as given ({exc}); send it again without "
                "line breaks in the subject, names or addresses.",
            )
        conn.budget = Budget(self.budget_s)
        _arm_watchdog(conn, self.budget_s)
        try:
            return self._envelope_and_data(conn, sender, message, built)
        finally:
            if conn.watchdog is not None:
                conn.watchdog.cancel()
                conn.watchdog = None

    def _envelope_and_data(
        self, conn: PinnedSMTP, sender: str, message: Outgoing, built: EmailMessage
    ) -> Attempt:
        wide = needs_smtputf8(sender, message) and conn.has_extn("smtputf8")
        if self.dirty:
            self._step("sender", conn.rset)
            self.dirty = False
        options = ["SMTPUTF8", "BODY=8BITMIME"] if wide else []
        envelope_sender = _envelope_address(sender, wide)
        if envelope_sender is None:
            return Attempt.server_failure(
                stage="sender",
                code=None,
                reply=f"The Sender Address {sender} is not ASCII and the server does not offer "
                "SMTPUTF8: use an ASCII Sender Address for this server.",
            )
        code, reply = self._step("sender", lambda: conn.mail(envelope_sender, options))
        if code != 250:
            self.dirty = True
            return Attempt.server_failure(stage="sender", code=code, reply=reply)
        self.dirty = True
        results: dict[str, RecipientResult] = {}
        accepted: list[str] = []
        for address in message.pending:
            wire = _envelope_address(address, wide)
            if wire is None:
                results[address] = RecipientResult(
                    "failed",
                    None,
                    f"{address}: the server does not offer SMTPUTF8, which an address that "
                    "is not ASCII needs; use an ASCII address for this recipient.",
                )
                continue
            code, reply = self._step("recipient", lambda w=wire: conn.rcpt(w))  # type: ignore[misc]
            if code in (250, 251):
                accepted.append(address)
            elif 500 <= code < 600:
                results[address] = RecipientResult("failed", code, reply, "recipient")
            else:
                results[address] = RecipientResult("deferred", code, reply, "recipient")
        if not accepted:
            return Attempt.of(results, stage="recipient")
        data = wire_bytes(built, smtputf8=wide)
        code, reply = self._step("data", lambda: conn.data(data))
        self.dirty = code != 250
        outcome: Outcome = "sent" if code == 250 else "failed" if 500 <= code < 600 else "deferred"
        for address in accepted:
            results[address] = RecipientResult(outcome, code, reply)
        return Attempt.of(results, stage="data")


class SmtpConnections:
    """Every SMTP connection of one worker process: per thread, per server (and version)."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._local = threading.local()
        self._all: list[SmtpConnection] = []
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int], make: Callable[[], SmtpConnection]) -> SmtpConnection:
        mine: dict[tuple[str, int], SmtpConnection] | None = getattr(self._local, "conns", None)
        if mine is None:
            mine = self._local.conns = {}
        connection = mine.get(key)
        if connection is None:
            connection = mine[key] = make()
            with self._lock:
                self._all.append(connection)
        return connection

    def close_idle(self) -> int:
        """Close connections unused for ``idle_s`` (never one a thread is sending on)."""
        closed = 0
        now = time.monotonic()
        with self._lock:
            candidates = list(self._all)
        for connection in candidates:
            if connection.conn is None or now - connection.last_used < self.idle_s:
                continue
            if connection.lock.acquire(blocking=False):
                try:
                    connection.close()
                    closed += 1
                finally:
                    connection.lock.release()
        return closed

    def close_all(self) -> None:
        with self._lock:
            candidates = list(self._all)
        for connection in candidates:
            with connection.lock:
                connection.close()
