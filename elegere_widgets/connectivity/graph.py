"""Microsoft Graph connection test and sending: app-only, with a certificate, over msal.

``test_graph`` walks certificate → token → mailbox → send_permission and sends nothing;
``send_graph`` walks certificate → token → send and posts one message (its ``progress`` hears
each stage as it ends, as a test's does). Network and protocol
problems never raise: they become a failed stage whose hint names what to change, in the
Azure portal or in the form. The whole run ends within its time budget: every network call
runs in a daemon thread that is abandoned at the deadline (msal has no overall timeout, and
a requests timeout bounds each socket read, not a whole exchange).

The authority host and the Graph base URL are the service's settings (public cloud by
default), so national clouds and tests can point elsewhere. The scope stays Graph's
(``https://graph.microsoft.com/.default``) wherever the authority is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import jwt
import requests

from ..models import ConnectionTestResult, GraphSettings, Stage
from ..models.fields import SECRET_MASK
from .app_token import PUBLIC_AUTHORITY_HOST, AppRegistration, AppSignIn
from .smtp import SendOutcome, sent_outcome
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

PUBLIC_GRAPH_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
MASK = SECRET_MASK

_MAILBOX_NOT_FOUND = (
    "Mailbox not found: check Account; it must be the address of an existing Exchange Online "
    "mailbox (a user or shared mailbox) in tenant {tenant}."
)
#: Exchange refused the app this mailbox (ErrorSendAsDenied, or a 403 to sendMail): Microsoft's
#: current advice is to scope the app to the mailboxes it sends as with RBAC for Applications
#: (Application Access Policies, the older way, are deprecated) instead of Mail.Send for every
#: mailbox of the tenant.
_SCOPE_TO_MAILBOX = (
    "Exchange does not let this app send as {account}. Give the app this mailbox with RBAC for "
    "Applications (Application Access Policies are deprecated) rather than Mail.Send for the "
    "whole tenant: in Exchange Online PowerShell run New-ManagementScope -Name "
    '"elegere {account}" -RecipientRestrictionFilter "PrimarySmtpAddress -eq \'{account}\'", '
    'then New-ManagementRoleAssignment -Role "Application Mail.Send" -App {client_id} '
    '-CustomResourceScope "elegere {account}" (once New-ServicePrincipal -AppId {client_id} '
    "has registered the app in Exchange); if an application access policy still names this "
    "app, add {account} to it or remove it."
)
_GRANT_MAIL_SEND = (
    "Give the app sending as {account}: best scoped to that mailbox with RBAC for Applications "
    '(New-ManagementRoleAssignment -Role "Application Mail.Send" -App {client_id} with a '
    "management scope), or for every mailbox of the tenant: in the app registration open API "
    "permissions → Add a permission → Microsoft Graph → Application permissions → Mail.Send, "
    "then Grant admin consent."
)
#: A token without Mail.Send proves nothing either way: RBAC for Applications grants sending in
#: Exchange, and its grants are not in the token. Only a send can tell, so the test passes.
_SEND_NOT_IN_TOKEN = (
    "Not granted for the whole tenant (the token's application permissions: {granted}): "
    "sending as {account} needs Application Mail.Send for this app in Exchange's RBAC for "
    "Applications; Send test email checks it"
)
_GRAPH_HINTS: dict[str, str] = {
    "ResourceNotFound": _MAILBOX_NOT_FOUND,
    "Request_ResourceNotFound": _MAILBOX_NOT_FOUND,
    "ErrorInvalidUser": _MAILBOX_NOT_FOUND,
    "MailboxNotEnabledForRESTAPI": "The account has no Exchange Online mailbox: use the "
    "address of a licensed user or a shared mailbox.",
    "ErrorAccessDenied": _SCOPE_TO_MAILBOX,
    "ErrorSendAsDenied": _SCOPE_TO_MAILBOX,
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
    progress: Callable[[Stage], None] | None = None,
) -> SendOutcome:
    """Send one plain-text message as ``account`` with ``POST /users/{account}/sendMail``.

    Graph answers 202 when it *accepted* the message: delivery happens later, and the detail
    says so. Every network or protocol problem is a failed ``SendOutcome``, never an exception.
    ``progress`` gets each stage (certificate → token → send) as it ends.
    """
    run = _GraphRun(settings, authority_host, graph_base_url, budget_s, ca_bundle, scope, progress)
    try:
        credential = run.certificate()
        token = run.token(credential)
        run.send(token, to=to, subject=subject, body=body)
    except StageFailed:
        pass  # recorded already; the outcome says which stage and why
    return sent_outcome(run.recorder)


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
        pass  # recorded already
    failed = run.recorder.failed
    return sent_outcome(run.recorder), failed.code if failed is not None else None


# ---------------------------------------------------------------- one run, stage by stage


class _GraphRun(AppSignIn):
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
        super().__init__(
            AppRegistration.of(settings),
            authority_host=authority_host,
            budget=Budget(budget_s),
            ca_bundle=ca_bundle,
            scope=scope,
        )
        self.s = settings
        self.graph = graph_base_url.rstrip("/")
        self.recorder: StageRecorder = StageRecorder(
            "microsoft_graph", explain=self._explain, progress=progress, redact=self.redact
        )

    # ------------------------------------------------ stages

    def mailbox(self, token: str) -> None:
        with self.recorder.stage("mailbox") as st:
            url = f"{self.graph}/users/{quote(self.s.account, safe='@')}"
            response = self.call(lambda: self._http("GET", url, token), self.graph)
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
                st.detail = _SEND_NOT_IN_TOKEN.format(granted=granted, account=self.s.account)
                return
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
            response = self.call(lambda: self._http("POST", url, token, payload), self.graph)
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
                failure.hint = self.hint(_GRANT_MAIL_SEND)
            elif response.status_code == 403 or code == "ErrorSendAsDenied":
                failure.hint = self.hint(_SCOPE_TO_MAILBOX)
            raise StageFailed(failure)

    # ------------------------------------------------ network

    def _http(
        self, method: str, url: str, token: str, payload: dict[str, Any] | None = None
    ) -> requests.Response:
        with self.session() as session:
            return session.request(
                method, url, json=payload, headers={"Authorization": f"Bearer {token}"}
            )

    def _graph_failure(self, status: int, code: str | None, message: str) -> Failure:
        hint = _GRAPH_HINTS.get(code or "")
        detail = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        return Failure(detail, self.hint(hint) if hint else None, code or str(status))

    def _explain(self, stage: str, exc: BaseException) -> Failure:
        return self.explain(stage, exc, self.authority_host if stage == "token" else self.graph)


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
