"""Run a job spec as a Ray Tune experiment: the one path behind `rldojo train` and every API job.

The spec becomes the algorithm's config (`param_space`), its `search` becomes Tune search domains,
its `stop` becomes Tune stop criteria and its `checkpoint` Tune's checkpoint policy. Results land
under `<out_dir>/<name>/<trial>/` (progress.csv, result.json, TensorBoard events, checkpoints), and
`resume=True` continues an interrupted experiment from its last checkpoints with `Tuner.restore`.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

import algorithms
from algorithms.common import metrics
from service.spec import (
    ChoiceSearch,
    GridSearch,
    JobSpec,
    LogUniformSearch,
    SearchDomain,
)
from service.storage import merge_attempt_rows

SPEC_FILE = "spec.json"  # written beside the experiment, so a resume needs nothing else


def build_config(spec: JobSpec) -> AlgorithmConfig:
    """The algorithm's config with the spec's env, overrides, seed and resources applied."""
    entry = algorithms.get(spec.algorithm)
    config = entry.config_class().environment(spec.env_id, env_config=dict(spec.env_config))
    config.training(**spec.config)
    if spec.seed is not None:
        config.debugging(seed=spec.seed)
    resources = spec.resources
    if resources.env_runners is not None:
        config.env_runners(num_env_runners=resources.env_runners)
    if resources.learners is not None:
        config.learners(num_learners=resources.learners)
    if resources.gpus_per_learner is not None:
        config.learners(num_gpus_per_learner=resources.gpus_per_learner)
    if resources.placement is not None:
        config.resources(placement_strategy=resources.placement)
    return config


def param_space(spec: JobSpec) -> dict[str, Any]:
    """Tune's param space: the built config as a dict, with the spec's search domains in it."""
    space = build_config(spec).to_dict()
    for key, domain in spec.search.items():
        space[key] = tune_domain(domain)
    return space


def tune_domain(domain: SearchDomain) -> Any:
    """A spec search domain as Tune's: grid -> grid_search, choice, uniform, loguniform."""
    if isinstance(domain, GridSearch):
        return tune.grid_search(domain.grid)
    if isinstance(domain, ChoiceSearch):
        return tune.choice(domain.choice)
    if isinstance(domain, LogUniformSearch):
        return tune.loguniform(*domain.loguniform)
    return tune.uniform(*domain.uniform)


def stop_criteria(spec: JobSpec) -> dict[str, float]:
    """Tune stops a trial when any of these result keys reaches its value."""
    wanted = {
        metrics.ITERATION: spec.stop.iterations,
        metrics.ENV_STEPS: spec.stop.env_steps,
        metrics.EPISODE_RETURN_MEAN: spec.stop.return_mean,
        metrics.TIME_TOTAL_S: spec.stop.seconds,
    }
    return {key: value for key, value in wanted.items() if value is not None}


@dataclass
class TrialSummary:
    """One finished trial: where it lives, how far it got, its best checkpoint."""

    trial_id: str
    path: str
    status: str
    iterations: int
    return_mean: float | None
    best_checkpoint: str | None


@dataclass
class TrainingSummary:
    """What `train` leaves behind."""

    experiment_path: str
    trials: list[TrialSummary] = field(default_factory=list)

    @property
    def best_checkpoint(self) -> str | None:
        """The best checkpoint over all trials (highest mean return when it was written)."""
        candidates = [t for t in self.trials if t.best_checkpoint is not None]
        if not candidates:
            return None
        best = max(candidates, key=lambda t: _finite(t.return_mean))
        return best.best_checkpoint


def train(
    spec: JobSpec,
    *,
    out_dir: str | Path,
    name: str = "run",
    resume: bool = False,
    callbacks: list[tune.Callback] | None = None,
) -> TrainingSummary:
    """Run (or resume) the spec's Tune experiment on the current Ray cluster.

    Args:
        spec: The validated job spec.
        out_dir: Storage root; the experiment is `<out_dir>/<name>`. Local path or `s3://`.
        name: The experiment's name inside `out_dir`.
        resume: Continue the experiment at `<out_dir>/<name>` from its last checkpoints.
        callbacks: Tune callbacks (the CLI's progress display, for instance).

    Returns:
        The experiment's location and each trial's outcome.
    """
    storage = str(out_dir) if "://" in str(out_dir) else str(Path(out_dir).resolve())
    experiment = f"{storage.rstrip('/')}/{name}"
    trainable = algorithms.get(spec.algorithm).config_class().algo_class
    assert trainable is not None, f"{spec.algorithm}'s config names no Algorithm class"
    if resume:
        tuner = tune.Tuner.restore(
            experiment,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space(spec),
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(num_samples=spec.num_samples),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                stop=stop_criteria(spec),
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=spec.checkpoint.every,
                    num_to_keep=spec.checkpoint.keep,
                    checkpoint_at_end=True,
                ),
                callbacks=callbacks,
                verbose=0,
            ),
        )
        _write_spec(spec, experiment)
    # Tune snapshots its experiment state, and syncs the result rows to storage with it, every
    # TUNE_GLOBAL_CHECKPOINT_S seconds (by default 10 or more). A short period keeps the API's
    # metrics live and narrows what a crash rolls back: a resumed trial restarts from the last
    # checkpoint that snapshot knew of, and re-writes any newer checkpoint at the same iteration.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    with _stop_gracefully_on_sigterm():
        grid = tuner.fit()
    return TrainingSummary(
        experiment_path=experiment,
        trials=[_summarise(grid[index]) for index in range(len(grid))],
    )


