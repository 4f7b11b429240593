"""The one place an HTTP exchange becomes a model or an error.

Every call of every resource goes through :class:`Http`: it builds the URL, adds the bearer
token, turns transport failures into :class:`~elegere_widgets.errors.ServiceUnavailable`,
turns any non-2xx answer into the matching :class:`~elegere_widgets.errors.ServiceError`
(through :func:`~elegere_widgets.errors.from_problem`, the single status/type table), and
turns a 2xx body into a model with a pydantic ``TypeAdapter``. Resources never look at a
status code or a raw body themselves.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from .._version import __version__
from ..errors import (
    InternalError,
    RateLimited,
    ServiceError,
    ServiceUnavailable,
    from_problem,
)
from ..models.problems import Problem
from ..models.usage import Page
from ._args import API_PREFIX, display_url, normalize_base_url

T = TypeVar("T")

# Only method, path, status and time are ever logged: never headers (the token) or bodies
# (passwords, certificates).
logger = logging.getLogger("elegere_widgets.client")

USER_AGENT = f"elegere-widgets/{__version__} httpx/{httpx.__version__}"

# Gateways answer these while the service restarts or is redeployed.
_TRANSIENT = {502, 503, 504}


# ---------------------------------------------------------------- the session


class Http:
    """An httpx client, the service root and the token: what every resource shares."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float,
        http_client: httpx.Client | None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.display_url = display_url(self.base_url)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}.")
        self.timeout = float(timeout)
        self.token = token
        # A client passed in belongs to the caller, who closes it; one made here is ours.
        self._owns_client = http_client is None
        self._client = http_client if http_client is not None else httpx.Client()

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        if value is not None:
            if not isinstance(value, str):
                raise TypeError(f"token must be a string, not {type(value).__name__}.")
            # A token pasted from a file often ends with a newline.
            value = value.strip()
            if not value:
                raise ValueError("token must not be empty; pass None to call without one.")
        self._token = value

    def __repr__(self) -> str:
        return f"Http(base_url={self.display_url!r})"

    # ------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        api: bool = True,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request; answer the 2xx response or raise the matching error.

        ``path`` is below ``/api/v1`` unless ``api`` is false (the sign-in endpoint lives at
        the service root). With ``stream`` the body of a 2xx answer is left unread for the
        caller (who must close the response); an error's body is read, to map it.
        """
        url = self.base_url + (API_PREFIX if api else "") + path
        sent_headers = {
            "Accept": "application/json, application/problem+json",
            "User-Agent": USER_AGENT,
        }
        if self._token is not None:
            sent_headers["Authorization"] = f"Bearer {self._token}"
        sent_headers.update(headers or {})
        started = time.perf_counter()
        try:
            request = self._client.build_request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=sent_headers,
                timeout=self.timeout,
            )
            # With stream, the timeout bounds each network wait, not the whole transfer.
            response = self._client.send(request, stream=stream)
            if stream and not response.is_success:
                response.read()  # a problem+json body is small; the error mapping reads it
        except httpx.TransportError as exc:
            raise unreachable(exc, self.display_url, self.timeout) from exc
        except httpx.RequestError as exc:  # e.g. a body a proxy compressed badly
            raise ServiceUnavailable(
                f"The answer of the eLegere service at {self.display_url} could not be read "
                f"({exc}). Try again in a moment."
            ) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("%s %s -> %d in %.0f ms", method, path, response.status_code, elapsed_ms)
        if not response.is_success:
            raise error_from_response(response, self.display_url)
        return response

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


class Resource:
    """Base of the resources (``client.workspaces``, ``client.email_servers``...)."""

    def __init__(self, http: Http) -> None:
        self._http = http


# ---------------------------------------------------------------- 2xx -> model


# Building a TypeAdapter compiles a validator: once per target type is enough.
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(into: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(into)
    if adapter is None:
        adapter = _ADAPTERS[into] = TypeAdapter(into)
    return adapter


def parse(response: httpx.Response, into: type[T]) -> T:
    """The 2xx body as ``into`` (a model, or ``list[Model]``...), or InternalError."""
    what = f"{response.request.method} {response.request.url.path}"
    try:
        # Straight from the bytes: pydantic's parser builds the models without the dicts and
        # lists of json.loads (a third of a 1,100-server list's parse time).
        value: T = _adapter(into).validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise InternalError(
                f"{what} answered {kind}, not JSON. Is the base URL the eLegere service's address?"
            ) from None
        where = ".".join(str(p) for p in first["loc"]) or "the body"
        raise InternalError(
            f"{what} answered in a shape this client does not understand ({where}: "
            f"{first['msg']}). Are the client and the service the same version?"
        ) from None
    return value


def follow_pages(
    http: Http, path: str, params: Mapping[str, str | int], item: type[T], what: str
) -> Iterator[T]:
    """Every item of a cursor-paged list, page after page."""
    seen: set[str] = set()
    params = dict(params)
    while True:
        page = parse(http.request("GET", path, params=params), Page[item])  # type: ignore[valid-type]
        yield from page.items
        cursor = page.next_cursor
        if not cursor:
            return
        # A service that hands back a cursor twice would keep this loop going forever.
        if cursor in seen:
            raise InternalError(
                f"The service returned the same {what} cursor twice; stopped paging."
            )
        seen.add(cursor)
        params["cursor"] = cursor


def etag_version(response: httpx.Response) -> int | None:
    """The version in an ``ETag: "3"`` header (weak or strong), or None."""
    raw = response.headers.get("etag")
    if raw is None:
        return None
    raw = raw.strip().removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() else None


# ---------------------------------------------------------------- errors


def unreachable(exc: httpx.TransportError, url: str, timeout: float) -> ServiceUnavailable:
    """A transport failure as a message that says what to check."""
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        why = f"no connection within {timeout:g} s. Is it running, and is the address right?"
        return ServiceUnavailable(f"Could not reach the eLegere service at {url}: {why}")
    if isinstance(exc, httpx.TimeoutException):
        return ServiceUnavailable(
            f"The eLegere service at {url} did not answer within {timeout:g} s. Try again, "
            "or give it more time with Client(..., timeout=...)."
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServiceUnavailable(
            f"The eLegere service at {url} closed the connection without answering; it may "
            "be restarting. Try again in a moment."
        )
    if "refused" in text:
        why = "connection refused. Is it running?"
    elif any(s in text for s in ("name or service", "nodename", "getaddrinfo", "name resolution")):
        why = "the host name could not be resolved. Check the address (ELEGERE_URL)."
    elif "certificate" in text or "ssl" in text:
        why = f"the TLS handshake failed ({exc}). Check the address and its certificate."
    else:
        why = f"{exc or type(exc).__name__}. Is it running, and is the address right?"
    return ServiceUnavailable(f"Could not reach the eLegere service at {url}: {why}")


def error_from_response(response: httpx.Response, url: str) -> ServiceError:
    """The exception for a non-2xx answer.

    A JSON body (problem+json, or any other JSON object) goes through ``from_problem``; any
    other body (a proxy's HTML page) is never shown: a sentence by status replaces it.
    """
    status = response.status_code
    reason = _reason(response)
    problem = _problem_from_json(status, reason, response)
    if problem is None:
        problem = Problem(
            title=reason, status=status, detail=_plain_message(status, reason, response, url)
        )
    error = from_problem(status, problem)
    if isinstance(error, RateLimited):
        error.retry_after = _retry_after(response, problem)
    return error


def _reason(response: httpx.Response) -> str:
    if response.reason_phrase:
        return response.reason_phrase
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return "Error"


def _problem_from_json(status: int, reason: str, response: httpx.Response) -> Problem | None:
    """A Problem from a JSON object body, filling what a non-problem body leaves out."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    # The HTTP status is the truth; RFC 9457 calls the member advisory.
    body = {**body, "status": status}
    detail = body.get("detail")
    if isinstance(detail, list) and not body.get("errors"):
        # FastAPI's own validation answer ({"detail": [{"loc", "msg", ...}]}), should one
        # slip past the service's problem handler: still field errors, not a crash.
        body["errors"] = _fastapi_field_errors(detail)
        body["detail"] = ""
    elif detail is not None and not isinstance(detail, str):
        body["detail"] = str(detail)
    try:
        problem = Problem.model_validate(body)
    except ValidationError:
        # A JSON body that is not a problem at all: keep only what reads as a message.
        problem = Problem(status=status, title=reason, detail=_text_of(body))
    if not problem.detail:
        problem.detail = (
            "; ".join(f"{e.field}: {e.message}" for e in problem.errors or [])
            or _text_of(body)
            or problem.title
            or f"The service answered {status} {reason}."
        )
    return problem


def _fastapi_field_errors(items: list[Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        loc = [p for p in item.get("loc", []) if isinstance(p, str)]
        loc = [p for p in loc if p not in ("body", "query", "path", "header", "settings")]
        out.append({"field": loc[-1] if loc else "body", "message": str(item.get("msg", ""))})
    return out


def _text_of(body: Mapping[str, Any]) -> str:
    """A message from a JSON error body of another convention (OAuth, or a plain message)."""
    for key in ("detail", "error_description", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _plain_message(status: int, reason: str, response: httpx.Response, url: str) -> str:
    head = f"The service answered {status} {reason}"
    if status in _TRANSIENT:
        return f"{head}; it may be restarting. Try again in a moment."
    if status >= 500:
        return f"{head}: it failed on its side. Try again; if it keeps failing, tell its admin."
    if 300 <= status < 400:
        location = response.headers.get("location")
        where = f" to {location}" if location else ""
        return f"{head}{where}: use the address it redirects to as the base URL."
    if status == 401:
        return f"{head}: sign in again."
    if status == 404:
        return f"{head} for {response.request.url.path}: is {url} the eLegere service?"
    if status == 413:
        return f"{head}: the request is too large (a certificate file over the limit?)."
    if status == 429:
        return f"{head}: too many requests. Wait a moment, then try again."
    return f"{head}."


def _retry_after(response: httpx.Response, problem: Problem) -> int | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), else from the body."""
    raw = response.headers.get("retry-after", "").strip()
    if raw.isdigit():
        return int(raw)
    if raw:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))
    extra = (problem.model_extra or {}).get("retry_after")
    return extra if isinstance(extra, int) and not isinstance(extra, bool) else None
