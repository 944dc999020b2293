"""Checking that an answer is the problem+json the contract promises."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_FIELDS = ("type", "title", "status", "detail", "error_name")


def assert_problem(
    response: httpx.Response, status: int | tuple[int, ...], error_name: str
) -> dict[str, Any]:
    """Assert a problem+json answer with this status and error name."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert all(field in body for field in PROBLEM_FIELDS), body
    assert body["status"] == response.status_code
    assert body["error_name"] == error_name, body
    return body
