"""RFC 9457 problem details: every error berth answers with, in one place."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import BerthError

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:berth:error:"

log = structlog.get_logger(__name__)

# Names for errors that the framework raises before a route runs.
_HTTP_NAMES = {
    400: "ValidationError",
    401: "AuthenticationError",
    403: "PolicyDeniedError",
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    413: "RequestTooLargeError",
    415: "UnsupportedMediaTypeError",
    422: "ValidationError",
}


class Problem(BaseModel):
    """An error answer (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    error_name: str = Field(description="Stable name to switch on")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Each invalid field, for validation errors"
    )


def problem_response(
    status: int,
    error_name: str,
    detail: str,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + error_name,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        error_name=error_name,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries documenting the problem answers of an operation."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for status in statuses
    }


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Input values are left out: they may hold secrets (environment values).
    return [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]


def _summary(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _berth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BerthError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(
        exc.status, exc.error_name, exc.detail, exc.title, headers=headers
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    return problem_response(
        422,
        "ValidationError",
        _summary(errors) or "the request is not valid",
        "The request is not valid",
        errors=errors,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "HTTPError")
    return problem_response(
        exc.status_code,
        name,
        str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("request.failed", error=type(exc).__name__)
    return problem_response(
        500, "InternalError", "berth failed unexpectedly; see its log"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(BerthError, _berth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
