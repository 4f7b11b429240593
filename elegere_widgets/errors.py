"""One exception tree for the client, the widgets and the service.

::

    ElegereError                      anything this package raises on purpose
    ├── ServiceUnavailable            the service could not be reached or did not answer in time
    └── ServiceError                  the service answered with a problem (RFC 9457)
        ├── BadRequest                400  the request itself was malformed
        ├── AuthenticationRequired    401  no token, a bad token or an expired sign-in
        ├── PermissionDenied          403  signed in, but without the right to do this
        │   └── ReadOnlyServer        403  an inherited server: manage it in the Organization
        ├── NotFound                  404  no such workspace/server, or not one the caller may know of
        ├── MethodNotAllowed          405  the endpoint does not take that HTTP method
        ├── Conflict                  409
        │   ├── NameTaken             409  another server the workspace can see has this name
        │   ├── ServerInUse           409  custom actions or scheduler jobs send through it (.usages)
        │   └── IdempotencyKeyReused  409  a message's idempotency key was used for another message
        ├── StaleVersion              412  someone else saved first: reload, then change again
        ├── PayloadTooLarge           413
        ├── InvalidSettings           422  field errors (.field_errors), also raised locally
        │   └── BadReplacement        422  the replacement chosen for a deleted server is not usable
        ├── PreconditionRequired      428
        │   ├── TestRequired          428  no passing connection test of exactly these settings
        │   └── VersionRequired       428  an update without If-Match
        ├── RateLimited               429  (.retry_after seconds)
        └── InternalError             5xx  a bug or outage on the service's side

The service turns an error into problem+json in one handler (``to_problem``); the client
turns problem+json back into the same class in one function (``from_problem``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .models.problems import FieldError, Problem
from .models.usage import Usage

PROBLEM_BASE = "/problems/"

__all__ = [
    "AuthenticationRequired",
    "BadReplacement",
    "BadRequest",
    "Conflict",
    "ElegereError",
    "IdempotencyKeyReused",
    "InternalError",
    "InvalidSettings",
    "MethodNotAllowed",
    "NameTaken",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "PreconditionRequired",
    "RateLimited",
    "ReadOnlyServer",
    "ServerInUse",
    "ServiceError",
    "ServiceUnavailable",
    "StaleVersion",
    "TestRequired",
    "VersionRequired",
    "from_problem",
]


class ElegereError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ServiceUnavailable(ElegereError):
    """The service could not be reached, or did not answer in time."""


class ServiceError(ElegereError):
    """The service answered with a problem document."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, *, problem: Problem | None = None) -> None:
        super().__init__(message)
        self.problem = problem

    @classmethod
    def type_uri(cls) -> str:
        return PROBLEM_BASE + cls.slug

    def to_problem(self) -> Problem:
        """The problem+json document that describes this error."""
        return Problem(
            type=self.type_uri(),
            title=self.title,
            status=self.status,
            detail=self.message,
            **self._problem_extras(),
        )

    def _problem_extras(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _from_problem(cls, problem: Problem) -> ServiceError:
        return cls(problem.detail or problem.title, problem=problem)


class BadRequest(ServiceError):
    """The request was malformed (not JSON, wrong content type)."""

    status, slug, title = 400, "bad-request", "Bad request"


class AuthenticationRequired(ServiceError):
    """No token, an unknown token, or a sign-in that expired: sign in again."""

    status, slug, title = 401, "authentication-required", "Authentication required"


class PermissionDenied(ServiceError):
    """Signed in, but without the right to do this."""

    status, slug, title = 403, "permission-denied", "Permission denied"


class ReadOnlyServer(PermissionDenied):
    """An inherited server: only the Organization's Admin or IT Delegates may change it."""

    slug, title = "read-only-server", "Inherited server is read-only"


class NotFound(ServiceError):
    """No such workspace or server, or not one the caller may know of."""

    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ServiceError):
    """The endpoint does not take that HTTP method."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ServiceError):
    """The request conflicts with the current state."""

    status, slug, title = 409, "conflict", "Conflict"


class NameTaken(Conflict):
    """Another server the workspace can see already has this name."""

    slug, title = "name-taken", "Name already in use"


class ServerInUse(Conflict):
    """Custom actions or scheduler jobs send through this server: choose a replacement."""

    slug, title = "server-in-use", "Email server in use"

    def __init__(
        self, message: str, *, usages: list[Usage] | None = None, problem: Problem | None = None
    ) -> None:
        super().__init__(message, problem=problem)
        self.usages: list[Usage] = list(usages or [])

    def _problem_extras(self) -> dict[str, Any]:
        return {"usages": self.usages}

    @classmethod
    def _from_problem(cls, problem: Problem) -> ServiceError:
        return cls(problem.detail or problem.title, usages=problem.usages, problem=problem)


class IdempotencyKeyReused(Conflict):
    """The idempotency key was used for another message in this workspace."""

    slug, title = "idempotency-key-reused", "Idempotency key used for another message"


class StaleVersion(ServiceError):
    """Someone else saved this server first: reload it, then make the change again."""

    status, slug, title = 412, "stale-version", "Changed by someone else"


class PayloadTooLarge(ServiceError):
    """The request body, or an uploaded certificate, is over the size limit."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class InvalidSettings(ServiceError):
    """One or more fields are invalid; ``field_errors`` says which and how to fix them."""

    status, slug, title = 422, "invalid-settings", "Invalid settings"

    def __init__(
        self,
        message: str | None = None,
        *,
        field_errors: list[FieldError] | None = None,
        problem: Problem | None = None,
    ) -> None:
        self.field_errors: list[FieldError] = list(field_errors or [])
        if message is None:
            message = "; ".join(f"{e.field}: {e.message}" for e in self.field_errors) or (
                "The settings are invalid."
            )
        super().__init__(message, problem=problem)

    def for_field(self, field: str) -> str | None:
        """The message for one field, or None when that field is fine."""
        return next((e.message for e in self.field_errors if e.field == field), None)

    def _problem_extras(self) -> dict[str, Any]:
        return {"errors": self.field_errors}

    @classmethod
    def _from_problem(cls, problem: Problem) -> ServiceError:
        return cls(problem.detail, field_errors=problem.errors, problem=problem)


