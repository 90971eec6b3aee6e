"""The HTTP API's request and response models (what the OpenAPI document declares).

The SDK (`service.client`) returns these same models, so a client gets typed records. They also
answer `record["field"]`, as the SDK's plain dicts did before it was typed. This module imports
only pydantic, so the CLI loads it quickly.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.spec_model import StopSpec
from service.status import PRIORITIES, JobStatus
from service.text import PlainText

Priority = Literal["low", "normal", "high"]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]

Scalar = float | int | str | bool | None
Id = Annotated[PlainText, Field(min_length=1, max_length=64)]


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
    stop_reason: str | None = Field(
        default=None,
        description="Why the current attempt was asked to stop: user, preempted or cancelled",
    )
    priority: Priority = "normal"
    name: str | None = None
    tags: list[str] = Field(default_factory=list)
    shared: bool = False
    cpus: float = Field(default=0.0, description="CPUs the job holds while it runs")
    gpus: float = Field(default=0.0, description="GPUs the job holds while it runs")
    game: str | None = Field(
        default=None, description="The ALE game the job plays (part of its env's identity)"
    )
    queue_position: int | None = Field(
        default=None, description="While QUEUED: its place in the queue (1 starts next)"
    )
    latest_metrics: dict[str, Scalar] | None = None
    best_trial: BestTrial | None = None
    checkpoints: int | None = None

    model_config = ConfigDict(from_attributes=True)

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return PRIORITIES[value] if isinstance(value, int) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        return value or []


class ResumeIn(BaseModel):
    """POST /v1/jobs/{id}/resume's optional body: a new stop extends the job to it."""

    model_config = ConfigDict(extra="forbid")

    stop: StopSpec = Field(description="Stop fields merged into the job's own stop")


class JobUpdate(BaseModel):
    """What PATCH /v1/jobs/{id} changes; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    priority: Priority | None = None
    name: Annotated[PlainText, Field(min_length=1, max_length=128)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    shared: bool | None = None


class SpecCheckOut(APIModel):
    """A job spec as the service would run it, without running it."""

    spec: dict[str, Any] = Field(description="The spec with its defaults filled in")
    hyperparameters: dict[str, Any] = Field(
        description="The algorithm's settings for this env (presets applied), the form's values"
    )
    resolved_config: dict[str, Any]
    trial_resources: list[dict[str, float]] = Field(description="Ray bundles one trial asks for")


TrialState = Literal["pending", "running", "paused", "finished", "stopped early", "failed"]


class TrialOut(APIModel):
    """One trial of a job: its state ("stopped early": the job's scheduler ended it before
    the stop), the searched and mutated hyperparameters it trains with now, how far it got."""

    trial_id: str
    state: TrialState | str
    hyperparameters: dict[str, Any]
    iterations: int
    return_mean: float | None
    best_return: float | None


class PerturbationOut(APIModel):
    """One PBT exploit: `trial_id` copied trial `copied`'s checkpoint after its iteration
    `iteration`, and went on with `values` (it had `from_values`)."""

    time: float
    trial_id: str
    iteration: int | None
    copied: str | None
    from_values: dict[str, Any]
    values: dict[str, Any]


class TrialsOut(APIModel):
    """A job's trials, best return first, and PBT's perturbations, oldest first."""

    trials: list[TrialOut]
    perturbations: list[PerturbationOut]


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
    protocol: Literal["book", "standard"] = Field(
        default="book",
        description="book: the env as trained; standard (ALE games): sticky actions 0.25, "
        "frame skip 4, 108,000-frame cap, whole games, raw score (Machado et al. 2018)",
    )
    epsilon: Annotated[float | None, Field(ge=0.0, le=1.0)] = Field(
        default=None, description="Random-action rate; none: the protocol's (book 0, standard 0.05)"
    )


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
    protocol: str | None = None
    epsilon: float | None = None
    seeds: list[int] | None = None
    game: str | None = Field(default=None, description="The ALE game played, if one")
    human_normalized: float | None = Field(
        default=None, description="(return_mean - random) / (human - random), for ALE games"
    )


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
    observation: str = Field(description="Its observations' kind: discrete, vector or image.")
    action: str = Field(description="Its actions' kind: discrete or continuous.")
    observation_space: str
    action_space: str
    algorithms: list[str] = Field(description="The algorithms that train on it.")


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


class WebhookIn(BaseModel):
    """A URL to POST your jobs' and evaluations' status changes to, signed with `secret`."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]
    secret: Annotated[PlainText, Field(min_length=16, max_length=128)] | None = Field(
        default=None, description="The HMAC-SHA256 key; one is made when left out"
    )


class WebhookPatch(BaseModel):
    """Turn a webhook off, or back on (which checks its URL again and resets its failures)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool


class WebhookOut(APIModel):
    id: str
    url: str
    secret: str | None = Field(default=None, description="Shown once, when the webhook is created")
    created_at: dt.datetime
    enabled: bool = Field(default=True, description="False: disabled, nothing is sent")
    disabled_at: dt.datetime | None = None
    disabled_reason: str | None = Field(
        default=None, description="Why: its failures in a row and the last one, or its owner"
    )
    consecutive_failures: int = Field(default=0, description="Failed deliveries in a row")

    model_config = ConfigDict(from_attributes=True)


class DeliveryOut(APIModel):
    """One event for one webhook and how its delivery went."""

    id: str
    event: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    next_attempt_at: dt.datetime
    payload: dict[str, Any]

    model_config = ConfigDict(from_attributes=True)


class CompareCurve(BaseModel):
    """One trial's points of a compared job (raw and smoothed)."""

    job_id: str
    trial_id: str
    x: list[float]
    y: list[float]
    smoothed: list[float]


class CompareOut(APIModel):
    """Jobs side by side: their curves on one metric, and the settings where they differ."""

    jobs: list[JobOut]
    metric: str
    x: str
    curves: list[CompareCurve]
    differences: dict[str, dict[str, Any]] = Field(
        description="Each setting (spec or resolved config) that differs: job id -> value"
    )


class LeaderboardEntry(APIModel):
    """The best evaluation of one checkpoint."""

    env: str
    algorithm: str
    job_id: str
    job_name: str | None
    owner: str
    checkpoint_id: str
    return_mean: float
    return_std: float | None
    episodes: int
    evaluation_id: str
    evaluated_at: dt.datetime
    game: str | None = Field(default=None, description="The ALE game, for Atari envs")
    protocol: str = "book"
    human_normalized: float | None = None
