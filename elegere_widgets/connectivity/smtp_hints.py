"""What an SMTP failure means for the person who filled in the form.

``SmtpExplainer`` turns an exception raised inside a stage into a ``Failure``: the server's
own words as ``detail`` (e.g. "535 5.7.8 Authentication credentials invalid"), its reply code,
and a ``hint`` naming the field to change. The wording follows the form's labels (Server, Port,
Use SSL, Account, Password, Sender Address).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from ..models.servers import is_exchange_online
from .egress import EgressRefused, PortRefused, ResolveFailed
from .smtp_transport import PinnedSMTP, ReplyTooLong
from .stages import Budget, Failure

__all__ = [
    "DETAIL_MAX",
    "SmtpExplainer",
    "bounded",
    "exchange_hint",
    "exchange_password_note",
    "is_exchange_online",
    "reply_detail",
]

#: The most of a server's words a stage shows: enough for any real reply's first lines.
DETAIL_MAX = 300

#: X509_V_ERR_* codes that say "valid certificate, wrong name".
_NAME_MISMATCH = {62, 64}
_EXPIRED = {10}
#: TLS alerts and record errors that mean "the other side does not speak TLS first".
_PLAINTEXT_REASONS = {
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNKNOWN_PROTOCOL",
}


def bounded(text: str, limit: int = DETAIL_MAX) -> str:
    """``text`` as a stage may show it: control characters replaced, at most ``limit`` long.

    What a server sends goes into results, the UI and the log: escape sequences and NULs must
    not reach a terminal as they came, and a megabyte of garbage must not become a detail.
    """
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable():  # nearly always: one C call instead of a Python step per character
        return text
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


def reply_detail(code: int, message: bytes | str) -> str:
    """A server reply on one line: "250 mail.example.com Hello"."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    # Cut before joining: the lines of a hostile reply may add up to megabytes.
    text = text[: DETAIL_MAX * 2]
    if text.isprintable():  # one line, nothing to join: most replies
        text = text.strip()
    else:
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return bounded(f"{code} {text}".strip() if code > 0 else text)


# -------------------------------------------------------------- Microsoft 365 (Exchange Online)

#: What the app registration and Exchange need before AUTH XOAUTH2 works, in the order of
#: Microsoft's setup guide for SMTP with OAuth (client credentials).
OAUTH_SETUP = (
    "grant the app registration SMTP.SendAsApp (Office 365 Exchange Online, application "
    "permission) with admin consent; register its service principal in Exchange "
    "(New-ServicePrincipal -AppId {client_id} -ObjectId <enterprise application's object ID>); "
    "give it the mailbox (Add-MailboxPermission -Identity {account} -User <service principal> "
    "-AccessRights FullAccess); enable SMTP AUTH for the mailbox (Set-CASMailbox -Identity "
    "{account} -SmtpClientAuthenticationDisabled $false)"
)
BASIC_AUTH_OFF = (
    "Microsoft 365 has turned off password sign-in (Basic authentication) for SMTP in this "
    "tenant: set Authentication to OAuth 2.0 (Microsoft 365) and sign in with an app "
    "registration's certificate, or use the Microsoft Graph type"
)
PASSWORD_ENDS = (
    "Note: Microsoft 365 turns off password sign-in for SMTP (by default from the end of "
    "December 2026): set Authentication to OAuth 2.0 (Microsoft 365), or use the Microsoft "
    "Graph type, before then"
)


def _has(text: str, status: str) -> bool:
    """Whether the reply carries this enhanced status code (5.7.3 is not 5.7.30)."""
    return re.search(rf"(?<![\d.]){re.escape(status)}(?![\d])", text) is not None


def exchange_password_note(host: str) -> str | None:
    """What a passing password login on Exchange Online should say: it will stop working."""
    return PASSWORD_ENDS if is_exchange_online(host) else None


