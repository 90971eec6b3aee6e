"""The HTTP API's request and response models (what the OpenAPI document declares)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.jobs import JobStatus

Scalar = float | int | str | bool | None
Id = Annotated[str, Field(min_length=1, max_length=64)]


class FieldError(BaseModel):
    """One invalid field: where it is (`loc`) and what is wrong with it."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class ErrorOut(BaseModel):
    """Every error answer: a message, or a list of field errors for 422."""

    detail: str | list[FieldError]


class BestTrial(BaseModel):
    trial_id: str
    return_mean: float
    iteration: int | None = None


class JobOut(BaseModel):
    """A job record; `latest_metrics`, `best_trial` and `checkpoints` on GET /jobs/{id} (and on
    GET /jobs with `summary=true`)."""

    id: str
    owner: str
    status: JobStatus
    spec: dict[str, Any]
    message: str
    ray_job_id: str | None
    attempts: int
    storage_uri: str
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    latest_metrics: dict[str, Scalar] | None = None
    best_trial: BestTrial | None = None
    checkpoints: int | None = None

    model_config = ConfigDict(from_attributes=True)


class CheckpointOut(BaseModel):
    """One checkpoint: its id, trial, iteration, env steps and mean return when written."""

    id: str
    job_id: str
    trial_id: str
    iteration: int | None
    env_steps: int | None
    return_mean: float | None


class EvaluationIn(BaseModel):
    """Evaluate a job's checkpoint (`best` by default) with the greedy policy."""

    model_config = ConfigDict(extra="forbid")

    job_id: Id
    checkpoint_id: Id = "best"
    episodes: Annotated[int, Field(ge=1)] = 10
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    video: bool = False


class EvaluationOut(BaseModel):
    """An evaluation record; the score fields are set once it SUCCEEDED."""

    id: str
    job_id: str
    checkpoint_id: str
    episodes: int
    seed: int
    video: bool
    status: JobStatus
    message: str
    created_at: dt.datetime
    updated_at: dt.datetime
    return_mean: float | None = None
    return_std: float | None = None
    length_mean: float | None = None
    returns: list[float] | None = None
    lengths: list[int] | None = None


class AlgorithmOut(BaseModel):
    name: str
    summary: str
    book_section: str
    default_env: str
    envs: list[str]
    default_config: dict[str, Any]
    config_schema: dict[str, Any]


class EnvOut(BaseModel):
    id: str
    algorithms: list[str]


class NodeOut(BaseModel):
    id: str
    ip: str
    state: str
    is_head: bool
    resources: dict[str, float]


class ClusterOut(BaseModel):
    address: str
    nodes: list[NodeOut]
    resources: dict[str, float]
    resources_used: dict[str, float] = Field(
        default_factory=dict, description="Held by running tasks and actors now (e.g. CPU)"
    )


class HealthOut(BaseModel):
    status: str
    ray: bool
    database: bool
