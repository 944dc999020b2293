"""Dependencies of the routes, as ``Annotated`` aliases in one place."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import AuthenticationError
from app.service.context import Context

_bearer = HTTPBearer(auto_error=False, description="berth's API token")


def get_context(request: Request) -> Context:
    context: Context = request.app.state.context
    return context


ContextDep = Annotated[Context, Depends(get_context)]


def require_token(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Demand the configured bearer token; without one configured, pass."""
    expected = ctx.settings.token
    if expected is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("send the API token as 'Authorization: Bearer …'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise AuthenticationError("the API token is not valid")
