"""The FastAPI app, built by `create_app(settings)` (no import-time settings or engines).

Example:
    >>> from service.main import create_app
    >>> from service.settings import Settings
    >>> app = create_app(Settings(data_dir="/tmp/rldojo-doc"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.admission import PriorityRefusedError
from service.api.routes import (
    catalog,
    checkpoints,
    compare,
    curves,
    docs,
    evaluations,
    exports,
    health,
    jobs,
    page,
    webhooks,
)
from service.cluster import ClusterUnavailableError, RayJobs
from service.evaluations import EvaluationService
from service.jobs import ConflictError, JobService
from service.security import SECURITY_HEADERS, SecurityHeaders
from service.settings import Settings
from service.spec import JobSpec
from service.status import JobStatus
from service.storage import Storage
from service.store import Store
from service.webhooks import Sender

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the service: store, storage, Ray connection, routes, error handlers, metrics."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    assert settings.database_url is not None and settings.storage_root is not None
    store = Store(settings.database_url)
    storage = Storage(settings.storage_root)
    ray = RayJobs(settings)
    job_service = JobService(settings=settings, store=store, storage=storage, ray=ray)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Connecting may start the embedded head (seconds); recovery then reconciles every
        # job that was active when the API last stopped, and the supervisor follows the active
        # ones from then on. Neither blocks requests.
        stopping = threading.Event()
        supervisor = threading.Thread(
            target=_recover_then_supervise, args=(job_service, stopping), daemon=True
        )
        sender = Sender.from_settings(store, settings)
        deliveries = threading.Thread(target=sender.run, args=(stopping,), daemon=True)
        supervisor.start()
        deliveries.start()
        yield
        stopping.set()
        supervisor.join(timeout=10)
        deliveries.join(timeout=10)
        store.close()

    app = FastAPI(
        title="rldojo",
        version="0.1.0",
        description="Submit, monitor, stop, resume and evaluate RL training jobs on Ray.",
        lifespan=lifespan,
        docs_url=None,  # served from the installed Swagger UI instead (service.api.routes.docs)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.jobs = job_service
    app.state.evaluations = EvaluationService(store=store, storage=storage, ray=ray)
    for router in (
        jobs.router,
        checkpoints.router,
        evaluations.router,
        catalog.router,
        webhooks.router,
        compare.router,
    ):
        app.include_router(router)
    app.include_router(curves.router)
    app.include_router(exports.router)
    app.include_router(health.router)
    page.mount(app)
    docs.mount(app)
    _add_error_handlers(app)
    _add_metrics(app, store)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, a 413 included
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _recover_then_supervise(job_service: JobService, stopping: threading.Event) -> None:
    try:
        job_service.ray.connect()
        checked = job_service.reconcile_all()
        logger.info("recovery: reconciled %d active job(s)", checked)
    except ClusterUnavailableError as error:
        logger.error("recovery: %s", error)
    except Exception:
        logger.exception("recovery failed")
    job_service.supervise(stopping, period_s=max(1.0, 2 * job_service.settings.poll_seconds))


def _error(code: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, error.detail, getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        detail = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg")),
                "type": e.get("type"),
            }
            for e in error.errors()
        ]
        return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)

    @app.exception_handler(ConflictError)
    async def conflict(_request: Request, error: ConflictError) -> JSONResponse:
        return _error(status.HTTP_409_CONFLICT, str(error))

    @app.exception_handler(PriorityRefusedError)
    async def refused_priority(_request: Request, error: PriorityRefusedError) -> JSONResponse:
        detail = [{"loc": ["body", "priority"], "msg": str(error), "type": "priority_refused"}]
        return _error(status.HTTP_403_FORBIDDEN, detail)

    @app.exception_handler(ClusterUnavailableError)
    async def unavailable(_request: Request, error: ClusterUnavailableError) -> JSONResponse:
        return _error(status.HTTP_503_SERVICE_UNAVAILABLE, str(error))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        # Answered outside every middleware (Starlette's ServerErrorMiddleware): headers here.
        internal = status.HTTP_500_INTERNAL_SERVER_ERROR
        return _error(internal, "internal error (see server log)", SECURITY_HEADERS)


def _add_metrics(app: FastAPI, store: Store) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "rldojo_http_requests_total",
        "HTTP requests by method, route and status",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "rldojo_http_request_seconds", "HTTP request latency", ["route"], registry=registry
    )
    jobs_gauge = Gauge("rldojo_jobs", "Jobs by status", ["status"], registry=registry)
    app.state.registry = registry

    def observe_jobs() -> None:
        counts = {s.value: 0 for s in JobStatus}
        for job in store.list_jobs():
            counts[job.status.value] += 1
        for name, count in counts.items():
            jobs_gauge.labels(status=name).set(count)

    app.state.observe_jobs = observe_jobs

    app.add_middleware(RequestMetrics, requests=requests, latency=latency)


class RequestMetrics:
    """Count and time each HTTP request by route, up to its answer's start (a plain ASGI
    middleware: Starlette's `@app.middleware` runs each request in a task of its own and
    re-streams its body, a cost every read paid under load)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        answered = False

        def observe(status_code: int) -> None:
            path = getattr(scope.get("route"), "path", "unmatched")  # set once routed
            self.requests.labels(scope["method"], path, str(status_code)).inc()
            self.latency.labels(path).observe(time.perf_counter() - start)

        async def send_observed(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if not answered:  # an error no handler answered: Starlette's 500
                observe(status.HTTP_500_INTERNAL_SERVER_ERROR)


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not Content-Length is set."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No (or a bad) Content-Length: read the body here, up to the limit, and replay it.
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if seen > self.max_bytes:
                await _too_large(self.max_bytes)(scope, receive, send)
                return
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {limit} bytes")


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, with the JobSpec schema as the body of POST /v1/jobs.

    The route reads the body as a plain object so that `parse_spec` can name the offending
    config key in its 422; the document still tells clients exactly what a spec is.
    """
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    spec_schema = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(spec_schema.pop("$defs", {}))
    schemas["JobSpec"] = spec_schema
    for path in ("/v1/jobs", "/v1/jobs/validate"):
        operation = document["paths"][path]["post"]
        operation.pop("x-rldojo-body", None)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
        }
    app.openapi_schema = document
    return document
