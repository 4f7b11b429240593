"""Every error leaves the service as problem+json, from this one place.

The OpenAPI document says so too: ``install`` declares the problem document as the answer of
every operation to a 4xx, so that generated clients and schema checks expect what is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    BadRequest,
    InternalError,
    InvalidSettings,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    ServiceError,
)
from ..models.problems import Problem
from ..models.servers import field_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: The members every problem document carries (RFC 9457 makes them optional; we always send).
PROBLEM_REQUIRED = ("type", "title", "status", "detail")


def _printable(value: Any) -> Any:
    """The value with every string encodable as UTF-8.

    A problem may quote what the caller sent (an unknown field's name): JSON lets a request
    carry a lone surrogate ("\\ud800"), which UTF-8 cannot encode, and rendering would then
    fail after the status line was chosen, leaving the caller a reset connection.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def problem_response(error: ServiceError) -> JSONResponse:
    problem = error.to_problem()
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        _printable(problem.model_dump(mode="json", exclude_none=True)),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def request_validation_error(exc: RequestValidationError) -> ServiceError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadRequest("The request body is not valid JSON; send a JSON object.")
    if any(
        tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors
    ):
        # FastAPI hands over the raw bytes when the Content-Type is not JSON.
        return BadRequest("Send the request body as JSON, with Content-Type: application/json.")
    return InvalidSettings(field_errors=field_errors(errors))


# ---------------------------------------------------------------- the OpenAPI document


def _problem_schemas() -> dict[str, Any]:
    """Problem and the models it refers to, as OpenAPI components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs", {})
    schema["required"] = list(PROBLEM_REQUIRED)
    components["Problem"] = schema
    return components


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def declare_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Declare problem+json as every operation's 4xx answer, in place of FastAPI's 422."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _problem_schemas().items():
        schemas.setdefault(name, schema)
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            responses["422"] = _problem_response(
                "Invalid input: `errors` names each field and what to fix."
            )
            responses.setdefault(
                "4XX",
                _problem_response(
                    "A problem (RFC 9457): 400 malformed, 401 not signed in, 403 not allowed, "
                    "404 unknown, 409 conflict, 412 stale version, 413 too large, "
                    "428 precondition missing, 429 too many requests."
                ),
            )
    # FastAPI's own validation answer is never sent: the handler below replaces it.
    if not _mentions(document.get("paths", {}), "#/components/schemas/HTTPValidationError"):
        schemas.pop("HTTPValidationError", None)
        if not _mentions(schemas, "#/components/schemas/ValidationError"):
            schemas.pop("ValidationError", None)
    return document


def _mentions(tree: Any, ref: str) -> bool:
    if isinstance(tree, dict):
        return tree.get("$ref") == ref or any(_mentions(v, ref) for v in tree.values())
    if isinstance(tree, list):
        return any(_mentions(v, ref) for v in tree)
    return False


def _openapi_with_problems(
    app: FastAPI, build: Callable[[], dict[str, Any]]
) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_problems(build())
        return app.openapi_schema

    return openapi


# ---------------------------------------------------------------- the handlers


def install(app: FastAPI) -> None:
    app.openapi = _openapi_with_problems(app, app.openapi)  # type: ignore[method-assign]

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(request_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem_response(NotFound("There is no such endpoint; check the URL."))
        if exc.status_code == 405:
            return problem_response(MethodNotAllowed("This endpoint does not accept that method."))
        return problem_response(BadRequest(str(exc.detail)))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(
            InternalError("The service failed unexpectedly; the error was logged.")
        )
