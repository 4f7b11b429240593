"""An app registration signs in with its certificate: the certificate and token stages.

Shared by Microsoft Graph and SMTP with OAuth 2.0 (Microsoft 365): the same msal client
credentials grant (the certificate signs a PS256 client assertion named by ``x5t#S256``), the
same stage wording and AADSTS hints; only the scope differs. ``TokenCache`` keeps tokens per
credential (authority, tenant, client, certificate, scope) until shortly before they expire,
for the senders that ask often; a connection test always asks the identity provider afresh,
since that is what it tests.
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msal
import requests

from ..models import CertificateInfo, ConnectionTestResult, ServerType, Stage
from ..models.fields import SECRET_MASK
from .certificates import CertificateError, LoadedCredential, certificate_info, load_credential
from .stages import Budget, Failure, StageFailed, StageRecorder

__all__ = [
    "PUBLIC_AUTHORITY_HOST",
    "AppRegistration",
    "AppSignIn",
    "TokenCache",
    "acquire_app_token",
    "default_token_cache",
    "test_sign_in",
]

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
#: A cached token is used only while it has at least this long left to live.
TOKEN_MARGIN_S = 300.0

T = TypeVar("T")

#: What an AADSTS code means for the admin. {tenant}, {client_id} and {sha1} are filled in.
AADSTS_HINTS: dict[str, str] = {
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


@dataclass(frozen=True, repr=False)
class AppRegistration:
    """Who signs in: an app registration of a tenant, with its certificate (write-only)."""

    tenant_id: str
    client_id: str
    account: str
    certificate: bytes | None
    certificate_alias: str | None
    certificate_password: str | None

    @classmethod
    def of(cls, settings: Any) -> AppRegistration:
        """From GraphSettings, or SmtpSettings with OAuth 2.0 (the fields they share)."""
        cert, password = settings.certificate, settings.certificate_password
        return cls(
            tenant_id=str(settings.tenant_id),
            client_id=str(settings.client_id),
            account=str(settings.account),
            certificate=cert.get_secret_value() if cert is not None else None,
            certificate_alias=settings.certificate_alias,
            certificate_password=password.get_secret_value() if password is not None else None,
        )

    def __repr__(self) -> str:
        return f"AppRegistration(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"


class BudgetSession(requests.Session):
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


def acquire_app_token(
    *,
    authority_host: str,
    tenant_id: str,
    client_id: str,
    credential: LoadedCredential,
    scope: str,
    http_client: requests.Session,
) -> dict[str, Any]:
    """msal's client credentials grant with the certificate: the token response, or its error."""
    assert credential.private_key_pem is not None
    # The constructor already fetches the tenant's OpenID configuration.
    app = msal.ConfidentialClientApplication(
        client_id,
        authority=f"{authority_host.rstrip('/')}/{tenant_id}",
        client_credential={
            # With the certificate, msal signs PS256 and names it by x5t#S256.
            "private_key": credential.private_key_pem.decode("ascii"),
            "public_certificate": credential.certificate_pem,
        },
        http_client=http_client,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=[scope])
    return dict(result or {})


CacheKey = tuple[str, str, str, str, str]


