"""RFC 9457 problem details: every error berth answers with, in one place."""

from __future__ import annotations

import re
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import (
    AuthenticationError,
    BerthError,
    PolicyDeniedError,
    RequestTooLargeError,
    ValidationError,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:berth:error:"

log = structlog.get_logger(__name__)

# Names for errors that the framework raises before a route runs: berth's
# own where one fits, so that a client switches on one name per cause.
_HTTP_ERRORS: dict[int, type[BerthError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PolicyDeniedError,
    413: RequestTooLargeError,
    422: ValidationError,
}
_HTTP_NAMES = {
    404: "NotFoundError",
    405: "MethodNotAllowedError",
    415: "UnsupportedMediaTypeError",
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
    rule: str | None = Field(
        default=None, description="The policy rule that denied the request"
    )


def problem_response(
    status: int,
    error_name: str,
    detail: str,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    rule: str | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + error_name,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        error_name=error_name,
        errors=errors,
        rule=rule,
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
        exc.status,
        exc.error_name,
        exc.detail,
        exc.title,
        headers=headers,
        rule=getattr(exc, "rule", None),
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


@lru_cache(maxsize=256)
def _template(path: str) -> re.Pattern[str]:
    """A regular expression for an OpenAPI path template."""
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile(
        "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    )


def _allowed_methods(request: Request) -> str | None:
    """Every method the document lists for the path, for a 405's ``Allow``.

    The router names only the first route that matched the path, while one
    path may have an operation per method (GET and DELETE, say).
    """
    paths = request.app.openapi().get("paths", {})
    methods = {
        method.upper()
        for template, item in paths.items()
        if _template(template).fullmatch(request.url.path)
        for method in item
    }
    return ", ".join(sorted(methods)) or None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = dict(getattr(exc, "headers", None) or {})
    detail = str(exc.detail)

    if status == 400:
        # FastAPI's answer to a body it cannot decode at all; for a client
        # that is one more invalid body, answered like the others.
        status, detail = 422, "the request body is not valid JSON"
    elif status == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"berth has no resource at {request.url.path}"
    elif status == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"

    known = _HTTP_ERRORS.get(status)
    name = known.__name__ if known else _HTTP_NAMES.get(status, "HTTPError")
    return problem_response(
        status,
        name,
        detail,
        known.title if known else None,
        headers=headers or None,
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
