"""One SMTP conversation, stage by stage, shared by the connection test and sending."""

from __future__ import annotations

import contextlib
import email.policy
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import NoReturn

from ..models import SmtpSettings
from .egress import EgressPolicy
from .smtp_hints import SmtpExplainer, exchange_password_note, reply_detail
from .smtp_transport import PinnedSMTP, speaks_tls_first, wait_readable
from .stages import Budget, Failure, StageFailed, StageRecorder

__all__ = ["BearerLogin", "PasswordLogin", "SmtpLogin", "SmtpSession", "xoauth2_response"]

#: How long to wait for a greeting before asking, on a second connection, whether the port
#: speaks TLS first. Real servers greet at once; waiting the whole budget would only delay
#: the most common mistake (465 without Use SSL).
GREETING_PATIENCE_S = 3.0
TLS_PROBE_S = 2.0
#: With Use SSL on a port other than these, the session finds out what the server speaks:
#: a greeting within DETECT_PATIENCE_S means STARTTLS; silence, and a TLS handshake on a
#: second connection, means implicit TLS.
STANDARD_PORTS = frozenset({25, 465, 587})
DETECT_PATIENCE_S = 1.0
#: QUIT is a courtesy: it may not hold the result back for long.
GOODBYE_S = 1.0


@dataclass(frozen=True)
class PasswordLogin:
    """AUTH PLAIN/LOGIN (smtplib picks) with Account and Password."""

    account: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerLogin:
    """AUTH XOAUTH2 with an OAuth 2.0 access token for Account; ``token`` is asked for when
    the authenticate stage runs (a cached token, or one the token stage just got)."""

    account: str
    token: Callable[[], str] = field(repr=False)


SmtpLogin = PasswordLogin | BearerLogin


def xoauth2_response(account: str, token: str) -> str:
    """The XOAUTH2 initial client response, before base64: ``user=…^Aauth=Bearer …^A^A``."""
    return f"user={account}\x01auth=Bearer {token}\x01\x01"


def login_of(settings: SmtpSettings) -> SmtpLogin | None:
    """The password login of these settings, if they have a password (OAuth 2.0 settings
    get a ``BearerLogin`` from whoever holds the token)."""
    if settings.password is None:
        return None
    return PasswordLogin(settings.account, settings.password.get_secret_value())