class TokenCache:
    """Access tokens per credential, until ``margin_s`` before they expire. Thread-safe."""

    def __init__(self, *, margin_s: float = TOKEN_MARGIN_S, clock: Callable[[], float] = time.time):
        self._tokens: dict[CacheKey, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._margin = margin_s
        self._clock = clock

    def get(self, key: CacheKey) -> tuple[str, float] | None:
        """The token and its seconds left, when it has more than the margin left."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            left = entry[1] - self._clock()
            if left <= self._margin:
                del self._tokens[key]
                return None
            return entry[0], left

    def put(self, key: CacheKey, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = (token, self._clock() + expires_in)

    def discard(self, key: CacheKey, token: str) -> None:
        """Forget ``token`` (a server refused it), unless another one has replaced it."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and entry[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_DEFAULT_CACHE = TokenCache()


def default_token_cache() -> TokenCache:
    """The process's token cache (the senders share it)."""
    return _DEFAULT_CACHE


class AppSignIn:
    """The certificate and token stages of one run, recorded on ``recorder``.

    ``recorder`` is set by the run that owns it (Graph's, or SMTP's); its ``explain`` calls
    ``explain`` here for the stages of this class.
    """

    def __init__(
        self,
        registration: AppRegistration,
        *,
        authority_host: str,
        budget: Budget,
        ca_bundle: str | None,
        scope: str,
    ) -> None:
        self.reg = registration
        self.authority_host = authority_host.rstrip("/")
        self.budget = budget
        self.ca_bundle = ca_bundle
        self.scope = scope
        #: Every secret of the run, for redaction: the certificate's password; the token joins.
        cert = registration.certificate
        self.secrets: list[str] = [
            s
            for s in (
                registration.certificate_password,
                base64.b64encode(cert).decode() if cert else None,
            )
            if s
        ]
        self.recorder: StageRecorder | None = None
        self.sha1 = "(unknown)"
        self.sha256 = ""
        self.info: CertificateInfo | None = None

    # ------------------------------------------------ stages

    def certificate(self) -> LoadedCredential:
        assert self.recorder is not None
        with self.recorder.stage("certificate") as st:
            data = self.reg.certificate
            if data is None:
                raise StageFailed(
                    Failure(
                        "No certificate",
                        "Upload the .pfx (or .p12, or a "
                        ".pem with the key) of the app registration.",
                    )
                )
            try:
                # Inside the budget like every other stage: a file may ask for up to
                # MAX_KDF_ROUNDS of password derivation before it is open.
                credential = self.call(
                    lambda: load_credential(
                        data,
                        password=self.reg.certificate_password,
                        alias=self.reg.certificate_alias,
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
            self.info = info
            self.sha1, self.sha256 = info.thumbprint_sha1, info.thumbprint_sha256
            alias = f" (alias {credential.alias!r})" if credential.alias else ""
            st.detail = (
                f"{info.subject}{alias}, thumbprint {info.thumbprint_sha1}, valid until "
                f"{info.not_after:%Y-%m-%d} ({info.days_left} days left)"
            )
        return credential

    def cache_key(self) -> CacheKey:
        """Whose token it is: the authority, tenant, client, certificate (once loaded), scope."""
        return (
            self.authority_host,
            self.reg.tenant_id,
            self.reg.client_id,
            self.sha256,
            self.scope,
        )

    def token(self, credential: LoadedCredential, *, cache: TokenCache | None = None) -> str:
        """A token for ``scope``: from ``cache`` when it holds one, else from the authority."""
        assert self.recorder is not None
        key = self.cache_key()
        with self.recorder.stage("token") as st:
            cached = cache.get(key) if cache is not None else None
            if cached is not None:
                token, left = cached
                self.secrets.append(token)
                st.detail = (
                    f"Signed in as app {self.reg.client_id} in tenant {self.reg.tenant_id}; "
                    f"cached token, valid for {int(left) // 60} min"
                )
                return token
            result = self.call(lambda: self._acquire(credential), self.authority_host)
            if "access_token" not in result:
                raise StageFailed(self._token_failure(result))
            token = str(result["access_token"])
            self.secrets.append(token)
            expires_in = int(result.get("expires_in", 0))
            if cache is not None and expires_in > 0:
                cache.put(key, token, expires_in)
            st.detail = (
                f"Signed in as app {self.reg.client_id} in tenant {self.reg.tenant_id}; "
                f"token valid for {expires_in // 60} min"
            )
        return token

    # ------------------------------------------------ network

    def session(self) -> requests.Session:
        return BudgetSession(self.budget, self.ca_bundle)

    def _acquire(self, credential: LoadedCredential) -> dict[str, Any]:
        session = self.session()
        try:
            return acquire_app_token(
                authority_host=self.authority_host,
                tenant_id=self.reg.tenant_id,
                client_id=self.reg.client_id,
                credential=credential,
                scope=self.scope,
                http_client=session,
            )
        finally:
            session.close()

    def call(self, fn: Callable[[], T], where: str, *, late: Failure | None = None) -> T:
        """``fn()`` in a daemon thread; stop waiting for it when the budget is spent, and fail
        with ``late`` (by default: no answer from ``where``).

        With ``late`` given (work of ours, such as opening a certificate, not a peer's answer),
        a result that came after the budget is late too: a call that holds the GIL (the
        certificate's key derivation) keeps this thread from waking at the deadline, so its
        result may be there when the wait returns, however long it took."""
        results: list[T] = []
        raised: list[BaseException] = []

        def run() -> None:
            try:
                results.append(fn())
            except BaseException as exc:  # handed to the caller's thread below
                raised.append(exc)

        worker = threading.Thread(target=run, name=f"sign-in {where}", daemon=True)
        worker.start()
        worker.join(self.budget.remaining())
        if raised:
            raise raised[0]
        if not results or (late is not None and self.budget.expired):
            raise StageFailed(late or self.no_answer(where))
        return results[0]

    # ------------------------------------------------ explaining

    def hint(self, template: str) -> str:
        return template.format(
            tenant=self.reg.tenant_id,
            client_id=self.reg.client_id,
            sha1=self.sha1,
            account=self.reg.account,
        )

    def no_answer(self, where: str) -> Failure:
        host = urlsplit(where).netloc or where
        return Failure(
            f"No answer from {host} within the time budget ({self.budget.describe()})",
            f"Check that this service can reach {host} over HTTPS (firewall, proxy).",
        )

    def _token_failure(self, result: dict[str, Any]) -> Failure:
        description = str(result.get("error_description") or result.get("error") or "no token")
        codes = result.get("error_codes") or []
        number = str(codes[0]) if codes else aadsts_number(description)
        hint = AADSTS_HINTS.get(number or "")
        return Failure(
            first_sentence(description),
            self.hint(hint) if hint else None,
            f"AADSTS{number}" if number else result.get("error"),
        )

    def explain(self, stage: str, exc: BaseException, where: str | None = None) -> Failure:
        """A failure of a stage that talks HTTPS to ``where`` (default: the authority)."""
        where = where or self.authority_host
        host = urlsplit(where).netloc or where
        if isinstance(exc, requests.exceptions.SSLError):
            return Failure(
                f"TLS with {host} failed: {short(exc)}",
                "The service does not trust the certificate it was shown: if a proxy inspects "
                "TLS, give the service that proxy's CA bundle.",
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return self.no_answer(where)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return Failure(
                f"Could not connect to {host}: {short(exc)}",
                f"Check that this service can reach {host} over HTTPS (firewall, proxy).",
            )
        text = chain_text(exc)
        number = aadsts_number(text)
        if (
            stage == "token"
            and isinstance(exc, ValueError)
            and ("OIDC Discovery" in text or "authority configuration" in text)
        ):
            # msal raises ValueError when the tenant's OpenID configuration cannot be had:
            # Entra ID answers an unknown tenant there, before any token is asked for.
            status = _HTTP_STATUS.search(text)
            detail = (
                f"The identity provider does not know tenant {self.reg.tenant_id}"
                if number
                else f"{host} has no OpenID configuration for tenant {self.reg.tenant_id}"
                + (f" (HTTP {status.group(1)})" if status else "")
            )
            known = number or "90002"
            hint = AADSTS_HINTS.get(known, AADSTS_HINTS["90002"])
            return Failure(detail, self.hint(hint), f"AADSTS{known}")
        if number:
            template = AADSTS_HINTS.get(number)
            return Failure(
                first_sentence(short(exc)),
                self.hint(template) if template else None,
                f"AADSTS{number}",
            )
        return Failure(f"{type(exc).__name__}: {short(exc)}")

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, SECRET_MASK)
        return text


def test_sign_in(
    registration: AppRegistration,
    *,
    server_type: ServerType,
    authority_host: str,
    scope: str,
    budget_s: float,
    ca_bundle: str | None = None,
    progress: Callable[[Stage], None] | None = None,
) -> ConnectionTestResult:
    """The certificate and token stages alone, with a fresh token: what tells whether the
    identity provider accepts a certificate (a next certificate, before it is promoted)."""
    sign_in = AppSignIn(
        registration,
        authority_host=authority_host,
        budget=Budget(budget_s),
        ca_bundle=ca_bundle,
        scope=scope,
    )
    recorder = StageRecorder(
        server_type, explain=sign_in.explain, progress=progress, redact=sign_in.redact
    )
    sign_in.recorder = recorder
    with contextlib.suppress(StageFailed):  # recorded already; the result says which and why
        sign_in.token(sign_in.certificate())
    return recorder.result()


test_sign_in.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


# ---------------------------------------------------------------- small parsers

_AADSTS = re.compile(r"AADSTS(\d+)")
_HTTP_STATUS = re.compile(r"HTTP status: (\d{3})")


def aadsts_number(text: str) -> str | None:
    match = _AADSTS.search(text)
    return match.group(1) if match else None


def chain_text(exc: BaseException) -> str:
    """The messages of an exception and the ones it was raised from or during."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 5:
        parts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " ".join(parts)


def first_sentence(description: str) -> str:
    """An AADSTS description without its trace and correlation ids."""
    text = " ".join(description.split())
    for marker in (" Trace ID:", " Correlation ID:", " Timestamp:"):
        text = text.split(marker, 1)[0]
    return text[:400]


def short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
