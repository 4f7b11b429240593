"""The ``Client``: one httpx session, one attribute per resource."""

from __future__ import annotations

import os
from types import TracebackType

import httpx
from pydantic import BaseModel

from ..errors import AuthenticationRequired, ElegereError, InternalError, ServiceError
from ..models.workspaces import Me
from ._args import require_text
from ._http import Http, parse
from .audit_events import AuditEvents
from .catalog import CustomActions, SchedulerJobs
from .deliveries import Deliveries
from .email_servers import EmailServers
from .messages import MailSettings, Messages
from .workspaces import Workspaces

DEFAULT_TIMEOUT = 30.0
TOKEN_PATH = "/identityprovider/connect/token"
REVOKE_PATH = "/identityprovider/connect/revocation"


class _TokenAnswer(BaseModel):
    access_token: str
    expires_in: int | None = None
    token_type: str = "Bearer"


class Client:
    """A client of the eLegere email servers service.

    ``base_url`` is the service root (``http://127.0.0.1:8765``); the client adds
    ``/api/v1``. Pass ``http_client`` to use your own ``httpx.Client`` (a proxy, a CA
    bundle, a transport in tests): it stays yours to close. ``timeout`` applies to each
    request. Use it as a context manager, or call :meth:`close`.

    Every call returns models and raises :class:`~elegere_widgets.errors.ElegereError`
    subclasses: ServiceUnavailable when the service cannot be reached, a ServiceError
    subclass when it answers with a problem.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._http = Http(base_url, token, timeout=timeout, http_client=http_client)
        self.workspaces = Workspaces(self._http)
        self.email_servers = EmailServers(self._http, parent="workspaces")
        self.organization_email_servers = EmailServers(self._http, parent="organizations")
        self.custom_actions = CustomActions(self._http)
        self.scheduler_jobs = SchedulerJobs(self._http)
        self.deliveries = Deliveries(self._http)
        self.audit_events = AuditEvents(self._http)
        self.messages = Messages(self._http)
        self.mail_settings = MailSettings(self._http)

    # ------------------------------------------------------------ construction

    @classmethod
    def from_env(
        cls, *, timeout: float = DEFAULT_TIMEOUT, http_client: httpx.Client | None = None
    ) -> Client:
        """A client for ``ELEGERE_URL`` with the token in ``ELEGERE_TOKEN``."""
        url = os.environ.get("ELEGERE_URL", "").strip()
        token = os.environ.get("ELEGERE_TOKEN", "").strip()
        missing = [
            name for name, value in (("ELEGERE_URL", url), ("ELEGERE_TOKEN", token)) if not value
        ]
        if missing:
            raise ElegereError(
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
                "Set ELEGERE_URL to the service's address (e.g. http://127.0.0.1:8765) and "
                "ELEGERE_TOKEN to an API token (elegere token create), or use "
                "Client.sign_in(url, email, password)."
            )
        return cls(url, token, timeout=timeout, http_client=http_client)

    @classmethod
    def sign_in(
        cls,
        base_url: str,
        email: str,
        password: str,
        *,
        client_id: str = "elegere-widgets",
        scope: str = "api",
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> Client:
        """Sign in with an email and a password; a client that carries the token.

        The token endpoint lives at the service root, not under ``/api/v1``, as in
        eLegere's Web API. Wrong credentials raise AuthenticationRequired.
        """
        form = {
            "grant_type": "password",
            "username": require_text(email, "email").strip(),
            "password": require_text(password, "password"),
            "client_id": require_text(client_id, "client_id"),
            "scope": scope,
        }
        client = cls(base_url, None, timeout=timeout, http_client=http_client)
        try:
            try:
                response = client._http.request("POST", TOKEN_PATH, data=form, api=False)
            except ServiceError as exc:
                # OAuth answers 400 invalid_grant for a bad password; our service, 401.
                status = exc.problem.status if exc.problem else exc.status
                if status in (400, 401):
                    raise AuthenticationRequired("Wrong email or password.") from None
                raise
            answer = parse(response, _TokenAnswer)
            if answer.token_type.lower() != "bearer":
                raise InternalError(
                    f"The sign-in answered a {answer.token_type!r} token; expected a bearer token."
                )
            client._http.token = answer.access_token
        except BaseException:
            client.close()
            raise
        return client

    def sign_out(self) -> None:
        """Revoke this client's token at the service (it stops working everywhere at once),
        then forget it. Signing out twice is harmless."""
        token = self._http.token
        if token is None:
            return
        form = {"token": token, "token_type_hint": "access_token"}
        self._http.request("POST", REVOKE_PATH, data=form, api=False)
        self._http.token = None

    # ------------------------------------------------------------ calls

    def me(self) -> Me:
        """The signed-in caller and its roles."""
        return parse(self._http.request("GET", "/me"), Me)

    @property
    def base_url(self) -> str:
        """The service root, as given (without ``/api/v1`` or a trailing slash)."""
        return self._http.base_url

    @property
    def timeout(self) -> float:
        return self._http.timeout

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connections, unless the httpx client was passed in (then it is yours)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the token: a repr ends up in notebooks, logs and bug reports.
        return f"Client(base_url={self._http.display_url!r})"
