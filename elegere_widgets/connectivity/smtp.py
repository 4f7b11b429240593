"""SMTP connection test and sending, over smtplib.

One session serves both: ``test_smtp`` walks resolve → connect → tls → ehlo → authenticate →
sender → recipient and leaves with QUIT, sending no message; ``send_smtp`` walks the same
stages with the real recipient and adds ``data``, in the same one session (its ``progress``
hears each stage as it ends, as a test's does: Send test email shows them). With Authentication OAuth 2.0 (Microsoft
365) both start with certificate → token (the app's sign-in, shared with Microsoft Graph) and
authenticate with AUTH XOAUTH2; a send takes the token from a cache while it is fresh. The
worker's deliveries open their connections through the same ``SmtpRun``. Network and protocol
problems never raise: they become a failed stage whose hint names the field to change.

Security rules kept here: the socket goes only to the address ``EgressPolicy.resolve`` checked;
certificates are verified against ``Server``; a password is never sent over an unencrypted
connection; the whole session ends within its time budget.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

import jwt

from ..models import ConnectionTestResult, SmtpSettings, Stage
from ..models.fields import SECRET_MASK
from .egress import EgressPolicy
from .smtp_hints import SmtpExplainer, bounded
from .smtp_session import BearerLogin, SmtpLogin, SmtpSession, xoauth2_response
from .stages import Budget, Failure, StageFailed, StageRecorder

if TYPE_CHECKING:
    from .app_token import AppSignIn, TokenCache

__all__ = [
    "EXCHANGE_SCOPE",
    "IMPLICIT_TLS_PORTS",
    "OAuthEndpoints",
    "SendOutcome",
    "SmtpRun",
    "process_token_cache",
    "said",
    "send_smtp",
    "sent_outcome",
    "test_smtp",
]

#: The token's scope for SMTP AUTH XOAUTH2 at Exchange Online (app-only: /.default).
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"

#: Ports where Use SSL means TLS from the first byte; elsewhere it means STARTTLS is required.
IMPLICIT_TLS_PORTS: frozenset[int] = frozenset({465})
MASK = SECRET_MASK
#: The longest detail or hint a stage keeps: one reply's worth (DETAIL_MAX) and our words
#: (Microsoft 365's OAuth setup names four steps, with their commands).
STAGE_TEXT_MAX = 900


@dataclass(frozen=True)
class OAuthEndpoints:
    """Where an OAuth 2.0 SMTP server's app signs in: the authority (national clouds and
    tests point elsewhere), the CAs to trust for it (None: the public ones), the scope."""

    authority_host: str = PUBLIC_AUTHORITY_HOST
    ca_bundle: str | None = None
    scope: str = EXCHANGE_SCOPE


@dataclass
class SendOutcome:
    """What happened to a message: ``detail`` is the server's reply, or why it failed;
    ``stages`` the session's stages (as a connection test's, masked alike), and how long
    the whole send took."""

    ok: bool
    detail: str
    stages: list[Stage] = field(default_factory=list)
    elapsed_ms: int = 0


def test_smtp(
    settings: SmtpSettings,
    *,
    egress: EgressPolicy,
    budget_s: float = 15.0,
    ssl_context: ssl.SSLContext | None = None,
    progress: Callable[[Stage], None] | None = None,
    implicit_tls_ports: Collection[int] = IMPLICIT_TLS_PORTS,
    oauth: OAuthEndpoints | None = None,
    on_tls_mode: Callable[[str], None] | None = None,
) -> ConnectionTestResult:
    """Check that these settings can send as ``sender_address``, without sending a message.

    The recipient probed is the sender address itself. ``test_token`` is left None: the
    service adds it. ``progress`` gets each stage as it ends. ``implicit_tls_ports`` are the
    ports where Use SSL means TLS from the first byte (465); on any other port it means
    STARTTLS is required. ``ssl_context`` defaults to ``ssl.create_default_context()``.
    ``oauth`` says where an OAuth 2.0 server's app signs in (the public cloud by default); a
    test always asks for a fresh token. ``on_tls_mode`` hears the mode a passing test found
    out for Use SSL on a port other than 465, 587 and 25 ("implicit" or "starttls").
    """
    run = SmtpRun(
        settings,
        egress=egress,
        budget_s=budget_s,
        ssl_context=ssl_context,
        recipient=settings.sender_address,
        oauth=oauth or OAuthEndpoints(),
        token_cache=None,
        implicit_tls_ports=implicit_tls_ports,
        progress=progress,
    )
    _converse(run, None, on_tls_mode)
    return run.recorder.result()


test_smtp.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def send_smtp(
    settings: SmtpSettings,
    *,
    to: str,
    subject: str,
    body: str,
    egress: EgressPolicy,
    budget_s: float = 30.0,
    ssl_context: ssl.SSLContext | None = None,
    implicit_tls_ports: Collection[int] = IMPLICIT_TLS_PORTS,
    oauth: OAuthEndpoints | None = None,
    token_cache: TokenCache | None = None,
    progress: Callable[[Stage], None] | None = None,
) -> SendOutcome:
    """Send one plain-text message from ``sender_address`` to ``to``, in one SMTP session.

    Raises ValueError, before any I/O, only when ``to`` or ``subject`` cannot be a header
    (line breaks); every network or protocol problem is a failed ``SendOutcome``. An OAuth
    2.0 server's token comes from ``token_cache`` (the process's own by default) while fresh.
    ``progress`` gets each stage as it ends (certificate → token with OAuth 2.0, resolve →
    … → recipient → data), as :func:`test_smtp`'s does.
    """
    message = compose(settings.sender_address, to, subject, body)
    run = SmtpRun(
        settings,
        egress=egress,
        budget_s=budget_s,
        ssl_context=ssl_context,
        recipient=to,
        oauth=oauth or OAuthEndpoints(),
        token_cache=token_cache or process_token_cache(settings),
        implicit_tls_ports=implicit_tls_ports,
        progress=progress,
    )
    _converse(run, message, None)
    return sent_outcome(run.recorder, f"Sent to {to}: ")


def sent_outcome(recorder: StageRecorder, said_ok: str = "") -> SendOutcome:
    """The outcome of a send whose stages ``recorder`` holds: the last stage's reply after
    ``said_ok``, or the failed stage's words and hint."""
    stages, elapsed_ms = list(recorder.stages), recorder.elapsed_ms()
    failed = recorder.failed
    if failed is None:
        detail = f"{said_ok}{stages[-1].detail}" if stages else said_ok.rstrip(": ")
        return SendOutcome(ok=True, detail=detail, stages=stages, elapsed_ms=elapsed_ms)
    detail = f"Failed at {failed.name}: {said(failed.detail, failed.hint)}"
    return SendOutcome(ok=False, detail=detail, stages=stages, elapsed_ms=elapsed_ms)


