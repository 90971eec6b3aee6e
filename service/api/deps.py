"""Dependencies the routes declare: the caller's owner name and the app's services.

Those that only read the app's state are `async def`: FastAPI runs a plain `def` dependency
in its thread pool, a hop per dependency per request that was much of a cached read's cost.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.evaluations import EvaluationService
from service.jobs import JobService
from service.settings import Settings
from service.store import EvaluationRecord, JobRecord, Store
from service.text import PlainText

LOCAL_OWNER = "local"  # the owner of everything when no tokens are configured (loopback only)

_bearer = HTTPBearer(auto_error=False, description="An API token from RLDOJO_API_TOKENS")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_jobs(request: Request) -> JobService:
    jobs: JobService = request.app.state.jobs
    return jobs


async def get_evaluations(request: Request) -> EvaluationService:
    evaluations: EvaluationService = request.app.state.evaluations
    return evaluations


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def current_owner(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The owner the bearer token names; 401 without a valid token when auth is on, 400 for
    a request with more than one `Authorization` header (which one would it be?)."""
    if len(request.headers.getlist("authorization")) > 1:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "more than one Authorization header")
    if not settings.auth_enabled:
        return LOCAL_OWNER
    if credentials is not None:
        for token, owner in settings.api_tokens.items():
            if secrets.compare_digest(credentials.credentials.encode(), token.encode()):
                return owner
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobService, Depends(get_jobs)]
EvaluationsDep = Annotated[EvaluationService, Depends(get_evaluations)]
StoreDep = Annotated[Store, Depends(get_store)]
Owner = Annotated[str, Depends(current_owner)]
JobId = Annotated[PlainText, Path(description="A job id", max_length=64)]
CheckpointId = Annotated[PlainText, Path(max_length=64, description="A checkpoint id or `best`")]


def owned_job(job_id: JobId, owner: Owner, store: StoreDep) -> JobRecord:
    """The caller's job as the store has it (the supervisor follows Ray); 404 when missing or
    someone else's."""
    job = store.get_job(job_id=job_id, owner=owner)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job


def visible_job(job_id: JobId, owner: Owner, store: StoreDep) -> JobRecord:
    """The caller's job or a job another owner shared (to read only); 404 otherwise."""
    job = store.get_job(job_id=job_id)
    if job is None or (job.owner != owner and not job.shared):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job


def owned_evaluation(
    evaluation_id: Annotated[PlainText, Path(max_length=64)],
    owner: Owner,
    store: StoreDep,
    evaluations: EvaluationsDep,
) -> EvaluationRecord:
    """The caller's evaluation, reconciled with Ray; 404 when missing or someone else's."""
    evaluation = store.get_evaluation(evaluation_id=evaluation_id, owner=owner)
    if evaluation is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no evaluation {evaluation_id}")
    return evaluations.reconcile(evaluation)


OwnedJob = Annotated[JobRecord, Depends(owned_job)]
VisibleJob = Annotated[JobRecord, Depends(visible_job)]
OwnedEvaluation = Annotated[EvaluationRecord, Depends(owned_evaluation)]
