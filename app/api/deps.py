"""Dependencies of the routes, as ``Annotated`` aliases in one place."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.errors import AuthenticationError
from app.service.context import Context


# ``async`` because it never blocks: a plain ``def`` dependency would cost
# every request a hop to the thread pool and back.
async def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


def check_bearer(expected: str | None, authorization: str | None) -> None:
    """Raise AuthenticationError unless ``authorization`` carries the token.

    No token configured means the API is open (berth then listens on
    loopback only). The comparison takes the same time wherever the first
    difference is.
    """
    if expected is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AuthenticationError("send the API token as 'Authorization: Bearer …'")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthenticationError("the API token is not valid")
