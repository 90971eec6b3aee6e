"""/healthz, /metrics (Prometheus text) and /v1/cluster."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import cluster
from service.api.deps import JobsDep, Owner, StoreDep
from service.api.routes.jobs import ERRORS
from service.jobs import ClusterUnavailableError
from service.schemas import ClusterOut, ErrorOut, HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(jobs: JobsDep, store: StoreDep) -> HealthOut:
    """Liveness: the API answers; `ray` and `database` say whether those are reachable."""
    connection = jobs.ray.connection
    ray_ok = connection is not None and cluster.dashboard_alive(connection, timeout=2.0)
    try:
        store.ping()
        database_ok = True
    except Exception:  # noqa: BLE001 - health reports, never raises
        database_ok = False
    return HealthOut(status="ok", ray=ray_ok, database=database_ok)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(request: Request) -> PlainTextResponse:
    """Prometheus text: HTTP requests by route and status, jobs by status."""
    request.app.state.observe_jobs()
    body = generate_latest(request.app.state.registry)
    return PlainTextResponse(body.decode(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/v1/cluster",
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "Ray unreachable"}},
)
def cluster_info(_owner: Owner, jobs: JobsDep) -> ClusterOut:
    """The Ray cluster's nodes and total resources."""
    try:
        connection = jobs.ray.connect()
        return ClusterOut.model_validate(cluster.cluster_summary(connection))
    except (ClusterUnavailableError, httpx.HTTPError, OSError, ValueError) as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(error)) from None
