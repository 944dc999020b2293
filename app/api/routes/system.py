"""Ownership look-ups, recovery, the engine, and the probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from app.api.deps import ContextDep
from app.api.problems import problem_responses
from app.errors import BerthError
from app.service import reconcile, tasks
from app.service.context import Context
from app.service.views import OwnerView, ReconcileReport

router = APIRouter(prefix="/v1", tags=["system"])
probes = APIRouter(tags=["probes"])


class EngineView(BaseModel):
    version: str
    api_version: str
    min_api_version: str
    os: str
    arch: str
    docker_host: str


def _check_database(ctx: Context) -> str:
    try:
        ctx.db.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"failed: {type(exc).__name__}"
    return "ok"


def _check_engine(ctx: Context) -> str:
    try:
        ctx.engine.ping()
    except BerthError as exc:
        return f"failed: {exc.error_name}"
    return "ok"


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get(
    "/containers/{docker_ref}",
    operation_id="find_container_owner",
    response_model=OwnerView,
    responses=problem_responses(401, 404, 422),
)
def find_container_owner(docker_ref: str, ctx: ContextDep) -> OwnerView:
    """Which task and container own a Docker container, by ID or name."""
    return tasks.find_owner(ctx, docker_ref)


@router.post(
    "/reconcile",
    operation_id="reconcile",
    response_model=ReconcileReport,
    responses=problem_responses(401, 422, 502, 503, 504),
)
def run_reconcile(ctx: ContextDep, remove_orphans: bool = False) -> ReconcileReport:
    """Run recovery now and report what it found."""
    return reconcile.reconcile(ctx, remove_orphans=remove_orphans)


@router.get(
    "/engine",
    operation_id="get_engine",
    response_model=EngineView,
    responses=problem_responses(401, 422, 503, 504),
)
def get_engine(ctx: ContextDep) -> EngineView:
    """The engine's version and the API versions it supports."""
    version = ctx.engine.version()
    return EngineView(
        version=version.version,
        api_version=version.api_version,
        min_api_version=version.min_api_version,
        os=version.os,
        arch=version.arch,
        docker_host=ctx.settings.docker_host,
    )


@probes.get("/healthz", operation_id="get_health", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers. Nothing else is asked.

    ``async`` on purpose: it must answer even when every worker thread is
    waiting on a hung engine.
    """
    return Health(status="ok")


@probes.get(
    "/readyz",
    operation_id="get_readiness",
    response_model=Health,
    responses={503: {"model": Health, "description": "Not ready"}},
)
async def readyz(ctx: ContextDep) -> JSONResponse:
    """Readiness: the database and the engine both answer.

    The checks run on threads of their own, not the route pool, so a pool
    full of calls waiting on a hung engine cannot delay the answer.
    """
    database, engine = await asyncio.gather(
        asyncio.to_thread(_check_database, ctx),
        asyncio.to_thread(_check_engine, ctx),
    )
    checks = {"database": database, "engine": engine}

    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@probes.get(
    "/metrics",
    operation_id="get_metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text exposition of the berth_ series",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def get_metrics(ctx: ContextDep) -> Response:
    """Prometheus metrics: creates, latencies, Docker calls, states, recovery.

    No token is asked, as for the probes: a scraper on the node reaches it
    like a kubelet reaches ``/readyz``. It tells counts and durations by
    fixed names only (outcomes, error names, operations, states), never a
    task, a container or a setting.
    """
    # A plain ``def``: the container counts are read from the database.
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
