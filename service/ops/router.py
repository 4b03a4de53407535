"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from service.deps import get_runtime
from service.ops.access import check_metrics_access
from service.ops.health import check_dependencies
from service.ops.multiprocess import exposition
from service.routing import ServiceRoute

router = APIRouter(tags=["operations"], route_class=ServiceRoute)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database and Redis both answer."""
    checks = check_dependencies(get_runtime(request))
    ready = all(value == "ok" for value in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _metrics_allowed(request: Request) -> None:
    check_metrics_access(get_runtime(request).settings, request.headers.get("authorization"))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    dependencies=[Depends(_metrics_allowed)],
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format. With `FTM_METRICS_TOKEN` set they need
    `Authorization: Bearer <token>`; in `FTM_ENV=prod` without one they are off (404). With several
    API worker processes, the figures are the sum over all of them (another process's
    proxied requests of the last 50 ms may not be in them yet)."""
    api_metrics = request.app.state.metrics
    api_metrics.drain()  # this process's deferred samples (on the loop, where they are kept)
    text = await anyio.to_thread.run_sync(exposition, api_metrics.registry)  # reads files: off the loop
    return Response(text, media_type=CONTENT_TYPE_LATEST)
