"""Every error leaves the service as problem+json, from this one place."""

from __future__ import annotations

import logging

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
from ..models.servers import field_errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(error: ServiceError) -> JSONResponse:
    problem = error.to_problem()
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def request_validation_error(exc: RequestValidationError) -> ServiceError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadRequest("The request body is not valid JSON; send a JSON object.")
    return InvalidSettings(field_errors=field_errors(errors))


def install(app: FastAPI) -> None:
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
