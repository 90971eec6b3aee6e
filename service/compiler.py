"""The job compiler: a validated job spec becomes everything its run needs, once, at submit.

The API calls `compile_job` once per submitted spec (the CLI's `rldojo train` once per run); the
`CompiledJob` it returns is stored in the job directory (`compiled.json`), and the driver
(`service/driver/`) trains exactly that: it never parses the spec or builds its config again.

A `CompiledJob` is plain data:

- `config`: the algorithm's RLlib config as the job runs it, every default filled in, as JSON
  (`AlgorithmConfig.to_dict()` less the classes and callables RLlib keeps there, which say
  nothing a user can set and which the config class sets again by itself);
- `spec.search`: the Tune search domains over `config` keys; with `config` it is Tune's
  param space;
- `stop`: Tune's stop criteria; `trial_resources`: the Ray bundles one trial asks for;
- `preset`: the preset of the algorithm the config got (from the spec's choice or its env);
- `mlflow_uri`: the MLflow tracking store its trials log to, when its spec asks for tracking;
- `sample_seeds`: one seed per sample when the spec fixes `seed` and repeats its trials
  (`num_samples` > 1): sample k trains with seed + k, so the repeats are not one run N times;
- `warm_start`: the checkpoint its spec's `from_checkpoint` names, found and checked at submit
  (`service.warm_starts`), which every trial starts from.

Example:
    >>> from service.spec import parse_spec
    >>> job = compile_job(parse_spec({"algorithm": "q_learning"}))  # doctest: +SKIP
    >>> job.stop, job.config["gamma"]  # doctest: +SKIP
    ({'training_iteration': 100}, 0.9)
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

import algorithms
from algorithms.common import metrics
from algorithms.common.devices import learner_gpus
from service.spec import JobSpec, SpecError
from service.spec_model import MAX_SEED

NO_MLFLOW_STORE = (
    "this service has no MLflow tracking store to log to (its operator sets "
    "RLDOJO_MLFLOW_TRACKING_URI; `rldojo train` takes --mlflow-uri)"
)


NO_CHECKPOINT_LOOKUP = (
    "a warm start names a job of the service: submit the spec to it (`rldojo train` has no "
    "jobs to start from)"
)


class WarmStartSource(BaseModel):
    """The checkpoint a warm-started job's trials begin with (its spec's `from_checkpoint`)."""

    model_config = ConfigDict(frozen=True)

    job: str
    checkpoint: str  # the checkpoint's id ("best" resolved at submit: it stays that one)
    uri: str  # where the trials' processes read it


class CompiledJob(BaseModel):
    """A job spec compiled for Tune: what the job directory stores and the driver runs."""

    model_config = ConfigDict(frozen=True)

    spec: JobSpec
    config: dict[str, Any]
    preset: str | None
    stop: dict[str, float]
    trial_resources: list[dict[str, float]]
    mlflow_uri: str | None = None
    sample_seeds: list[int] | None = None
    warm_start: WarmStartSource | None = None

    @property
    def resolved_config(self) -> dict[str, Any]:
        """The config as users see it (the job record, POST /v1/jobs/validate): with `preset`."""
        return {**self.config, "preset": self.preset}


def compile_job(
    spec: JobSpec,
    *,
    cluster_gpus: float | None = None,
    mlflow_uri: str | None = None,
    warm_start: WarmStartSource | None = None,
) -> CompiledJob:
    """Compile a validated spec: its RLlib config, stop criteria and one trial's resources.

    Args:
        spec: A spec that passed `service.spec.parse_spec`.
        cluster_gpus: The most GPUs a node of the cluster has, which decides where a GPU
            learner runs when the spec does not say; None asks Ray (or this machine).
        mlflow_uri: The MLflow tracking store of the service (of `rldojo train`); a spec
            with `tracking.mlflow` is compiled with it, and refused without one.
        warm_start: The checkpoint the spec's `from_checkpoint` resolved to
            (`service.warm_starts.resolve`); a spec with one is refused without it.

    Raises:
        SpecError: The spec asks for MLflow tracking and there is no tracking store, or for
            a warm start that was not resolved.
    """
    if spec.tracking.mlflow and mlflow_uri is None:
        raise SpecError([{"loc": ["tracking", "mlflow"], "msg": NO_MLFLOW_STORE}])
    if spec.from_checkpoint is not None and warm_start is None:
        raise SpecError([{"loc": ["from_checkpoint"], "msg": NO_CHECKPOINT_LOOKUP}])
    config = build_config(spec, cluster_gpus=cluster_gpus)
    return CompiledJob(
        spec=spec,
        config=json_settings(config),
        preset=algorithms.chosen_preset(spec.algorithm, spec.env_id, spec.config, spec.env_config),
        stop=stop_criteria(spec),
        trial_resources=trial_resources(config),
        mlflow_uri=mlflow_uri if spec.tracking.mlflow else None,
        sample_seeds=sample_seeds(spec),
        warm_start=warm_start if spec.from_checkpoint is not None else None,
    )


def sample_seeds(spec: JobSpec) -> list[int] | None:
    """A seed per sample of a seeded spec that repeats its trials, or None (one seed for all).

    The driver makes them a grid over `seed` in place of `num_samples`, so each grid point is
    trained once per seed. A model-based searcher (Optuna, HyperOpt) takes no grid; its trials
    differ by the values it samples and share the spec's seed.
    """
    model_based = spec.searcher is not None and spec.searcher.type != "random"
    if spec.seed is None or spec.num_samples == 1 or model_based:
        return None
    return [(spec.seed + sample) % (MAX_SEED + 1) for sample in range(spec.num_samples)]


def build_config(spec: JobSpec, *, cluster_gpus: float | None = None) -> AlgorithmConfig:
    """The algorithm's config with the spec's env, overrides, seed and resources applied."""
    config = algorithms.build(
        spec.algorithm, spec.env_id, spec.config, env_config=dict(spec.env_config)
    )
    if spec.seed is not None:
        config.debugging(seed=spec.seed)
    resources = spec.resources
    if resources.env_runners is not None:
        config.env_runners(num_env_runners=resources.env_runners)
    if resources.learners is not None:
        config.learners(num_learners=resources.learners)
    if resources.gpus_per_learner is not None:
        config.learners(num_gpus_per_learner=resources.gpus_per_learner)
    elif algorithms.get(spec.algorithm).gpu_learner:
        cluster = None if cluster_gpus is None else {"GPU": cluster_gpus}
        config.learners(num_gpus_per_learner=learner_gpus(cluster))
    if resources.placement is not None:
        config.resources(placement_strategy=resources.placement)
    return config


def json_settings(config: AlgorithmConfig) -> dict[str, Any]:
    """The config's JSON-safe settings (RLlib's `to_dict()` also holds classes and callables)."""
    return {key: value for key, value in config.to_dict().items() if _json_safe(value)}


def _json_safe(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_json_safe(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _json_safe(item) for key, item in value.items())
    return False


def trial_resources(config: AlgorithmConfig) -> list[dict[str, float]]:
    """The Ray resource bundles one trial asks for (its own process, EnvRunners, learners)."""
    algo_class: Any = config.algo_class  # RLlib types it as a plain `type`
    request = algo_class.default_resource_request(config)
    bundles = getattr(request, "bundles", None) or [request.required_resources]
    return [{key: float(value) for key, value in bundle.items()} for bundle in bundles]


def with_stop(compiled: CompiledJob, spec: JobSpec) -> CompiledJob:
    """The compiled job extended to `spec`, which differs from its own only in its stop: the
    same config (the run continues as it was), the new stop criteria."""
    return compiled.model_copy(update={"spec": spec, "stop": stop_criteria(spec)})


def stop_criteria(spec: JobSpec) -> dict[str, float]:
    """Tune stops a trial when any of these result keys reaches its value."""
    wanted = {
        metrics.ITERATION: spec.stop.iterations,
        metrics.ENV_STEPS: spec.stop.env_steps,
        metrics.EPISODE_RETURN_MEAN: spec.stop.return_mean,
        metrics.TIME_TOTAL_S: spec.stop.seconds,
    }
    return {key: value for key, value in wanted.items() if value is not None}