class BadReplacement(InvalidSettings):
    """The replacement chosen for a deleted server cannot take over its usages."""

    slug, title = "bad-replacement", "Unusable replacement"


class PreconditionRequired(ServiceError):
    """A precondition of the request is missing."""

    status, slug, title = 428, "precondition-required", "Precondition required"


class TestRequired(PreconditionRequired):
    """No passing connection test of exactly these settings: test them, then add the server."""

    __test__ = False  # not a pytest test class
    slug, title = "test-required", "Connection test required"


class VersionRequired(PreconditionRequired):
    """An update must say which version it changes (If-Match)."""

    slug, title = "version-required", "Version required"


class RateLimited(ServiceError):
    """Too many requests of this kind: wait ``retry_after`` seconds."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(
        self, message: str, *, retry_after: int | None = None, problem: Problem | None = None
    ) -> None:
        super().__init__(message, problem=problem)
        self.retry_after = retry_after


class InternalError(ServiceError):
    """The service failed: a bug or an outage on its side."""

    status, slug, title = 500, "internal-error", "Internal error"


def _all_problem_classes() -> list[type[ServiceError]]:
    seen: list[type[ServiceError]] = []
    stack: list[type[ServiceError]] = [ServiceError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


_BY_SLUG: dict[str, type[ServiceError]] = {cls.slug: cls for cls in _all_problem_classes()}
_BY_STATUS: dict[int, type[ServiceError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        AuthenticationRequired,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        Conflict,
        StaleVersion,
        PayloadTooLarge,
        InvalidSettings,
        PreconditionRequired,
        RateLimited,
    )
}


def from_problem(status: int, problem: Problem) -> ServiceError:
    """The error class for a problem document: by its type, else by its HTTP status."""
    slug = problem.type.rsplit("/", 1)[-1] if problem.type.startswith(PROBLEM_BASE) else ""
    cls = _BY_SLUG.get(slug) or _BY_STATUS.get(status)
    if cls is None:
        cls = InternalError if status >= 500 else BadRequest
    return cls._from_problem(problem)