def compose(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """The message ``send_smtp`` sends: plain text, with Date and Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    # An explicit domain: without one make_msgid asks DNS for this host's name.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    # Quoted-printable keeps a non-ASCII body 7-bit: no need for the server to offer 8BITMIME.
    message.set_content(body, cte=None if body.isascii() else "quoted-printable")
    return message


def _redactor(settings: SmtpSettings, sign_in: AppSignIn | None = None) -> Callable[[str], str]:
    """Masks the secrets (the password), and the base64 forms AUTH LOGIN/PLAIN send them in;
    with OAuth 2.0 also the token and the XOAUTH2 response, once the token stage has them."""
    secrets = settings.secrets().values()
    if sign_in is not None:
        return lambda text: sign_in.redact(text)
    if not secrets:
        return lambda text: text
    account = settings.account
    forms = set(secrets)
    for secret in secrets:
        for raw in (secret, f"\0{account}\0{secret}", f"{account}\0{account}\0{secret}"):
            forms.add(base64.b64encode(raw.encode()).decode())
    ordered = sorted((f for f in forms if f), key=len, reverse=True)

    def redact(text: str) -> str:
        for form in ordered:
            text = text.replace(form, MASK)
        return text

    return redact


class SmtpRun:
    """One SMTP conversation set up as every sender sets it up: the connection test, a test
    send, and the worker's connection that stays open for the messages that follow.

    It holds the budget, the explainer (with what OAuth 2.0 hints need), the recorder that
    masks every secret before a detail or hint is kept, and the session. ``start`` runs the
    certificate and token stages with OAuth 2.0 (the token from ``token_cache`` while fresh;
    None asks the authority afresh, as a test must) and returns the session, not yet
    connected, that authenticates with AUTH XOAUTH2. From then on the token and the XOAUTH2
    response are masked like a password wherever a server's words go.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        egress: EgressPolicy,
        budget_s: float,
        ssl_context: ssl.SSLContext | None,
        recipient: str,
        oauth: OAuthEndpoints,
        token_cache: TokenCache | None,
        implicit_tls_ports: Collection[int] = IMPLICIT_TLS_PORTS,
        progress: Callable[[Stage], None] | None = None,
    ) -> None:
        self.settings = settings
        self.egress = egress
        self.ssl_context = ssl_context
        self.token_cache = token_cache
        self.budget = Budget(budget_s)
        ports = frozenset(implicit_tls_ports)
        self.explainer = SmtpExplainer(
            host=settings.server,
            port=settings.port,
            use_ssl=settings.use_ssl,
            implicit_tls=settings.use_ssl and settings.port in ports,
            implicit_ports=ports,
            budget=self.budget,
            sender=settings.sender_address,
            recipient=recipient,
            oauth=settings.uses_certificate,
            account=settings.account,
            client_id=settings.client_id or "",
            tenant_id=settings.tenant_id or "",
        )
        self.sign_in = _sign_in(settings, oauth, self.budget) if settings.uses_certificate else None
        masked = _redactor(settings, self.sign_in)
        # Masked first, then cut: a cut could otherwise leave part of a secret unmasked.
        self.redact: Callable[[str], str] = lambda text: bounded(masked(text), STAGE_TEXT_MAX)
        self.recorder = StageRecorder(
            "smtp", explain=self._explain, progress=progress, redact=self.redact
        )
        self.session: SmtpSession | None = None
        self.token: str | None = None

    def _explain(self, stage: str, exc: BaseException) -> Failure:
        if self.sign_in is not None and stage in ("certificate", "token"):
            return self.sign_in.explain(stage, exc)
        return self.explainer(stage, exc)

    def start(self) -> SmtpSession:
        """certificate → token with OAuth 2.0, then the session to open or run. Raises
        ``StageFailed`` (recorded) when the app cannot sign in."""
        login: SmtpLogin | None = None
        sign_in = self.sign_in
        if sign_in is not None:
            sign_in.recorder = self.recorder
            credential = sign_in.certificate()
            token = self.token = sign_in.token(credential, cache=self.token_cache)
            response = xoauth2_response(self.settings.account, token)
            sign_in.secrets.append(base64.b64encode(response.encode()).decode())
            self.explainer.token_claims = unverified_claims(token)
            login = BearerLogin(self.settings.account, lambda: token)
        self.session = SmtpSession(
            self.settings,
            self.egress,
            self.budget,
            self.recorder,
            self.explainer,
            self.ssl_context,
            login,
        )
        return self.session

    def close(self) -> None:
        """End the conversation. A token the server refused leaves the cache: the next
        connection asks for a new one, which carries a permission granted since."""
        if self.session is not None:
            self.session.close()
        failed = self.recorder.failed
        if (
            failed is not None
            and failed.name == "authenticate"
            and self.token is not None
            and self.token_cache is not None
            and self.sign_in is not None
        ):
            self.token_cache.discard(self.sign_in.cache_key(), self.token)


