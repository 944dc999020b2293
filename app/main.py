"""The application factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from fastapi import FastAPI

from app import openapi
from app.api import problems
from app.api.middleware import BodyLimit, JsonBodies, RequestContext, TokenGate
from app.api.routes import system, tasks
from app.config import Settings
from app.engine.client import DockerEngine
from app.errors import BerthError
from app.metrics import InstrumentedEngine, Metrics
from app.service.context import Context
from app.service.events import EventWatcher
from app.service.reconcile import reconcile
from app.service.stats import containers_by_state
from app.store.db import Database

log = structlog.get_logger(__name__)

# Worker threads for the plain ``def`` routes. Docker calls are bounded
# separately, by the engine client's pool; the rest of the threads keep
# database-only reads moving while Docker calls wait on a slow engine.
WORKER_THREADS = 100


TAGS = [
    {"name": "tasks", "description": "Tasks and the lifecycle of their containers"},
    {"name": "system", "description": "Ownership look-ups, recovery, the engine"},
    {
        "name": "probes",
        "description": "Liveness, readiness and metrics; no token needed",
    },
]


def build_context(settings: Settings) -> Context:
    metrics = Metrics()
    engine = DockerEngine(
        settings.docker_host, settings.docker_timeout, settings.docker_pool_size
    )
    ctx = Context(
        settings=settings,
        db=Database(settings.resolved_database_url),
        engine=InstrumentedEngine(engine, metrics),
        metrics=metrics,
    )
    metrics.watch_states(lambda: containers_by_state(ctx))
    return ctx


def _startup_reconcile(ctx: Context) -> None:
    try:
        reconcile(ctx)
    except BerthError as exc:
        log.warning("reconcile.failed", error_name=exc.error_name, error=exc.detail)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        ctx = build_context(settings)
        app.state.context = ctx

        watcher = None
        if settings.events:
            # The watcher reconciles as soon as it has subscribed.
            watcher = EventWatcher(ctx, reconcile_on_start=settings.reconcile_on_start)
            watcher.start()
        elif settings.reconcile_on_start:
            await anyio.to_thread.run_sync(_startup_reconcile, ctx)
        app.state.watcher = watcher
        log.info("berth.started", host_id=settings.host_id)

        yield

        if watcher is not None:
            watcher.stop()
        ctx.engine.close()
        ctx.db.dispose()
        log.info("berth.stopped")

    app = FastAPI(
        title="berth",
        summary="A per-host container agent with a REST API",
        version="0.1.0",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    problems.install(app)
    openapi.install(app)
    # The token is checked by TokenGate, for every /v1 path, before routing;
    # the document declares it (app/openapi.py).
    app.include_router(tasks.router)
    app.include_router(system.router)
    app.include_router(system.probes)
    # Outermost first: a request ID, then the token, then the size cap and
    # the body's type, so that a caller without the token never gets as far
    # as the body.
    app.add_middleware(JsonBodies)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(TokenGate, token=settings.token)
    app.add_middleware(RequestContext)
    return app
