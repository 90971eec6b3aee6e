"""Run a job spec as a Ray Tune experiment: the one path behind `rldojo train` and every API job.

The spec becomes the algorithm's config (`param_space`), its `search` Tune's search domains, its
`stop` Tune's stop criteria and its `checkpoint` Tune's checkpoint policy. The experiment lives
in a `JobDirectory` (service/jobdir.py), which *is* the Tune experiment directory: an API job's
is `<storage>/jobs/<job id>`, so its experiment is named by the job id and shares nothing with
another job's; `rldojo train --out DIR --name NAME` trains into `DIR/NAME`.

An API job's Ray job runs `run_job(<job directory>, attempt)`: it reads the spec from the
directory, watches for a stop request there, writes what it is doing (`progress.json`), and on
attempt 2 and later continues the experiment from its last checkpoints (`Tuner.restore`).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

import algorithms
from algorithms.common import metrics
from algorithms.common.devices import learner_gpus
from service import quiet
from service.jobdir import JobDirectory, finite_float
from service.spec import JobSpec
from service.spec_parts import ChoiceSearch, GridSearch, LogUniformSearch, SearchDomain
from service.status import root_cause

logger = logging.getLogger(__name__)

STOP_POLL_S = 1.0  # how often a running job looks for a stop request in its directory


def build_config(spec: JobSpec) -> AlgorithmConfig:
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
        config.learners(num_gpus_per_learner=learner_gpus())
    if resources.placement is not None:
        config.resources(placement_strategy=resources.placement)
    return config


def resolved_config(config: AlgorithmConfig, spec: JobSpec | None = None) -> dict[str, Any]:
    """The config as the job runs it, every default filled in: its JSON-safe settings, and
    the preset it got (`preset`, from the spec's choice or its env).

    RLlib's `to_dict()` also holds classes and callables (the algorithm, module and connector
    classes); those say nothing a user can set and are left out.
    """
    resolved = {key: value for key, value in config.to_dict().items() if _json_safe(value)}
    if spec is not None:
        resolved["preset"] = algorithms.chosen_preset(spec.algorithm, spec.env_id, spec.config)
    return resolved


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
    """One finished trial: where it lives, how far it got."""

    trial_id: str
    path: str
    status: str
    iterations: int
    return_mean: float | None
    error: str | None = None  # the root cause in one line, when the trial failed


@dataclass
class TrainingSummary:
    """What `train` leaves behind."""

    experiment_path: str
    trials: list[TrialSummary] = field(default_factory=list)
    best_checkpoint: str | None = None  # the directory's best (highest return when written)


def train(
    spec: JobSpec,
    directory: JobDirectory,
    *,
    resume: bool = False,
    callbacks: list[tune.Callback] | None = None,
) -> TrainingSummary:
    """Run (or resume) the spec's Tune experiment in `directory` on the current Ray cluster.

    Args:
        spec: The validated job spec.
        directory: The job directory (local path or `s3://`); it is the experiment directory.
        resume: Continue the experiment there from its last checkpoints.
        callbacks: Tune callbacks (the CLI's progress display, the job's progress file).

    Returns:
        The experiment's location, each trial's outcome and the best checkpoint.
    """
    trainable = algorithms.get(spec.algorithm).config_class().algo_class
    assert trainable is not None, f"{spec.algorithm}'s config names no Algorithm class"
    experiment = directory.experiment_uri
    storage, name = experiment.rsplit("/", 1)
    if resume and not directory.exists("tuner.pkl"):
        # Stopped or preempted before Tune wrote its experiment: nothing ran, start afresh.
        logger.info("no Tune experiment to resume yet: training from the beginning")
        resume = False
    if resume:
        tuner = tune.Tuner.restore(
            experiment,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space(spec),
        )
    else:
        if directory.read_spec() is None:  # `rldojo train`; an API job's was written at submit
            directory.write_spec(spec.model_dump(mode="json"))
            directory.write_config(resolved_config(build_config(spec), spec))
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(spec),
            tune_config=tune.TuneConfig(
                num_samples=spec.num_samples,
                # What the queue counted this job as holding (service/admission.py).
                max_concurrent_trials=spec.resources.concurrent_trials,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                stop=stop_criteria(spec),
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=spec.checkpoint.every,
                    num_to_keep=spec.checkpoint.keep,
                    checkpoint_at_end=True,
                ),
                callbacks=[_ForwardToLive()],
                verbose=0,
            ),
        )
    # Tune snapshots its experiment state, and syncs the result rows to storage with it, every
    # TUNE_GLOBAL_CHECKPOINT_S seconds (by default 10 or more). A short period keeps the API's
    # metrics live and narrows what a crash rolls back: a resumed trial restarts from the last
    # checkpoint that snapshot knew of, and re-writes any newer checkpoint at the same iteration.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    _live[:] = [
        *(callbacks or []),
        _RowsBesideCheckpoints(),
        *([_ResumeFromNewest(directory)] if resume else []),
    ]
    try:
        with _stop_gracefully_on_sigterm():
            grid = tuner.fit()
    finally:
        _live.clear()
    best = directory.best_checkpoint()
    return TrainingSummary(
        experiment_path=experiment,
        trials=[_summarise(grid[index]) for index in range(len(grid))],
        best_checkpoint=directory.checkpoint_uri(best) if best else None,
    )


def run_job(location: str, attempt: int, callbacks: list[tune.Callback] | None = None) -> str:
    """An API job's Ray job: train the spec stored in the job directory at `location`.

    Returns:
        How it ended, as also written to the attempt's progress file: "finished", "stopped"
        (a stop request ended it, or came before it started) or "failed" (a trial failed;
        the progress file's message is the root cause in one line).
    """
    from service.spec import parse_spec

    directory = JobDirectory.open(location)
    progress = JobProgress(directory, attempt)
    if directory.stop_requested(attempt):
        progress.report("stopped", "stopped before training started")
        return "stopped"
    try:
        stored = directory.read_spec()
        if stored is None:
            raise FileNotFoundError(f"no spec.json in {location}")
        spec = parse_spec(stored)
        progress.report("starting", "connecting to the Ray cluster")
        with _watch_for_stop(directory, attempt) as stop_seen:
            summary = train(
                spec, directory, resume=attempt > 1, callbacks=[progress, *(callbacks or [])]
            )
    except Exception as error:
        progress.report("failed", root_cause(f"{type(error).__name__}: {error}"))
        raise
    failed = [trial for trial in summary.trials if trial.error is not None]
    if stop_seen.is_set():
        progress.report("stopped", "stopped on request")
        return "stopped"
    if failed:
        progress.report("failed", failed[0].error or "a trial failed")
        return "failed"
    progress.report("finished", "finished")
    return "finished"


@contextmanager
def _watch_for_stop(directory: JobDirectory, attempt: int) -> Iterator[threading.Event]:
    """While Tune runs, end it gracefully once the job's directory holds a stop request.

    SIGUSR1 is Tune's own "stop, saving the experiment state" signal: the trials end where they
    are and `Tuner.restore` continues them. A request that came before Tune installed its
    handler ends the process outright, which is a stop too. Yields an event set once seen.
    """
    done, seen = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_S):
            if directory.stop_requested(attempt):
                logger.info("stop requested: ending the Tune run")
                seen.set()
                os.kill(os.getpid(), signal.SIGUSR1)
                return

    watcher = threading.Thread(target=watch, name="rldojo-stop-watch", daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()


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
        ray.init(runtime_env=quiet.WORKER_SETUP)
    previous = signal.signal(
        signal.SIGTERM, lambda _sig, _frame: signal.raise_signal(signal.SIGINT)
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summarise(result: Any) -> TrialSummary:
    row = metrics.flatten(result.metrics or {})
    return TrialSummary(
        trial_id=str(row.get("trial_id", result.path.rsplit("/", 1)[-1])),
        path=result.path,
        status="ERROR" if result.error else "TERMINATED",
        iterations=int(row.get(metrics.ITERATION, 0)),
        return_mean=finite_float(row.get(metrics.EPISODE_RETURN_MEAN)),
        error=root_cause(str(result.error)) if result.error else None,
    )


# The callbacks of the `train` running in this process. Tune pickles the callbacks it is given
# into the experiment, and `Tuner.restore` takes those back instead of new ones, so Tune gets
# `_ForwardToLive`, which holds nothing and hands each event to whatever is live here now.
_live: list[tune.Callback] = []


class _ForwardToLive(tune.Callback):
    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for callback in _live:
            callback.on_step_begin(iteration, trials, **info)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        for callback in _live:
            callback.on_trial_result(iteration, trials, trial, result, **info)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        for callback in _live:
            callback.on_checkpoint(iteration, trials, trial, checkpoint, **info)


class _RowsBesideCheckpoints(tune.Callback):
    """Puts a trial's rows on storage as soon as a checkpoint of it is there.

    Tune writes the rows into the driver's staging folder and copies them to storage with its
    periodic snapshot, while a trial uploads its checkpoints itself. A driver that dies between
    the two leaves a checkpoint on storage past the last stored row, and a resume from it would
    leave a gap in the rows; copying the rows when the checkpoint is reported (the row of its
    iteration is already written then) keeps them level.
    """

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        import pyarrow.fs as pafs

        staged, stored = trial.local_path, trial.path
        if not staged or not stored or staged == stored:
            return
        try:
            pafs.copy_files(
                f"{staged}/result.json",
                f"{stored}/result.json",
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=trial.storage.storage_filesystem,
            )
        except OSError as error:  # the periodic snapshot copies them anyway
            logger.warning("rows of trial %s not copied beside its checkpoint: %s", trial, error)


class _ResumeFromNewest(tune.Callback):
    """Before a resumed experiment starts its trials, point each at its newest checkpoint that
    its stored rows reach.

    `Tuner.restore` continues a trial from the last checkpoint Tune's experiment snapshot
    recorded. A checkpoint written just before the driver ended (stopped mid-save, or killed
    between snapshots) is on storage but not in that snapshot, and the trial would go back to
    an older one. The other way round, the rows of the last second or two before a whole
    cluster went down may be lost with the driver that staged them while a checkpoint past them
    was uploaded: resuming there would leave a gap in the rows the user sees, so the newest
    checkpoint at or before the last stored row is the one used.

    The chosen checkpoint is registered with the trial's checkpoint manager (with its
    iteration's result row, which Tune restores its counters from) and the trial's checkpoint
    numbering moves past it. The manager first forgets snapshot checkpoints the ended driver
    already deleted (`num_to_keep`), which Tune would fail deleting again, and any past the rows.
    """

    def __init__(self, directory: JobDirectory) -> None:
        self.directory = directory
        self.checked = False

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.checked:
            return
        self.checked = True
        for trial in trials:
            if trial.status in ("PENDING", "PAUSED", "ERROR"):
                self._point_at_newest(trial)

    def _point_at_newest(self, trial: Any) -> None:
        from ray.train._internal.session import _TrainingResult

        trial_path = f"{self.directory.experiment_path}/{trial.storage.trial_dir_name}"
        rows = self.directory.trial_rows(trial_path)
        reached = max((int(row[metrics.ITERATION]) for row in rows), default=0)
        usable = [
            checkpoint
            for checkpoint in self.directory.trial_checkpoints(trial_path)
            if checkpoint.iteration is not None and checkpoint.iteration <= reached
        ]
        newest = usable[-1] if usable else None
        newest_path = newest.path if newest is not None else None
        manager = trial.run_metadata.checkpoint_manager
        known = manager.latest_checkpoint_result
        # Tune 2.60 keeps these privately; nothing public removes an entry from them.
        keep = {checkpoint.path for checkpoint in usable}
        manager._checkpoint_results = [
            kept for kept in manager._checkpoint_results if kept.checkpoint.path in keep
        ]
        if newest is not None and known is not None and known.checkpoint.path == newest.path:
            return  # the snapshot's own choice
        manager._checkpoint_results = [
            kept for kept in manager._checkpoint_results if kept.checkpoint.path != newest_path
        ]
        manager._latest_checkpoint_result = None
        trial.invalidate_json_state()
        if newest is None:
            logger.info("trial %s starts again: no checkpoint its rows reach", trial.trial_id)
            return
        at = int(newest.iteration or 0)  # (never None: `usable` holds only read iterations)
        row = self.directory.result_at(trial_path, at)
        manager.register_checkpoint(
            _TrainingResult(
                checkpoint=tune.Checkpoint(newest.path, self.directory.fs),
                metrics=row or {metrics.ITERATION: at},
            )
        )
        index = int(newest.path.rsplit("_", 1)[-1])
        trial.storage.current_checkpoint_index = max(trial.storage.current_checkpoint_index, index)
        known_iteration = int((known.metrics or {}).get(metrics.ITERATION, 0)) if known else 0
        logger.info(
            "trial %s resumes from %s (iteration %d; the snapshot's was iteration %d, rows "
            "reach %d)",
            trial.trial_id,
            newest.path.rsplit("/", 1)[-1],
            at,
            known_iteration,
            reached,
        )


class JobProgress(tune.Callback):
    """Writes what an API job's trainer is doing to `attempts/<n>/progress.json`.

    The API shows it while a job has no result rows yet, so no job sits RUNNING without a
    reason: starting, waiting for resources (what a trial needs, what the cluster has free),
    or training. Written only when it changes.
    """

    WAIT_REPORT_S = 5.0  # a trial pending this long is reported as waiting for resources

    def __init__(self, directory: JobDirectory, attempt: int) -> None:
        self.directory = directory
        self.attempt = attempt
        self.last: tuple[str, str] | None = None
        self.pending_since: float | None = None

    def report(self, phase: str, message: str) -> None:
        if (phase, message) == self.last:
            return
        self.last = (phase, message)
        self.directory.write_progress(
            self.attempt, {"phase": phase, "message": message, "time": time.time()}
        )

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        statuses = {trial.status for trial in trials}
        if statuses & {"RUNNING", "TERMINATED", "ERROR"}:
            self.pending_since = None
            self.report("training", "training")
            return
        if "PENDING" not in statuses:
            return
        now = time.monotonic()
        self.pending_since = self.pending_since or now
        if now - self.pending_since >= self.WAIT_REPORT_S:
            self.report("waiting", _waiting_message(trials))


def _waiting_message(trials: list[Any]) -> str:
    """What a pending trial needs against what the cluster has free right now."""
    needed = trials[0].placement_group_factory.required_resources
    free = ray.available_resources()
    need = ", ".join(f"{value:g} {key}" for key, value in sorted(needed.items()))
    have = ", ".join(f"{free.get(key, 0.0):g} {key}" for key in sorted(needed))
    return f"waiting for resources: a trial needs {need}; the cluster has {have} free"


ProgressFn = Callable[[dict[str, Any]], None]


class ProgressCallback(tune.Callback):
    """Hands each trial's flattened result row to a function (the CLI's progress display)."""

    def __init__(self, on_result: ProgressFn) -> None:
        self.on_result: ProgressFn | None = on_result

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if self.on_result is None:  # unpickled from an experiment made before `_ForwardToLive`
            return
        row = metrics.flatten(result)
        row["trial_id"] = trial.trial_id
        self.on_result(row)
