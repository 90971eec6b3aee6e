"""/v1/jobs: submit, list, read, stop, resume, delete; metrics and logs (JSON or SSE)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import TypeAdapter

from envs.atari_scores import game_of_spec, same_game
from service.api.deps import (
    JobId,
    JobsDep,
    OwnedJob,
    Owner,
    SettingsDep,
    StoreDep,
    VisibleJob,
    visible_job,
)
from service.idempotency import HEADER, KeyReusedError
from service.jobs import JobService
from service.recent import Recent
from service.schemas import (
    ErrorOut,
    JobOut,
    JobUpdate,
    PerturbationOut,
    ResumeIn,
    Scalar,
    SpecCheckOut,
    TrialOut,
    TrialsOut,
)
from service.spec import SpecError, hyperparameters, parse_spec
from service.status import JobStatus
from service.store import JobRecord
from service.text import PlainText

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
IdempotencyKey = Annotated[
    PlainText | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=128,
        description="Send a submit again with the same key (after a lost answer): the same job "
        "comes back (200), nothing runs twice; the same key with another spec is a 422",
    ),
]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERRORS)
JOB_LIST = TypeAdapter(list[JobOut])


def job_out(
    job: JobRecord, extra: dict[str, Any] | None = None, place: int | None = None
) -> JobOut:
    """A record as the API shows it: with its summary (`extra`) and its place in the queue."""
    out = JobOut.model_validate(job)
    game = game_of_spec(job.spec)
    values = {**out.model_dump(), **(extra or {}), "queue_position": place, "game": game}
    return JobOut.model_validate(values)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICT,
    openapi_extra={"x-rldojo-body": "JobSpec"},
)
def submit_job(
    owner: Owner,
    jobs: JobsDep,
    body: Annotated[dict[str, Any], Body()],
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Submit a training job: the body is the job spec, unchanged (see the JobSpec schema).

    Refused with 422, the field named, when anything in it cannot run: an unknown or mistyped
    key, a value out of range, an env config the env refuses, no stop criterion that bounds
    the run, or a trial larger than the cluster could ever hold. With an `Idempotency-Key`
    used before (by you, for the same spec): that job, 200.
    """
    try:
        spec = parse_spec(body)
        job, created = jobs.submit(owner=owner, spec=spec, idempotency_key=idempotency_key)
    except SpecError as error:
        detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    except KeyReusedError as error:
        detail = [{"loc": ["header", HEADER], "msg": str(error)}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return job_out(job, None, jobs.queue_positions().get(job.id))


@router.post("/validate", openapi_extra={"x-rldojo-body": "JobSpec"})
def validate_job(
    owner: Owner, jobs: JobsDep, body: Annotated[dict[str, Any], Body()]
) -> SpecCheckOut:
    """Check a job spec without submitting it: exactly what POST /v1/jobs would answer (the
    same 422 or 403), or the spec with its defaults, the algorithm's settings for its env and
    what one trial asks of Ray."""
    try:
        admitted = jobs.check(owner=owner, spec=parse_spec(body))
    except SpecError as error:
        detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    resolved = admitted.resolved_config
    return SpecCheckOut(
        spec=admitted.spec.model_dump(mode="json"),
        hyperparameters={name: resolved.get(name) for name in hyperparameters(admitted.spec)},
        resolved_config=resolved,
        trial_resources=admitted.trial_resources,
    )


Filter = Annotated[PlainText | None, Query(max_length=200)]


@router.get("", response_model=list[JobOut])
async def list_jobs(
    owner: Owner,
    jobs: JobsDep,
    store: StoreDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    summary: Annotated[
        bool, Query(description="Also each job's latest metrics, best trial and checkpoints")
    ] = False,
    algorithm: Filter = None,
    env: Filter = None,
    tag: Filter = None,
    game: Annotated[
        PlainText | None, Query(max_length=200, description="Only jobs playing this ALE game")
    ] = None,
    owned_by: Annotated[
        PlainText | None,
        Query(alias="owner", max_length=128, description="Only this owner's (shared) jobs"),
    ] = None,
    shared: Annotated[
        bool, Query(description="Also the jobs other owners shared (to read and compare)")
    ] = False,
) -> Response:
    """Your jobs, newest first (with `shared=true` or `owner=`, also others' shared jobs),
    filtered by status, algorithm, env, tag and owner; queued ones with their queue place."""

    def answer() -> bytes:
        found = store.list_jobs(
            owner=None if shared or owned_by else owner,
            visible_to=owner if shared or owned_by else None,
            algorithm=algorithm,
            env=env,
            tag=tag,
        )
        found = [job for job in found if owned_by is None or job.owner == owned_by]
        if game is not None:
            found = [job for job in found if same_game(game_of_spec(job.spec), game)]
        if status_ is not None:
            found = [job for job in found if job.status is status_]
        places = jobs.queue_positions()
        listed = [
            job_out(job, jobs.summary(job) if summary else None, places.get(job.id))
            for job in found
        ]
        return JOB_LIST.dump_json(listed, by_alias=True)

    asked = ("list", owner, status_, summary, algorithm, env, tag, game, owned_by, shared)
    return json_response(await shared_read(jobs.reads, asked, answer, store.jobs_version))


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: JobId, owner: Owner, jobs: JobsDep, store: StoreDep) -> Response:
    """Status (with its place while queued), latest metrics, best trial, checkpoints."""

    def answer() -> bytes:
        job = visible_job(job_id, owner, store)
        place = jobs.queue_positions().get(job.id) if job.status is JobStatus.QUEUED else None
        return job_out(job, jobs.summary(job), place).model_dump_json(by_alias=True).encode()

    asked = ("job", job_id, owner)
    return json_response(await shared_read(jobs.reads, asked, answer, store.jobs_version))


