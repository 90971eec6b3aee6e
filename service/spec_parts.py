"""The parts of a job spec (`service.spec.JobSpec`): stop criteria, resources, checkpoints and
search domains, each a strict pydantic model (unknown keys and NaN refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_SEED = 2**32 - 1  # numpy's and Gymnasium's seeds are unsigned 32-bit
MAX_ITERATIONS = 10_000_000  # of one job; a checkpoint interval is no longer
MAX_CHECKPOINTS_KEPT = 1_000


class StrictModel(BaseModel):
    """Unknown keys and NaN or infinities refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StopSpec(StrictModel):
    """When to stop; training stops at the first criterion met.

    A spec with none of `iterations`, `env_steps` and `seconds` (`return_mean` alone may never
    be reached) gets the default stop of its algorithm and env (`algorithms.default_stop`).
    """

    iterations: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] | None = None
    env_steps: Annotated[int, Field(ge=1, le=100_000_000_000)] | None = None
    return_mean: float | None = None
    seconds: Annotated[float, Field(gt=0, le=30 * 24 * 3600)] | None = None

    @property
    def bounded(self) -> bool:
        """True when a criterion is sure to be met: iterations, env steps or seconds."""
        return not (self.iterations is None and self.env_steps is None and self.seconds is None)


class ResourcesSpec(StrictModel):
    """Ray resources per trial; None keeps the algorithm's default.

    `placement` is how the trial's Ray bundles (its main process, EnvRunners, learners) go onto
    nodes: "SPREAD" over as many nodes as possible (a lost node takes fewer of them, and its
    EnvRunners are restarted elsewhere), or "PACK" onto as few as possible (RLlib's default).
    """

    env_runners: Annotated[int, Field(ge=0, le=256)] | None = None
    learners: Annotated[int, Field(ge=0, le=64)] | None = None
    gpus_per_learner: Annotated[float, Field(ge=0, le=8)] | None = None
    placement: Literal["PACK", "SPREAD"] | None = None
    concurrent_trials: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None,
        description="Trials run at once (the job holds that many trials' resources while it "
        "runs); None: as many as fit the cluster.",
    )


class CheckpointSpec(StrictModel):
    """Checkpoint every `every` iterations (and at the end); keep the best `keep`."""

    every: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] = 10
    keep: Annotated[int, Field(ge=1, le=MAX_CHECKPOINTS_KEPT)] = 3


class GridSearch(StrictModel):
    grid: Annotated[list[Any], Field(min_length=1)]


class ChoiceSearch(StrictModel):
    choice: Annotated[list[Any], Field(min_length=1)]


class UniformSearch(StrictModel):
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)]


class LogUniformSearch(StrictModel):
    loguniform: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)]


SearchDomain = GridSearch | ChoiceSearch | UniformSearch | LogUniformSearch
Priority = Literal["low", "normal", "high"]  # service.status.PRIORITIES, by the store's number
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]