@contextmanager
def _stop_gracefully_on_sigterm() -> Iterator[None]:
    """While Tune runs, let SIGTERM stop it the way Ctrl+C does: with a last snapshot.

    Ray Jobs stops a job's driver with SIGTERM (SIGKILL 3 s later), and the SIGTERM handler
    `ray.init` installs ends the process at once, so the snapshot a resume starts from could miss
    the latest checkpoints. Tune's SIGINT handler instead ends the run after writing the
    experiment state. Ray is initialised first (as Tune would) so that this handler wins.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not ray.is_initialized():
        ray.init()
    previous = signal.signal(
        signal.SIGTERM, lambda _sig, _frame: signal.raise_signal(signal.SIGINT)
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_spec(spec: JobSpec, experiment: str) -> None:
    if "://" in experiment:
        return  # remote storage: the service keeps the spec in its own database
    Path(experiment).mkdir(parents=True, exist_ok=True)
    (Path(experiment) / SPEC_FILE).write_text(spec.model_dump_json(indent=2))


def _summarise(result: Any) -> TrialSummary:
    row = result.metrics or {}
    trial_path = result.path
    best = best_checkpoint(trial_path) if "://" not in trial_path else None
    return TrialSummary(
        trial_id=str(row.get("trial_id", Path(trial_path).name)),
        path=trial_path,
        status="ERROR" if result.error else "TERMINATED",
        iterations=int(row.get(metrics.ITERATION, 0)),
        return_mean=_number(metrics.flatten(row).get(metrics.EPISODE_RETURN_MEAN)),
        best_checkpoint=best,
    )


# ---- reading a trial's results back (the CLI, the service and plots share these) -------------


def result_rows(trial_dir: str | Path) -> list[dict[str, Any]]:
    """Every iteration's result row of one trial, flattened (metric names as in `metrics`).

    Rows of earlier attempts that the service set aside on resume (`result.attempt-NNN.json`)
    come first, merged as the service merges them (`merge_attempt_rows`).
    """
    paths = sorted(Path(trial_dir).glob("result.attempt-*.json")) + [
        Path(trial_dir) / "result.json"
    ]
    files = [_read_rows(path) for path in paths if path.is_file()]
    return merge_attempt_rows(files)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines()
    return [metrics.flatten(json.loads(line)) for line in lines if line.strip()]


def checkpoints(trial_dir: str | Path) -> list[Path]:
    """A trial's checkpoint directories, oldest first."""
    return sorted(Path(trial_dir).glob("checkpoint_*"))


def checkpoint_iteration(checkpoint: Path) -> int | None:
    """The training iteration a checkpoint was written at, from RLlib's own algorithm state."""
    state = checkpoint / "algorithm_state.pkl"
    if not state.is_file():
        return None
    with state.open("rb") as handle:
        iteration = pickle.load(handle).get("training_iteration")
    return int(iteration) if iteration is not None else None


def best_checkpoint(trial_dir: str | Path) -> str | None:
    """The kept checkpoint whose iteration had the highest mean return (latest on ties)."""
    kept = checkpoints(trial_dir)
    if not kept:
        return None
    returns = {
        int(row[metrics.ITERATION]): _finite(_number(row.get(metrics.EPISODE_RETURN_MEAN)))
        for row in result_rows(trial_dir)
    }
    ranked = sorted(
        kept, key=lambda c: (returns.get(checkpoint_iteration(c) or -1, -math.inf), c.name)
    )
    return str(ranked[-1])


def trial_dirs(experiment: str | Path) -> list[Path]:
    """The trial directories of an experiment (those holding a result.json)."""
    return sorted(p.parent for p in Path(experiment).glob("*/result.json"))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _finite(value: float | None) -> float:
    return value if value is not None else -math.inf


ProgressFn = Callable[[dict[str, Any]], None]


class ProgressCallback(tune.Callback):
    """Hands each trial's flattened result row to a function (the CLI's progress display)."""

    def __init__(self, on_result: ProgressFn) -> None:
        self.on_result: ProgressFn | None = on_result

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks into its experiment state; a live display cannot be pickled.
        return {"on_result": None}

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if self.on_result is None:
            return
        row = metrics.flatten(result)
        row["trial_id"] = trial.trial_id
        self.on_result(row)
