"""The OpenAPI document, shaped for generated clients.

FastAPI's document is close; three things are put right here. Every error
answer of the API is ``application/problem+json`` with the ``Problem``
schema, so error responses list that media type alone (FastAPI would add
``application/json`` beside it). A request that fails validation is a
problem too, never FastAPI's ``HTTPValidationError``. And every ``/v1``
operation names the bearer token, which the ``TokenGate`` middleware
demands ahead of routing rather than a dependency of each route.

The committed copy, ``docs/openapi.json``, is regenerated with
``berth openapi > docs/openapi.json``; a test fails when they drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.middleware import GUARDED_PREFIX
from app.api.problems import PROBLEM_JSON, Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# FastAPI's own schemas for its default 422 answer, which berth never sends.
_DEFAULT_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

BEARER = "HTTPBearer"
BEARER_SCHEME = {"type": "http", "description": "berth's API token", "scheme": "bearer"}


def _is_problem(response: dict[str, Any]) -> bool:
    content = response.get("content") or {}
    return any(
        media.get("schema") == PROBLEM_REF
        or "HTTPValidationError" in str(media.get("schema"))
        for media in content.values()
    )


def _problems_only(operation: dict[str, Any]) -> None:
    """Error answers that are problems name one media type: problem+json."""
    for status, response in operation.get("responses", {}).items():
        if not status.isdigit() or int(status) < 400 or not _is_problem(response):
            continue
        response["content"] = {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}
        if int(status) == 422:
            response["description"] = "The request is not valid"


def _operations(schema: dict[str, Any], prefix: str = "/") -> list[dict[str, Any]]:
    return [
        operation
        for path, item in schema.get("paths", {}).items()
        if path.startswith(prefix)
        for method, operation in item.items()
        if method in _METHODS
    ]


def _declare_token(schema: dict[str, Any]) -> None:
    """Every ``/v1`` operation demands the bearer token."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[BEARER] = (
        dict(BEARER_SCHEME)
    )
    for operation in _operations(schema, GUARDED_PREFIX + "/"):
        operation["security"] = [{BEARER: []}]


def _drop_unused(schema: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the named components that nothing else refers to, in order."""
    components = schema.get("components", {}).get("schemas", {})
    for name in names:
        if name not in components:
            continue
        body = components.pop(name)
        if f'"#/components/schemas/{name}"' in json.dumps(schema):
            components[name] = body


def _ensure_problem_schema(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in components:
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )


def build(app: FastAPI) -> dict[str, Any]:
    """The document of ``app``, as served at ``/openapi.json``."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for operation in _operations(schema):
        _problems_only(operation)
    _ensure_problem_schema(schema)
    _drop_unused(schema, _DEFAULT_VALIDATION_SCHEMAS)
    _declare_token(schema)
    return schema


def install(app: FastAPI) -> None:
    """Serve :func:`build`'s document, made once on first request."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


def render(app: FastAPI) -> str:
    """The document as committed in ``docs/openapi.json``."""
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