def said(detail: str, hint: str | None) -> str:
    """A failure in one line, as a delivery or a test send reports it: "detail. hint."."""
    text = f"{detail.rstrip('.')}."
    return f"{text} {hint.rstrip('.')}." if hint else text


def process_token_cache(settings: SmtpSettings) -> TokenCache | None:
    """The process's token cache for a sender of OAuth 2.0 settings (None for a password)."""
    if not settings.uses_certificate:
        return None
    from .app_token import default_token_cache  # msal is heavy: only for OAuth 2.0

    return default_token_cache()


def _converse(
    run: SmtpRun, message: EmailMessage | None, on_tls_mode: Callable[[str], None] | None
) -> None:
    """The whole conversation of a test (no ``message``) or a test send; never raises."""
    try:
        session = run.start()
        session.run(run.explainer.recipient, message)
        if on_tls_mode is not None and session.detected and session.tls_mode is not None:
            on_tls_mode(session.tls_mode)
    except StageFailed:
        pass  # recorded already; the result says which stage and why
    finally:
        run.close()


def unverified_claims(token: str) -> dict[str, Any]:
    """A token's claims, read without checking its signature: it came straight from the
    authority over TLS, and only explains a refusal."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _sign_in(settings: SmtpSettings, oauth: OAuthEndpoints, budget: Budget) -> AppSignIn:
    from .app_token import AppRegistration, AppSignIn  # msal is heavy: only for OAuth 2.0

    return AppSignIn(
        AppRegistration.of(settings),
        authority_host=oauth.authority_host,
        budget=budget,
        ca_bundle=oauth.ca_bundle,
        scope=oauth.scope,
    )