class SmtpSession:
    """One SMTP conversation, one method per stage, in the order they run.

    ``login`` says how the authenticate stage signs in: None takes the settings' password (no
    AUTH without one); a ``BearerLogin`` signs in with AUTH XOAUTH2.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        egress: EgressPolicy,
        budget: Budget,
        recorder: StageRecorder,
        explainer: SmtpExplainer,
        ssl_context: ssl.SSLContext | None,
        login: SmtpLogin | None = None,
    ) -> None:
        self.s = settings
        self.login = login if login is not None else login_of(settings)
        #: How Use SSL is met: as stored (``tls_mode``), or found out by this session.
        self.tls_mode = settings.tls_mode if settings.use_ssl else None
        if self.tls_mode is not None:
            explainer.implicit_tls = self.tls_mode == "implicit"
        self.detect = (
            settings.use_ssl
            and self.tls_mode is None
            and settings.port not in STANDARD_PORTS
            and not explainer.implicit_tls
        )
        self.detected = False
        self.egress = egress
        self.budget = budget
        self.rec = recorder
        self.explainer = explainer
        # create_default_context honours SSL_CERT_FILE; the service passes its own CA setup.
        self.context = ssl_context or ssl.create_default_context()
        self.conn: PinnedSMTP | None = None
        # Set when we stop on our own rule (not on the wire): the conversation is still in step.
        self.stopped_by_rule = False

    def run(self, recipient: str, message: EmailMessage | None) -> None:
        conn = self.open()
        self._envelope(conn, recipient)
        if message is not None:
            self._data(conn, message)

    def open(self) -> PinnedSMTP:
        """resolve → connect → tls → ehlo → authenticate: a connection ready for an envelope.

        The worker keeps it open for the messages that follow (see server/worker/smtp_sender).
        """
        conn = self._resolve()
        self._connect(conn)
        self._tls(conn)
        self._ehlo(conn)
        if self.login is not None:
            self._authenticate(conn, self.login)
        return conn

    def _resolve(self) -> PinnedSMTP:
        host = self.s.server
        with self.rec.stage("resolve") as st:
            address = self.egress.resolve(host, self.s.port, timeout=self.budget.remaining())
            st.detail = f"{host} → {address}" if address != host else f"{host} (an IP address)"
        self.conn = PinnedSMTP(host, address, self.s.port, self.budget)
        self.explainer.conn = self.conn
        return self.conn

    def _connect(self, conn: PinnedSMTP) -> None:
        with self.rec.stage("connect") as st:
            conn.open()
            if self.explainer.implicit_tls:
                st.detail = f"Connected to {conn.address}:{conn.port}"
                return
            if self.detect:
                if self._speaks_tls_first(conn):
                    self.explainer.implicit_tls = True
                    self.tls_mode, self.detected = "implicit", True
                    st.detail = (
                        f"Connected to {conn.address}:{conn.port}; no greeting, and the port "
                        "answers a TLS handshake: implicit TLS (detected)"
                    )
                    return
                # The greeting came, or it is slow and the port has answered no TLS: no second
                # wait and probe, read it within the budget.
                code, reply = self._read_greeting(conn)
            else:
                code, reply = self._greeting(conn)
            st.detail, st.code = reply_detail(code, reply), str(code)

    def _speaks_tls_first(self, conn: PinnedSMTP) -> bool:
        """Use SSL on a port of no known kind: no greeting soon, and a TLS handshake on a
        second connection, means the server waits for TLS (nothing was sent on ``conn``)."""
        assert conn.sock is not None
        patience = min(DETECT_PATIENCE_S, self.budget.remaining() / 3)
        return not wait_readable(conn.sock, patience) and speaks_tls_first(
            conn.address, conn.port, self.s.server, self.budget, TLS_PROBE_S
        )

    def _greeting(self, conn: PinnedSMTP) -> tuple[int, bytes]:
        assert conn.sock is not None
        patience = min(GREETING_PATIENCE_S, self.budget.remaining() / 2)
        # No probe on port 25: MX servers may take a client that speaks before the greeting
        # for a spam bot (Postfix postscreen's pregreet test) and block this service's address.
        if (
            not wait_readable(conn.sock, patience)
            and conn.port != 25
            and speaks_tls_first(conn.address, conn.port, self.s.server, self.budget, TLS_PROBE_S)
        ):
            raise StageFailed(
                Failure(
                    f"No SMTP greeting: the server at port {conn.port} answered a TLS handshake",
                    self.explainer.expects_tls(),
                )
            )
        return self._read_greeting(conn)

    @staticmethod
    def _read_greeting(conn: PinnedSMTP) -> tuple[int, bytes]:
        conn.arm()
        code, reply = conn.getreply()
        if code != 220:
            raise smtplib.SMTPConnectError(code, reply)
        return code, reply

    def _tls(self, conn: PinnedSMTP) -> None:
        with self.rec.stage("tls") as st:
            if self.explainer.implicit_tls:
                conn.wrap_tls(self.context)
                conn.arm()
                code, reply = conn.getreply()
                if code != 220:
                    raise smtplib.SMTPConnectError(code, reply)
                summary = conn.tls_summary()
                how = "; detected: the server speaks TLS first" if self.detected else ""
                st.detail = (
                    f"Encrypted from the first byte ({summary}{how}); {reply_detail(code, reply)}"
                )
                st.code = str(code)
                return
            conn.arm()
            code, reply = conn.ehlo()
            if code == 250 and conn.has_extn("starttls"):
                conn.arm()
                code, reply = conn.starttls(context=self.context)
                how = ""
                if self.detect:
                    self.tls_mode, self.detected = "starttls", True
                    how = "; detected: the server greets first"
                st.detail = f"upgraded with STARTTLS ({conn.tls_summary()}{how})"
                st.code = str(code)
            elif self.s.use_ssl:
                self._stop(
                    f"STARTTLS not offered (EHLO answered: {reply_detail(code, reply)})",
                    f"Use SSL requires encryption, but the server at port {conn.port} does not "
                    "offer STARTTLS: use port 465 with Use SSL, or uncheck Use SSL for a server "
                    "that cannot encrypt (no password is sent then)",
                )
            else:
                st.detail = "not offered; continuing unencrypted"

    def _ehlo(self, conn: PinnedSMTP) -> None:
        with self.rec.stage("ehlo") as st:
            conn.arm()
            code, reply = conn.ehlo()
            if code != 250:
                conn.arm()
                code, reply = conn.helo()
                if code != 250:
                    raise smtplib.SMTPHeloError(code, reply)
            first = reply.decode("utf-8", "replace").splitlines()[:1]
            offers = ", ".join(
                f"{name.upper()} {value.strip()}".strip()
                for name, value in conn.esmtp_features.items()
            )
            st.detail = reply_detail(code, " ".join(first)) + (
                f"; offers {offers}" if offers else ""
            )
            st.code = str(code)

    def _authenticate(self, conn: PinnedSMTP, login: SmtpLogin) -> None:
        bearer = isinstance(login, BearerLogin)
        with self.rec.stage("authenticate") as st:
            if not conn.encrypted:
                what = "Token" if bearer else "Password"
                self._stop(
                    f"{what} not sent: the connection is not encrypted",
                    f"A {what.lower()} is never sent in clear: check Use SSL, or use the port "
                    "where the server offers STARTTLS (usually 587) or TLS (465)",
                )
            conn.arm()
            if isinstance(login, BearerLogin):
                offered = conn.esmtp_features.get("auth", "").upper().split()
                if "XOAUTH2" not in offered:
                    self._stop(
                        f"The server does not offer AUTH XOAUTH2 (AUTH {' '.join(offered)})"
                        if offered
                        else "The server offers no AUTH",
                        "OAuth 2.0 (Microsoft 365) needs a server that takes XOAUTH2, such as "
                        "smtp.office365.com on port 587: check Server and Port, or set "
                        "Authentication to Password",
                    )
                response = xoauth2_response(login.account, login.token())
                # After a failure, a server may send its error as a challenge: the answer to
                # it is empty, and the server then gives its final reply.
                code, reply = conn.auth(
                    "XOAUTH2",
                    lambda challenge=None: response if challenge is None else "",
                    initial_response_ok=True,
                )
                st.detail, st.code = f"XOAUTH2: {reply_detail(code, reply)}", str(code)
                return
            try:
                code, reply = conn.login(login.account, login.password)
            finally:
                conn.forget_credentials()
            st.detail, st.code = reply_detail(code, reply), str(code)
            note = exchange_password_note(self.s.server)
            if note:
                st.detail = f"{st.detail}. {note}"

    def _envelope(self, conn: PinnedSMTP, recipient: str) -> None:
        sender = self.s.sender_address
        wide = not (sender + recipient).isascii() and conn.has_extn("smtputf8")
        with self.rec.stage("sender") as st:
            conn.arm()
            code, reply = conn.mail(sender, ["SMTPUTF8"] if wide else [])
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            st.detail, st.code = reply_detail(code, reply), str(code)
        with self.rec.stage("recipient") as st:
            conn.arm()
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPResponseException(code, reply)
            st.detail, st.code = reply_detail(code, reply), str(code)

    def _data(self, conn: PinnedSMTP, message: EmailMessage) -> None:
        with self.rec.stage("data") as st:
            conn.arm()
            code, reply = conn.data(message.as_bytes(policy=email.policy.SMTP))
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            st.detail, st.code = reply_detail(code, reply), str(code)

    def _stop(self, detail: str, hint: str) -> NoReturn:
        self.stopped_by_rule = True
        raise StageFailed(Failure(detail, hint))

    def close(self) -> None:
        """QUIT when the session is still in step, then let go. A test's transaction needs
        no RSET first: QUIT aborts it (RFC 5321, 4.1.1.10), one round trip less."""
        conn = self.conn
        if conn is None:
            return
        failed = self.rec.failed
        # After a reply we understood, or a stop of our own, the server expects a command;
        # after a broken handshake or a timeout anything we send is noise.
        in_step = failed is None or failed.code is not None or self.stopped_by_rule
        try:
            if in_step and conn.sock is not None and not conn.timed_out:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    conn.arm(GOODBYE_S)
                    conn.quit()
        finally:
            conn.dispose()
