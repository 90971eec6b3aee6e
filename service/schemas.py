"""The HTTP API's request and response models (what the OpenAPI document declares).

The SDK (`service.client`) returns these same models, so a client gets typed records. They also
answer `record["field"]`, as the SDK's plain dicts did before it was typed. This module imports
only pydantic, so the CLI loads it quickly.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from service.status import JobStatus

Scalar = float | int | str | bool | None
Id = Annotated[str, Field(min_length=1, max_length=64)]


class APIModel(BaseModel):
    """A response model that also reads like the JSON object it is (`job["status"]`)."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class FieldError(BaseModel):
    """One invalid field: where it is (`loc`) and what is wrong with it."""

    loc: list[str | int]
    msg: str
    type: str | None = None


class ErrorOut(BaseModel):
    """Every error answer: a message, or a list of field errors for 422."""

    detail: str | list[FieldError]


class BestTrial(APIModel):
    trial_id: str
    return_mean: float
    iteration: int | None = None


class JobOut(APIModel):
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
    resolved_config: dict[str, Any] | None = Field(
        default=None,
        description="The algorithm's config as the job runs it, every default filled in",
    )
    latest_metrics: dict[str, Scalar] | None = None
    best_trial: BestTrial | None = None
    checkpoints: int | None = None

    model_config = ConfigDict(from_attributes=True)


class CheckpointOut(APIModel):
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


class EvaluationOut(APIModel):
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


class AlgorithmOut(APIModel):
    name: str
    summary: str
    book_section: str
    default_env: str
    envs: list[str]
    default_config: dict[str, Any]
    config_schema: dict[str, Any]


class EnvOut(APIModel):
    id: str
    algorithms: list[str]


class NodeOut(APIModel):
    id: str
    ip: str
    state: str
    is_head: bool
    resources: dict[str, float]


class ClusterOut(APIModel):
    address: str
    nodes: list[NodeOut]
    resources: dict[str, float]
    resources_used: dict[str, float] = Field(
        default_factory=dict, description="Held by running tasks and actors now (e.g. CPU)"
    )


class HealthOut(APIModel):
    status: str
    ray: bool
    database: bool