def exchange_hint(
    code: int, text: str, *, oauth: bool, account: str, sender: str, client_id: str = ""
) -> str | None:
    """Advice for a reply Exchange Online gives (its enhanced code, or its words), else None.

    ``text`` is the reply, lower case. Whatever the host: Microsoft's words are the evidence.
    """
    setup = OAUTH_SETUP.format(account=account, client_id=client_id or "<Client ID>")
    if _has(text, "5.7.139") or _has(text, "5.7.30"):
        if oauth:
            return (
                "Exchange Online refused SMTP AUTH for this mailbox or tenant: enable it for the "
                f"mailbox (Set-CASMailbox -Identity {account} -SmtpClientAuthenticationDisabled "
                "$false), and check that no authentication policy blocks it"
            )
        return BASIC_AUTH_OFF
    if "sendasdenied" in text or _has(text, "5.7.60"):
        who = "the app's service principal" if oauth else account
        return (
            f"Exchange does not let {who} send as {sender}: set Sender Address to {account}, "
            f"or give {who} Send As permission on {sender} (Add-RecipientPermission -Identity "
            f"{sender} -Trustee <{'service principal' if oauth else account}> -AccessRights "
            "SendAs)"
        )
    if _has(text, "4.7.66"):
        return (
            "Exchange Online accepts only TLS 1.2 or later: check Use SSL, and that no proxy "
            "between this service and Microsoft 365 downgrades TLS"
        )
    if _has(text, "4.3.2"):
        return (
            "Exchange Online is throttling this mailbox (at most three SMTP connections at a "
            "time, and a limit on messages per minute): try again in a minute; spread "
            "sending over time, or over more mailboxes"
        )
    if _has(text, "5.7.57"):
        if oauth:
            return f"Exchange did not take the sign-in: {setup}"
        return "Exchange requires a login to send: enter Account and Password"
    if _has(text, "5.7.3") and code == 535:
        if oauth:
            return f"Exchange refused the app's token: {setup}"
        return (
            "Check Account and Password; Microsoft 365 also refuses a login when SMTP AUTH is "
            f"disabled for the mailbox (Set-CASMailbox -Identity {account} "
            "-SmtpClientAuthenticationDisabled $false)"
        )
    if _has(text, "5.2.0") and "storedrv" in text:
        return (
            "Exchange could not submit the message from the mailbox (STOREDRV): see its reply; "
            f"check that {account} is a licensed mailbox that may send as {sender}"
        )
    return None