async def shared_read(
    reads: Recent[bytes], key: Hashable, answer: Callable[[], bytes], version: int
) -> bytes:
    """A read's JSON as encoded once for every client asking in the same instant, from the
    event loop while fresh; computed in a worker thread (the store and job files) otherwise."""
    known = reads.known(key, version)
    if known is not None:
        return known
    return await run_in_threadpool(reads.get, key, answer, version)


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.patch("/{job_id}", responses=CONFLICT)
def update_job(job: OwnedJob, jobs: JobsDep, changes: JobUpdate) -> JobOut:
    """Change priority (re-orders the queue), name, tags or whether the job is shared."""
    updated = jobs.update(job=job, changes=changes.model_dump(exclude_none=True))
    return job_out(updated, None, jobs.queue_positions().get(updated.id))


@router.post("/{job_id}/stop", responses=CONFLICT)
def stop_job(job: OwnedJob, jobs: JobsDep) -> JobOut:
    """Stop a job; its checkpoints stay and resume continues from them.

    Answers at once: STOPPED for a queued job (cancelled), STOPPING for one whose trainer is
    still ending (STOPPED once no process of it runs, seconds later; a stop of a STOPPING job
    forces it: Ray Jobs stops its driver).
    """
    return job_out(jobs.stop(job=job))


@router.post("/{job_id}/resume", responses=CONFLICT)
def resume_job(
    job: OwnedJob, jobs: JobsDep, body: Annotated[ResumeIn | None, Body()] = None
) -> JobOut:
    """Queue a stopped, failed or lost job to continue from its last checkpoint.

    With a `stop` (any of the spec's stop fields, merged into its own), a finished job too:
    its trials continue from where they paused at the old stop to the new one (extend).
    """
    stop = body.stop.model_dump(exclude_none=True) if body is not None else None
    try:
        resumed = jobs.resume(job=job, stop=stop)
    except SpecError as error:
        detail = [{"loc": ["body", *e["loc"]], "msg": e["msg"]} for e in error.errors]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    return job_out(resumed, None, jobs.queue_positions().get(resumed.id))


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
        job = await run_in_threadpool(jobs.get, job.id)
        finished = job.status.is_terminal()
        for chunk in await run_in_threadpool(emit, job):
            yield chunk
        if finished:
            yield _sse("end", {"id": job.id, "status": job.status})
            return
        yield ": keep-alive\n\n"
        await asyncio.sleep(poll)


def unsent_rows(rows: list[dict[str, Any]], sent: dict[str, int]) -> list[dict[str, Any]]:
    """The rows past each trial's last iteration in `sent`, which this advances (never lowers).

    A read can come up short: Tune syncs a trial's row file to storage by copying it over the
    old one, so a read during the copy sees only its first rows. Those were sent already. And
    a resumed attempt's rows replace those it went over again: only new iterations are sent.
    """
    fresh = []
    for row in rows:
        trial, iteration = str(row.get("trial_id")), int(row.get("training_iteration") or 0)
        if iteration > sent.get(trial, 0):
            fresh.append(row)
            sent[trial] = iteration
    return fresh


@router.get(
    "/{job_id}/metrics",
    responses={200: {"content": {SSE: {}}}},
)
def job_metrics(
    job: VisibleJob, jobs: JobsDep, settings: SettingsDep, follow: Follow = False
) -> list[dict[str, Scalar]]:
    """Per-iteration result rows of every trial (Tune's flattened keys, `trial_id` included).

    With `follow=true`: a server-sent event stream, one `metrics` event per new row, ending with
    an `end` event when the job ends.
    """
    directory = jobs.directory(job)
    if not follow:
        return directory.rows()
    sent: dict[str, int] = {}  # trial -> the last iteration streamed

    def new_rows(_current: JobRecord) -> list[str]:
        return [_sse("metrics", row) for row in unsent_rows(directory.rows(), sent)]

    stream = _follow(jobs, job, settings.poll_seconds, new_rows)
    return StreamingResponse(stream, media_type=SSE)  # type: ignore[return-value]


@router.get("/{job_id}/trials", response_model=TrialsOut)
def job_trials(job: VisibleJob, jobs: JobsDep) -> TrialsOut:
    """The job's trials, best return first: state ("stopped early" when its scheduler ended
    it), the searched and mutated hyperparameters, iterations, best return; and PBT's
    perturbations (which trial copied which, when, with which values), oldest first. Empty
    until the job's driver has written its first table."""
    table = jobs.directory(job).read_trials() or {}
    trials = [TrialOut.model_validate(row) for row in table.get("trials", [])]
    trials.sort(key=lambda trial: -math.inf if trial.best_return is None else trial.best_return)
    return TrialsOut(
        trials=trials[::-1],
        perturbations=[PerturbationOut.model_validate(p) for p in table.get("perturbations", [])],
    )


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}, SSE: {}}}},
)
def job_logs(job: VisibleJob, jobs: JobsDep, settings: SettingsDep, follow: Follow = False) -> Any:
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
