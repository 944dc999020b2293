"""Dependencies of the routes, as ``Annotated`` aliases in one place."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import AuthenticationError
from app.service.context import Context

_bearer = HTTPBearer(auto_error=False, description="berth's API token")


# The two dependencies below are ``async`` because they never block: a plain
# ``def`` dependency costs every request a hop to the thread pool and back.


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


async def require_token(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Demand the configured bearer token; without one configured, pass.

    The ``TokenGate`` middleware has already checked the header before the
    body was read; this dependency documents the scheme in the OpenAPI
    document and guards any route mounted without the middleware.
    """
    header = None
    if credentials is not None:
        header = f"{credentials.scheme} {credentials.credentials}"
    check_bearer(ctx.settings.token, header)