def _timed_out(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class SmtpExplainer:
    host: str
    port: int
    use_ssl: bool
    implicit_tls: bool
    implicit_ports: frozenset[int]
    budget: Budget
    sender: str
    recipient: str
    conn: PinnedSMTP | None = field(default=None, repr=False)
    #: Signing in with AUTH XOAUTH2 (OAuth 2.0, Microsoft 365) rather than a password.
    oauth: bool = False
    account: str = ""
    client_id: str = ""
    tenant_id: str = ""
    #: The claims of the token the token stage got (read, not verified: they only explain).
    token_claims: dict[str, Any] = field(default_factory=dict, repr=False)

    # -------------------------------------------------------------- shared wording

    def no_answer(self) -> str:
        return (
            f"The server did not answer within {self.budget.describe()}: check Server and Port "
            "and that a firewall allows the connection"
        )

    def expects_tls(self) -> str:
        if self.port in self.implicit_ports:
            return f"Port {self.port} expects TLS from the first byte: check Use SSL"
        first = min(self.implicit_ports, default=465)
        return (
            f"Port {self.port} expects TLS from the first byte (implicit TLS), which is used on "
            f"port {first}: set Port to {first} and check Use SSL"
        )

    def speaks_plain(self) -> str:
        return (
            f"The server at port {self.port} speaks plain SMTP first: uncheck Use SSL, or use "
            "port 587 with STARTTLS"
        )

    # -------------------------------------------------------------- entry point

    def __call__(self, stage: str, exc: BaseException) -> Failure:
        if isinstance(exc, ResolveFailed):
            return Failure(str(exc), "Check Server: no address was found for this host name")
        if isinstance(exc, PortRefused):
            return Failure(str(exc), "Use the port the mail server listens on: 587, 465 or 25")
        if isinstance(exc, EgressRefused):
            return Failure(
                str(exc), "Use the mail server's own host name, not an address of this service"
            )
        deadline = (self.conn is not None and self.conn.timed_out) or self.budget.expired
        if deadline or _timed_out(exc):
            return self._timeout(stage, exc)
        if isinstance(exc, ReplyTooLong):
            return Failure(
                f"The server's reply is not SMTP: {exc}",
                f"The server at port {self.port} does not answer like an SMTP server: check "
                "Server and Port",
            )
        if isinstance(exc, ssl.SSLError):
            return self._tls(exc)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return self._disconnected(stage, exc)
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._reply(stage, exc.smtp_code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPException) and stage == "authenticate":
            return Failure(
                str(exc),
                "The server does not accept a login on this connection: remove the Password if "
                "it needs none, or use the port where it accepts logins (usually 587)",
            )
        if isinstance(exc, OSError):
            # Refused, unreachable and reset read alike: a test must not tell an internal
            # host that is down from one that is up with the port closed.
            return Failure(
                f"Could not connect to {self.host} on port {self.port}",
                "Check Server and Port (usually 587, or 465 with Use SSL), and that this "
                "service's network may connect to the server",
            )
        return Failure(str(exc) or type(exc).__name__)

    # -------------------------------------------------------------- by kind

    def _timeout(self, stage: str, exc: BaseException) -> Failure:
        detail = f"No answer within {self.budget.describe()} ({stage})"
        hint = self.no_answer()
        if stage == "connect" and not self.use_ssl and self.port in self.implicit_ports:
            hint = f"{self.expects_tls()}. {hint}"
        return Failure(detail, hint)

    def _tls(self, exc: ssl.SSLError) -> Failure:
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = f"Certificate not accepted: {exc.verify_message}"
            if exc.verify_code in _NAME_MISMATCH:
                hint = (
                    f"The server's certificate is not valid for {self.host}: enter in Server the "
                    "host name the certificate was issued for"
                )
            elif exc.verify_code in _EXPIRED:
                hint = "The server's certificate has expired: its administrator must renew it"
            else:
                hint = (
                    "The server's certificate is not trusted (self-signed, or issued by a private "
                    "CA): have the server use a certificate from a public CA, or ask an "
                    "administrator to add its CA to the service's trusted certificates"
                )
            return Failure(detail, hint)
        reason = exc.reason or ""
        detail = f"TLS handshake failed: {reason or exc}"
        if self.implicit_tls and reason in _PLAINTEXT_REASONS:
            return Failure(detail, self.speaks_plain())
        if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return Failure(
                detail,
                "The server closed the connection during the TLS handshake: check Port and Use SSL",
            )
        return Failure(
            detail,
            "The server and this service found no TLS version or cipher in common: the server "
            "may need a TLS update",
        )

    def _disconnected(self, stage: str, exc: smtplib.SMTPServerDisconnected) -> Failure:
        detail = f"The server closed the connection ({stage})"
        if stage == "connect":
            if not self.use_ssl and self.port in self.implicit_ports:
                return Failure(detail, self.expects_tls())
            return Failure(
                detail,
                f"The server closed the connection before greeting: check Port ({self.port} may "
                "not be an SMTP port), or the server may refuse connections from this service",
            )
        if stage == "tls" and self.implicit_tls:
            return Failure(detail, self.speaks_plain())
        return Failure(detail, "The server ended the session: try again, or check Port and Use SSL")

    def _reply(self, stage: str, code: int, message: bytes | str) -> Failure:
        detail = reply_detail(code, message)
        text = detail.lower()
        hint: str | None
        if code < 0:
            # It spoke first, so it is no TLS port (those wait for the client): something else,
            # a web server, a database, or garbage, listens there.
            hint = (
                f"The server at port {self.port} does not speak SMTP (it answered with something "
                "else, such as a web page): check Server and Port"
            )
            return Failure(f"Not an SMTP reply: {detail}" if detail else "Not an SMTP reply", hint)
        transient = 400 <= code < 500
        exchange = exchange_hint(
            code,
            text,
            oauth=self.oauth,
            account=self.account,
            sender=self.sender,
            client_id=self.client_id,
        )
        if exchange is not None and self.oauth and stage == "authenticate" and _has(text, "5.7.3"):
            exchange = self._oauth_hint()  # the token says more than Exchange's 5.7.3 does
        if exchange is not None:
            return Failure(detail, exchange, str(code))
        if stage == "tls" and not self.implicit_tls:
            hint = (
                "The server offered STARTTLS but refused it: try again later, or use port 465 "
                "with Use SSL"
            )
        elif stage in ("connect", "tls"):
            # A greeting other than 220: a refusal before any command was sent.
            hint = (
                "The server refused the connection for now: try again later"
                if transient
                else "The server does not accept connections from this service: ask its "
                "administrator to allow it"
            )
        elif stage == "ehlo":
            hint = "The server refused the greeting (EHLO/HELO): check Server and Port"
        elif stage == "authenticate":
            hint = self._auth_hint(code, text)
        elif stage == "sender":
            hint = self._sender_hint(code, text)
        elif stage == "recipient":
            hint = (
                f"The server refused {self.recipient} as a recipient: it may not relay for this "
                "account; check Account, Password and Sender Address"
            )
        elif stage == "data":
            hint = "The server refused the message: see its reply"
        else:
            hint = None
        if transient and hint is not None and stage not in ("connect", "tls"):
            hint = f"The server refused for now ({code}): try again in a few minutes. {hint}"
        return Failure(detail, hint, str(code))

    def _oauth_hint(self) -> str:
        roles = self.token_claims.get("roles") or []
        if self.token_claims and "SMTP.SendAsApp" not in roles:
            granted = ", ".join(map(str, roles)) or "none"
            return (
                "The app's token does not grant SMTP.SendAsApp (Exchange Online application "
                f"permissions: {granted}): in the app registration open API permissions → Add "
                "a permission → APIs my organization uses → Office 365 Exchange Online → "
                "Application permissions → SMTP.SendAsApp, then Grant admin consent"
            )
        exp = self.token_claims.get("exp")
        if isinstance(exp, int | float) and exp <= time.time():
            return (
                "The token had expired when the server checked it: check this service's clock "
                "(it must be in time with the identity provider's), then test again"
            )
        setup = OAUTH_SETUP.format(account=self.account, client_id=self.client_id or "<Client ID>")
        return (
            f"The server refused the app's token: check that Tenant ID ({self.tenant_id}) is "
            f"the tenant of {self.account}; then {setup}"
        )

    def _auth_hint(self, code: int, text: str) -> str:
        if self.oauth:
            return self._oauth_hint()
        if code == 534 or "application-specific" in text or "app password" in text:
            return (
                "The server wants an app password: create one for Account and enter it in Password"
            )
        if code == 538 or "encryption required" in text:
            return "The server wants an encrypted connection before login: check Use SSL"
        if code == 504:
            return "The server does not support the login methods this service uses (PLAIN, LOGIN)"
        return "Check Account and Password"

    def _sender_hint(self, code: int, text: str) -> str:
        if code == 530 or "authentication required" in text or "must authenticate" in text:
            return "The server requires a login to send: enter Account and Password"
        if code == 503 and "starttls" in text:
            return "The server requires STARTTLS before sending: check Use SSL"
        return (
            f"The server does not let this account send as {self.sender}; use an address the "
            "account may send from"
        )
