"""ASGI middleware: request IDs, the token gate, the size cap, JSON bodies."""

from __future__ import annotations

import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import check_bearer
from app.api.problems import problem_response
from app.errors import AuthenticationError

REQUEST_ID_HEADER = "x-request-id"
GUARDED_PREFIX = "/v1"


class RequestContext:
    """Bind a request ID to every log line of the request, and echo it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        given = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given[:64] if given.isprintable() and given else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"].append(
                    (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))
                )
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


class TokenGate:
    """Demand the API token on every ``/v1`` path before anything else.

    Checked here, ahead of routing and body parsing, so that a caller
    without the token learns nothing but 401: not whether a route exists,
    not what is wrong with its body.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _guarded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization")
        try:
            check_bearer(self.token, header.decode("latin-1") if header else None)
        except AuthenticationError as exc:
            response = problem_response(
                exc.status,
                exc.error_name,
                exc.detail,
                exc.title,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _guarded(path: str) -> bool:
    return path == GUARDED_PREFIX or path.startswith(GUARDED_PREFIX + "/")


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI passes HTTP errors from body
    parsing through to the problem handler, where others become 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request bodies are limited to {limit} bytes",
            headers={"Connection": "close"},
        )


class BodyLimit:
    """Answer 413 for bodies over ``limit`` bytes, without reading them whole.

    A declared Content-Length over the limit is refused at once; a chunked
    body is counted as it arrives and cut off when it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "RequestTooLargeError",
            f"request bodies are limited to {self.limit} bytes",
            "The request body is too large",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class JsonBodies:
    """Answer 415 for a request body that is not declared JSON.

    Without it the body is never parsed and the caller reads that its
    valid JSON object "should be a valid dictionary": curl's ``-d`` sends
    form encoding unless told otherwise.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in _BODY_METHODS:
            headers = dict(scope.get("headers") or [])
            has_body = headers.get(b"content-length", b"0") not in (b"0", b"")
            has_body = has_body or b"transfer-encoding" in headers
            if has_body and not _is_json(headers.get(b"content-type", b"")):
                response = problem_response(
                    415,
                    "UnsupportedMediaTypeError",
                    "request bodies are JSON: send Content-Type: application/json",
                    "The request body is not JSON",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
