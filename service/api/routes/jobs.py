"""/v1/jobs: submit, list, read, stop, resume, delete; metrics and logs (JSON or SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse

from service.api.deps import JobsDep, OwnedJob, Owner, SettingsDep, StoreDep
from service.jobs import JobService, JobStatus
from service.schemas import ErrorOut, JobOut, Scalar
from service.spec import SpecError, parse_spec
from service.store import JobRecord

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or invalid token"},
    404: {"model": ErrorOut, "description": "No such job (or not yours)"},
    413: {"model": ErrorOut, "description": "Request body too large"},
    422: {"model": ErrorOut, "description": "Invalid input; `detail` names the field"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "Not allowed in the job's current status"},
    503: {"model": ErrorOut, "description": "The Ray cluster is unreachable"},
}
SSE = "text/event-stream"
Follow = Annotated[bool, Query(description="Stream as server-sent events until the job ends")]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)


def job_out(job: JobRecord, extra: dict[str, Any] | None = None) -> JobOut:
    out = JobOut.model_validate(job)
    return out.model_copy(update=extra or {})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
    openapi_extra={"x-rldojo-body": "JobSpec"},
)
def submit_job(owner: Owner, jobs: JobsDep, body: Annotated[dict[str, Any], Body()]) -> JobOut:
    """Submit a training job: the body is the job spec, unchanged (see the JobSpec schema)."""
    try:
        spec = parse_spec(body)
    except SpecError as error:
        detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return job_out(jobs.submit(owner=owner, spec=spec))


@router.get("")
def list_jobs(
    owner: Owner,
    jobs: JobsDep,
    store: StoreDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    summary: Annotated[
        bool, Query(description="Also each job's latest metrics, best trial and checkpoints")
    ] = False,
) -> list[JobOut]:
    """The caller's jobs, newest first, optionally of one status."""
    found = [jobs.reconcile(job) for job in store.list_jobs(owner=owner)]
    if status_ is not None:
        found = [job for job in found if job.status == status_.value]
    return [job_out(job, jobs.summary(job) if summary else None) for job in found]


@router.get("/{job_id}")
def get_job(job: OwnedJob, jobs: JobsDep) -> JobOut:
    """Status, latest metrics, best trial and number of checkpoints."""
    return job_out(job, jobs.summary(job))


@router.post("/{job_id}/stop", responses=CONFLICT)
def stop_job(job: OwnedJob, jobs: JobsDep) -> JobOut:
    """Stop a pending or running job (its checkpoints stay; resume continues from them)."""
    return job_out(jobs.stop(job=job))


@router.post("/{job_id}/resume", responses=CONFLICT)
def resume_job(job: OwnedJob, jobs: JobsDep) -> JobOut:
    """Continue a stopped, failed or lost job from its last checkpoint (`Tuner.restore`)."""
    return job_out(jobs.resume(job=job))


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
def delete_job(
    job: OwnedJob,
    jobs: JobsDep,
    purge: Annotated[bool, Query(description="Also delete the job's files")] = False,
) -> None:
    """Delete a finished job's records (refused while it runs); `purge=true` removes its files."""
    jobs.delete(job=job, purge=purge)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def _follow(
    jobs: JobService, job: JobRecord, poll: float, emit: Callable[[JobRecord], list[str]]
) -> AsyncIterator[str]:
    """Poll until the job is terminal, yielding what `emit` produces each time, then `end`."""
    while True:
        job = await run_in_threadpool(jobs.reconcile, job)
        finished = JobStatus(job.status).is_terminal()
        for chunk in await run_in_threadpool(emit, job):
            yield chunk
        if finished:
            yield _sse("end", {"id": job.id, "status": job.status})
            return
        yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


def unsent_rows(rows: list[dict[str, Any]], sent: dict[str, int]) -> list[dict[str, Any]]:
    """The rows past each trial's count in `sent`, which this advances (and never lowers).

    A read can come up short: Tune syncs a trial's row file to storage by copying it over the
    old one, so a read during the copy sees only its first rows. Those were sent already.
    """
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_trial.setdefault(str(row.get("trial_id")), []).append(row)
    fresh = []
    for trial, trial_rows in by_trial.items():
        fresh += trial_rows[sent.get(trial, 0) :]
        sent[trial] = max(sent.get(trial, 0), len(trial_rows))
    return fresh


@router.get(
    "/{job_id}/metrics",
    responses={200: {"content": {SSE: {}}}},
)
def job_metrics(
    job: OwnedJob, jobs: JobsDep, settings: SettingsDep, follow: Follow = False
) -> list[dict[str, Scalar]]:
    """Per-iteration result rows of every trial (Tune's flattened keys, `trial_id` included).

    With `follow=true`: a server-sent event stream, one `metrics` event per new row, ending with
    an `end` event when the job ends.
    """
    if not follow:
        return jobs.storage.metric_rows(job.id)
    sent: dict[str, int] = {}

    def new_rows(current: JobRecord) -> list[str]:
        rows = unsent_rows(jobs.storage.metric_rows(current.id), sent)
        return [_sse("metrics", row) for row in rows]

    stream = _follow(jobs, job, settings.poll_seconds, new_rows)
    return StreamingResponse(stream, media_type=SSE)  # type: ignore[return-value]


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}, SSE: {}}}},
)
def job_logs(job: OwnedJob, jobs: JobsDep, settings: SettingsDep, follow: Follow = False) -> Any:
    """The driver logs of every attempt as text; `follow=true` streams new lines as SSE."""
    if not follow:
        return PlainTextResponse(jobs.logs(job))
    sent = 0

    def new_text(current: JobRecord) -> list[str]:
        nonlocal sent
        text = jobs.logs(current)
        fresh, sent = text[sent:], len(text)
        return [_sse("log", line) for line in fresh.splitlines()]

    return StreamingResponse(_follow(jobs, job, settings.poll_seconds, new_text), media_type=SSE)
