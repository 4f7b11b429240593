"""Microsoft Graph connection test and sending: app-only, with a certificate, over msal.

``test_graph`` walks certificate → token → mailbox → send_permission and sends nothing;
``send_graph`` walks certificate → token → send and posts one message. Network and protocol
problems never raise: they become a failed stage whose hint names what to change, in the
Azure portal or in the form. The whole run ends within its time budget: every network call
runs in a daemon thread that is abandoned at the deadline (msal has no overall timeout, and
a requests timeout bounds each socket read, not a whole exchange).

The authority host and the Graph base URL are the service's settings (public cloud by
default), so national clouds and tests can point elsewhere. The scope stays Graph's
(``https://graph.microsoft.com/.default``) wherever the authority is.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import jwt
import msal
import requests

from ..models import ConnectionTestResult, GraphSettings, Stage
from ..models.fields import SECRET_MASK
from .certificates import CertificateError, LoadedCredential, certificate_info, load_credential
from .smtp import SendOutcome
from .stages import Budget, Failure, StageFailed, StageRecorder

__all__ = [
    "GRAPH_SCOPE",
    "PUBLIC_AUTHORITY_HOST",
    "PUBLIC_GRAPH_URL",
    "SendOutcome",
    "send_graph",
    "send_graph_message",
    "test_graph",
]

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MASK = SECRET_MASK

T = TypeVar("T")

#: What an AADSTS code means for the admin. {tenant}, {client_id} and {sha1} are filled in.
_AADSTS_HINTS: dict[str, str] = {
    "90002": "Tenant not found: check Tenant ID (Directory (tenant) ID on the app "
    "registration's Overview page, or a verified domain of that tenant).",
    "900023": "Tenant ID is not a valid tenant: use the Directory (tenant) ID GUID.",
    "700016": "App not found in this tenant: check Client ID (Application (client) ID on the "
    "app registration's Overview page) and that the app is registered in tenant {tenant}.",
    "700027": "Certificate not uploaded to the app registration: in Azure, open the app "
    "registration → Certificates & secrets → Certificates and upload the .cer of this "
    "certificate (thumbprint {sha1}), or check that the one there has not expired.",
    "700024": "The sign-in was refused as outside its valid time: check this server's clock.",
    "7000112": "The app is disabled in this tenant: enable it under Enterprise applications → "
    "Properties → Enabled for users to sign in.",
    "53003": "A Conditional Access policy blocks this app: ask the tenant's administrator to "
    "allow it.",
    "500011": "Microsoft Graph is not available to this tenant's apps; check the Tenant ID.",
    "7000215": "The app registration expects a certificate: upload the .pfx here and its .cer "
    "in Azure.",
}

_MAILBOX_NOT_FOUND = (
    "Mailbox not found: check Account; it must be the address of an existing Exchange Online "
    "mailbox (a user or shared mailbox) in tenant {tenant}."
)
_ACCESS_POLICY = (
    "Exchange keeps this app from the mailbox: an application access policy (or RBAC for "
    "Applications) limits the app to other mailboxes; ask the Exchange administrator to add "
    "{account} to the app's scope."
)
_GRANT_MAIL_SEND = (
    "Grant Mail.Send: in the app registration open API permissions → Add a permission → "
    "Microsoft Graph → Application permissions → Mail.Send, then Grant admin consent."
)
_GRAPH_HINTS: dict[str, str] = {
    "ResourceNotFound": _MAILBOX_NOT_FOUND,
    "Request_ResourceNotFound": _MAILBOX_NOT_FOUND,
    "ErrorInvalidUser": _MAILBOX_NOT_FOUND,
    "MailboxNotEnabledForRESTAPI": "The account has no Exchange Online mailbox: use the "
    "address of a licensed user or a shared mailbox.",
    "ErrorAccessDenied": _ACCESS_POLICY,
    "ErrorSendAsDenied": "The app may not send as {account}: check Account.",
    "InvalidAuthenticationToken": "Microsoft Graph refused the token: check that the authority "
    "and the Graph URL belong to the same cloud.",
    "ApplicationThrottled": "Microsoft Graph is throttling this app: test again in a minute.",
    "ErrorInvalidRecipients": "Check the recipient's address.",
}


def test_graph(
    settings: GraphSettings,
    *,
    authority_host: str = PUBLIC_AUTHORITY_HOST,
    graph_base_url: str = PUBLIC_GRAPH_URL,
    budget_s: float = 15.0,
    ca_bundle: str | None = None,
    progress: Callable[[Stage], None] | None = None,
    scope: str = GRAPH_SCOPE,
) -> ConnectionTestResult:
    """Check that these settings can send as ``account``, without sending a message.

    ``ca_bundle`` is a PEM file of the CAs to trust instead of the public ones (a TLS
    inspecting proxy, tests). ``test_token`` is left None: the service adds it.
    """
    run = _GraphRun(settings, authority_host, graph_base_url, budget_s, ca_bundle, scope, progress)
    try:
        credential = run.certificate()
        token = run.token(credential)
        run.mailbox(token)
        run.send_permission(token)
    except StageFailed:
        pass  # recorded already; the result says which stage and why
    return run.recorder.result()


test_graph.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def send_graph(
    settings: GraphSettings,
    *,
    to: str,
    subject: str,
    body: str,
    authority_host: str = PUBLIC_AUTHORITY_HOST,
    graph_base_url: str = PUBLIC_GRAPH_URL,
    budget_s: float = 30.0,
    ca_bundle: str | None = None,
    scope: str = GRAPH_SCOPE,
) -> SendOutcome:
    """Send one plain-text message as ``account`` with ``POST /users/{account}/sendMail``.

    Graph answers 202 when it *accepted* the message: delivery happens later, and the detail
    says so. Every network or protocol problem is a failed ``SendOutcome``, never an exception.
    """
    run = _GraphRun(settings, authority_host, graph_base_url, budget_s, ca_bundle, scope, None)
    try:
        credential = run.certificate()
        token = run.token(credential)
        run.send(token, to=to, subject=subject, body=body)
    except StageFailed:
        failed = run.recorder.failed
        assert failed is not None
        hint = f" {failed.hint}" if failed.hint else ""
        return SendOutcome(ok=False, detail=f"Failed at {failed.name}: {failed.detail}.{hint}")
    return SendOutcome(ok=True, detail=run.recorder.stages[-1].detail)


def send_graph_message(
    settings: GraphSettings,
    *,
    message: dict[str, Any],
    summary: str,
    authority_host: str = PUBLIC_AUTHORITY_HOST,
    graph_base_url: str = PUBLIC_GRAPH_URL,
    budget_s: float = 30.0,
    ca_bundle: str | None = None,
    scope: str = GRAPH_SCOPE,
) -> tuple[SendOutcome, str | None]:
    """``send_graph`` for a whole Graph message resource (cc, bcc, html, reply-to): the
    outcome, and the failed stage's code (Graph's error code, the HTTP status or AADSTS…)."""
    run = _GraphRun(settings, authority_host, graph_base_url, budget_s, ca_bundle, scope, None)
    try:
        credential = run.certificate()
        token = run.token(credential)
        run.send(token, to=summary, subject="", body="", message=message)
    except StageFailed:
        failed = run.recorder.failed
        assert failed is not None
        hint = f" {failed.hint}" if failed.hint else ""
        detail = f"Failed at {failed.name}: {failed.detail}.{hint}"
        return SendOutcome(ok=False, detail=detail), failed.code
    return SendOutcome(ok=True, detail=run.recorder.stages[-1].detail), None


# ---------------------------------------------------------------- one run, stage by stage


class _GraphRun:
    def __init__(
        self,
        settings: GraphSettings,
        authority_host: str,
        graph_base_url: str,
        budget_s: float,
        ca_bundle: str | None,
        scope: str,
        progress: Callable[[Stage], None] | None,
    ) -> None:
        self.s = settings
        self.authority_host = authority_host.rstrip("/")
        self.graph = graph_base_url.rstrip("/")
        self.budget = Budget(budget_s)
        self.ca_bundle = ca_bundle
        self.scope = scope
        # Every write-only setting that is set (the file as base64); the token joins later.
        self.secrets: list[str] = list(settings.secrets().values())
        self.recorder = StageRecorder(
            "microsoft_graph", explain=self._explain, progress=progress, redact=self._redact
        )
        self.sha1 = "(unknown)"

    # ------------------------------------------------ stages

    def certificate(self) -> LoadedCredential:
        with self.recorder.stage("certificate") as st:
            if self.s.certificate is None:
                raise StageFailed(
                    Failure(
                        "No certificate",
                        "Upload the .pfx (or .p12, or a "
                        ".pem with the key) of the app registration.",
                    )
                )
            data = self.s.certificate.get_secret_value()
            password = self.s.certificate_password
            try:
                # Inside the budget like every other stage: a file may ask for up to
                # MAX_KDF_ROUNDS of password derivation before it is open.
                credential = self._call(
                    lambda: load_credential(
                        data,
                        password=password.get_secret_value() if password else None,
                        alias=self.s.certificate_alias,
                    ),
                    "certificate",
                    late=Failure(
                        "The certificate could not be opened within the time budget "
                        f"({self.budget.describe()})",
                        "Export the .pfx again with your tool's default encryption settings.",
                    ),
                )
            except CertificateError as exc:
                raise StageFailed(
                    Failure(type(exc).__doc__ or "Unusable certificate", exc.message)
                ) from None
            info = certificate_info(credential)
            self.sha1 = info.thumbprint_sha1
            alias = f" (alias {credential.alias!r})" if credential.alias else ""
            st.detail = (
                f"{info.subject}{alias}, thumbprint {info.thumbprint_sha1}, valid until "
                f"{info.not_after:%Y-%m-%d} ({info.days_left} days left)"
            )
        return credential

    def token(self, credential: LoadedCredential) -> str:
        with self.recorder.stage("token") as st:
            result = self._call(lambda: self._acquire(credential), self.authority_host)
            if "access_token" not in result:
                raise StageFailed(self._token_failure(result))
            token = str(result["access_token"])
            self.secrets.append(token)
            minutes = int(result.get("expires_in", 0)) // 60
            st.detail = (
                f"Signed in as app {self.s.client_id} in tenant {self.s.tenant_id}; "
                f"token valid for {minutes} min"
            )
        return token

    def mailbox(self, token: str) -> None:
        with self.recorder.stage("mailbox") as st:
            url = f"{self.graph}/users/{quote(self.s.account, safe='@')}"
            response = self._call(lambda: self._http("GET", url, token), self.graph)
            if response.status_code == 200:
                user = _json(response)
                address = user.get("mail") or user.get("userPrincipalName") or self.s.account
                st.detail = f"{user.get('displayName') or address} <{address}>"
                return
            code, message = _graph_error(response)
            if code == "Authorization_RequestDenied":
                # Reading users needs User.Read.All, which an app that only sends mail need not
                # have: do not fail on it; sending will find a missing mailbox.
                st.detail = (
                    "Not checked: the app may not read users (grant User.Read.All to "
                    "check the mailbox here); sending will check it"
                )
                return
            raise StageFailed(self._graph_failure(response.status_code, code, message))

    def send_permission(self, token: str) -> None:
        with self.recorder.stage("send_permission") as st:
            roles = _token_roles(token)
            if "Mail.Send" not in roles:
                granted = ", ".join(roles) or "none"
                raise StageFailed(
                    Failure(
                        f"The app's token does not grant Mail.Send (application permissions: "
                        f"{granted})",
                        _GRANT_MAIL_SEND,
                    )
                )
            st.detail = "Mail.Send granted (application permission)"

    def send(
        self,
        token: str,
        *,
        to: str,
        subject: str,
        body: str,
        message: dict[str, Any] | None = None,
    ) -> None:
        """``message``: a whole Graph message resource (the worker's); else plain text to ``to``."""
        with self.recorder.stage("send") as st:
            url = f"{self.graph}/users/{quote(self.s.account, safe='@')}/sendMail"
            payload = {
                "message": message
                or {
                    "subject": subject,
                    "body": {"contentType": "Text", "content": body},
                    "toRecipients": [{"emailAddress": {"address": to}}],
                }
            }
            response = self._call(lambda: self._http("POST", url, token, payload), self.graph)
            if response.status_code == 202:
                st.detail = (
                    f"Accepted by Microsoft Graph for {to} (HTTP 202): queued for "
                    "delivery, not yet delivered; the recipient's inbox (or Exchange "
                    "message trace) shows whether it arrived"
                )
                st.code = "202"
                return
            code, error = _graph_error(response)
            failure = self._graph_failure(response.status_code, code, error)
            if code == "ErrorAccessDenied" and "Mail.Send" not in _token_roles(token):
                failure.hint = _GRANT_MAIL_SEND
            raise StageFailed(failure)

    # ------------------------------------------------ network

    def _session(self) -> requests.Session:
        return _BudgetSession(self.budget, self.ca_bundle)

    def _acquire(self, credential: LoadedCredential) -> dict[str, Any]:
        assert credential.private_key_pem is not None
        session = self._session()
        try:
            # The constructor already fetches the tenant's OpenID configuration.
            app = msal.ConfidentialClientApplication(
                self.s.client_id,
                authority=f"{self.authority_host}/{self.s.tenant_id}",
                client_credential={
                    # With the certificate, msal signs PS256 and names it by x5t#S256.
                    "private_key": credential.private_key_pem.decode("ascii"),
                    "public_certificate": credential.certificate_pem,
                },
                http_client=session,
                instance_discovery=False,
            )
            result = app.acquire_token_for_client(scopes=[self.scope])
            return dict(result or {})
        finally:
            session.close()

    def _http(
        self, method: str, url: str, token: str, payload: dict[str, Any] | None = None
    ) -> requests.Response:
        with self._session() as session:
            return session.request(
                method, url, json=payload, headers={"Authorization": f"Bearer {token}"}
            )

    def _call(self, fn: Callable[[], T], where: str, *, late: Failure | None = None) -> T:
        """``fn()`` in a daemon thread; stop waiting for it when the budget is spent, and fail
        with ``late`` (by default: no answer from ``where``)."""
        results: list[T] = []
        raised: list[BaseException] = []

        def run() -> None:
            try:
                results.append(fn())
            except BaseException as exc:  # handed to the caller's thread below
                raised.append(exc)

        worker = threading.Thread(target=run, name=f"graph {where}", daemon=True)
        worker.start()
        worker.join(self.budget.remaining())
        if raised:
            raise raised[0]
        if not results:
            raise StageFailed(late or self._no_answer(where))
        return results[0]

    # ------------------------------------------------ explaining

    def _hint(self, template: str) -> str:
        return template.format(
            tenant=self.s.tenant_id,
            client_id=self.s.client_id,
            sha1=self.sha1,
            account=self.s.account,
        )

    def _no_answer(self, where: str) -> Failure:
        host = urlsplit(where).netloc or where
        return Failure(
            f"No answer from {host} within the time budget ({self.budget.describe()})",
            f"Check that this service can reach {host} over HTTPS (firewall, proxy).",
        )

    def _token_failure(self, result: dict[str, Any]) -> Failure:
        description = str(result.get("error_description") or result.get("error") or "no token")
        codes = result.get("error_codes") or []
        number = str(codes[0]) if codes else _aadsts_number(description)
        hint = _AADSTS_HINTS.get(number or "")
        return Failure(
            _first_sentence(description),
            self._hint(hint) if hint else None,
            f"AADSTS{number}" if number else result.get("error"),
        )

    def _graph_failure(self, status: int, code: str | None, message: str) -> Failure:
        hint = _GRAPH_HINTS.get(code or "")
        detail = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        return Failure(detail, self._hint(hint) if hint else None, code or str(status))

    def _explain(self, stage: str, exc: BaseException) -> Failure:
        where = self.authority_host if stage == "token" else self.graph
        host = urlsplit(where).netloc or where
        if isinstance(exc, requests.exceptions.SSLError):
            return Failure(
                f"TLS with {host} failed: {_short(exc)}",
                "The service does not trust the certificate it was shown: if a proxy inspects "
                "TLS, give the service that proxy's CA bundle.",
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return self._no_answer(where)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return Failure(
                f"Could not connect to {host}: {_short(exc)}",
                f"Check that this service can reach {host} over HTTPS (firewall, proxy).",
            )
        text = _chain_text(exc)
        number = _aadsts_number(text)
        if (
            stage == "token"
            and isinstance(exc, ValueError)
            and ("OIDC Discovery" in text or "authority configuration" in text)
        ):
            # msal raises ValueError when the tenant's OpenID configuration cannot be had:
            # Entra ID answers an unknown tenant there, before any token is asked for.
            status = _HTTP_STATUS.search(text)
            detail = (
                f"The identity provider does not know tenant {self.s.tenant_id}"
                if number
                else f"{host} has no OpenID configuration for tenant {self.s.tenant_id}"
                + (f" (HTTP {status.group(1)})" if status else "")
            )
            known = number or "90002"
            hint = _AADSTS_HINTS.get(known, _AADSTS_HINTS["90002"])
            return Failure(detail, self._hint(hint), f"AADSTS{known}")
        if number:
            template = _AADSTS_HINTS.get(number)
            return Failure(
                _first_sentence(_short(exc)),
                self._hint(template) if template else None,
                f"AADSTS{number}",
            )
        return Failure(f"{type(exc).__name__}: {_short(exc)}")

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, MASK)
        return text


class _BudgetSession(requests.Session):
    """requests, bounded by the run's budget, trusting ``ca_bundle`` (or the public CAs).

    ``trust_env`` is off: REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE would otherwise replace
    ``verify`` on every request msal makes, and a proxy from the environment could see the
    token.
    """

    def __init__(self, budget: Budget, ca_bundle: str | None) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = ca_bundle or True
        self._budget = budget

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        remaining = self._budget.remaining()
        if remaining <= 0:
            raise requests.exceptions.Timeout("time budget spent")
        kwargs["timeout"] = remaining
        return super().request(method, url, *args, **kwargs)


# ---------------------------------------------------------------- small parsers


def _token_roles(token: str) -> list[str]:
    """The ``roles`` claim of an access token, read without verifying its signature: it came
    straight from the authority over TLS, and only says what we may try."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    roles = claims.get("roles")
    return [str(r) for r in roles] if isinstance(roles, list) else []


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _graph_error(response: requests.Response) -> tuple[str | None, str]:
    """Graph's ``{"error": {"code", "message"}}``, or the status alone."""
    error = _json(response).get("error")
    if isinstance(error, dict):
        return error.get("code"), str(error.get("message") or "")[:300]
    return None, response.reason or ""


_AADSTS = re.compile(r"AADSTS(\d+)")
_HTTP_STATUS = re.compile(r"HTTP status: (\d{3})")


def _aadsts_number(text: str) -> str | None:
    match = _AADSTS.search(text)
    return match.group(1) if match else None


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and the ones it was raised from or during."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 5:
        parts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " ".join(parts)


def _first_sentence(description: str) -> str:
    """An AADSTS description without its trace and correlation ids."""
    text = " ".join(description.split())
    for marker in (" Trace ID:", " Correlation ID:", " Timestamp:"):
        text = text.split(marker, 1)[0]
    return text[:400]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
