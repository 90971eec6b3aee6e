"""The job spec's schema: the one typed contract of the SDK, the CLI, the HTTP API and the driver.

Plain pydantic models that import nothing heavy (no Ray, torch, Gymnasium, algorithms or envs),
so a client can build and check a spec's shape with them. What needs the algorithm registry
(a known algorithm and env, the config keys against the algorithm's hyperparameters, the
defaults an algorithm fills in) is checked by `service.spec.parse_spec`, the server's one
entry point, which returns a spec of this schema with its defaults in.

Example:
    >>> from service.spec_model import JobSpec
    >>> JobSpec(algorithm="q_learning", stop={"iterations": 10}).stop.iterations
    10
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.text import PlainText

MAX_SEED = 2**32 - 1  # numpy's and Gymnasium's seeds are unsigned 32-bit
MAX_ITERATIONS = 10_000_000  # of one job; a checkpoint interval is no longer
MAX_CHECKPOINTS_KEPT = 1_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StopSpec(_Strict):
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


class ResourcesSpec(_Strict):
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


class CheckpointSpec(_Strict):
    """Checkpoint every `every` iterations (and at the end); keep the best `keep`."""

    every: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] = 10
    keep: Annotated[int, Field(ge=1, le=MAX_CHECKPOINTS_KEPT)] = 3


class GridSearch(_Strict):
    grid: Annotated[list[Any], Field(min_length=1)]


class ChoiceSearch(_Strict):
    choice: Annotated[list[Any], Field(min_length=1)]


class UniformSearch(_Strict):
    uniform: Annotated[list[float], Field(min_length=2, max_length=2)]


class LogUniformSearch(_Strict):
    loguniform: Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=2, max_length=2)]


SearchDomain = GridSearch | ChoiceSearch | UniformSearch | LogUniformSearch
SampledDomain = ChoiceSearch | UniformSearch | LogUniformSearch  # what PBT resamples from

# The result a scheduler or searcher ranks trials by: the mean episode return, the higher the
# better (the job's best trial and checkpoint are chosen by it too).
Metric = Literal["return_mean"]
Mode = Literal["max"]


class AshaSpec(_Strict):
    """Asynchronous successive halving (Tune's ASHAScheduler): at each rung (`grace_period`
    iterations, then `reduction_factor` times more) a trial below the top 1/`reduction_factor`
    of the trials that reached the rung stops early, for good."""

    type: Literal["asha"]
    metric: Metric = "return_mean"
    mode: Mode = "max"
    grace_period: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] = 1
    max_t: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] | None = Field(
        default=None, description="The last rung's iterations; None: the job's stop.iterations."
    )
    reduction_factor: Annotated[float, Field(gt=1, le=100)] = 3


class PbtSpec(_Strict):
    """Population Based Training (Tune's PopulationBasedTraining): every
    `perturbation_interval` iterations a trial in the bottom `quantile_fraction` copies the
    checkpoint of one in the top, then trains on with that trial's hyperparameters perturbed
    (each `hyperparam_mutations` key multiplied by 0.8 or 1.2, or resampled from its domain
    with `resample_probability`)."""

    type: Literal["pbt"]
    metric: Metric = "return_mean"
    mode: Mode = "max"
    perturbation_interval: Annotated[int, Field(ge=1, le=MAX_ITERATIONS)] = 5
    hyperparam_mutations: Annotated[dict[str, SampledDomain], Field(min_length=1)]
    quantile_fraction: Annotated[float, Field(gt=0, le=0.5)] = 0.25
    resample_probability: Annotated[float, Field(ge=0, le=1)] = 0.25


SchedulerSpec = Annotated[AshaSpec | PbtSpec, Field(discriminator="type")]


class SearcherSpec(_Strict):
    """How the `search` domains are sampled: "random" (Tune's own sampling, grids included),
    "optuna" (Tune's OptunaSearch) or "hyperopt" (Tune's HyperOptSearch), both Tree-structured
    Parzen Estimators choosing each trial's values from the results so far; `max_concurrent`
    trials at once, which is what lets them learn from the earlier ones."""

    type: Literal["random", "optuna", "hyperopt"]
    metric: Metric = "return_mean"
    mode: Mode = "max"
    max_concurrent: Annotated[int, Field(ge=1, le=100)] | None = None


class TrackingSpec(_Strict):
    """Where a job's trials are also logged: with `mlflow`, one MLflow run per trial (metrics,
    params, the job's tags) in the service's tracking store (`RLDOJO_MLFLOW_TRACKING_URI`)."""

    mlflow: bool = False
    experiment: Annotated[PlainText, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description='The MLflow experiment of the runs; None: "rldojo".'
    )


class FromCheckpointSpec(_Strict):
    """Start from another job's checkpoint (a warm start): its network's weights, and on request
    its optimizer's state and (DQN) its replay memory. The job must be the submitter's or
    shared, of the same algorithm, on an env with the same observation and action spaces."""

    job: Annotated[PlainText, Field(min_length=1, max_length=64)]
    checkpoint: Annotated[PlainText, Field(min_length=1, max_length=64)] = Field(
        default="best", description='A checkpoint id of that job, or "best".'
    )
    keep_optimizer: bool = Field(
        default=False, description="Continue with its optimizer's state (Adam's moments)."
    )
    keep_replay: bool = Field(
        default=False, description="Start with its replay memory's contents (DQN)."
    )


Priority = Literal["low", "normal", "high"]  # service.status.PRIORITIES, by the store's number
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]


class JobSpec(_Strict):
    """One training job: an algorithm on an env, its overrides, stop criteria and resources."""

    algorithm: PlainText
    env: PlainText | None = Field(
        default=None, description="Env id; the algorithm's default if null."
    )
    env_config: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    stop: StopSpec = Field(default_factory=StopSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    search: dict[str, SearchDomain] = Field(default_factory=dict)
    num_samples: Annotated[int, Field(ge=1, le=100)] = 1
    scheduler: SchedulerSpec | None = Field(
        default=None, description="Early stopping (asha) or population based training (pbt)."
    )
    searcher: SearcherSpec | None = Field(
        default=None, description="How `search` is sampled; None: Tune's random and grid."
    )
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="MLflow logging of the job's trials."
    )
    from_checkpoint: FromCheckpointSpec | None = Field(
        default=None, description="Start from another job's checkpoint (a warm start)."
    )
    priority: Priority = Field(
        default="normal", description="The queue's order: high jobs start first (and preempt)."
    )
    name: Annotated[PlainText, Field(min_length=1, max_length=128)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = Field(default_factory=list)
    shared: bool = Field(
        default=False,
        description="Readable by every user: listed, compared, on the leaderboard, pullable.",
    )

    @property
    def trials(self) -> int:
        """How many trials the job runs: grid points times `num_samples`."""
        count = self.num_samples
        for domain in self.search.values():
            if isinstance(domain, GridSearch):
                count *= len(domain.grid)
        return count

    @property
    def trials_end_at_stop(self) -> bool:
        """Whether a trial ends for good at the stop criteria instead of pausing there (where
        an extend would continue it): under PBT, whose population a paused trial would stay in,
        and under a model-based searcher, which learns from each trial only once it ends."""
        model_based = self.searcher is not None and self.searcher.type != "random"
        return isinstance(self.scheduler, PbtSpec) or model_based

    @property
    def env_id(self) -> str:
        """The env id (`service.spec.parse_spec` fills in the algorithm's default)."""
        if self.env is None:
            raise ValueError("the spec names no env yet: service.spec.parse_spec fills it in")
        return self.env
