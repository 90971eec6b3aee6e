"""Train a compiled job as a Ray Tune experiment: the runtime behind every API job's Ray job
and `rldojo train`.

The compiled job (`service.compiler.CompiledJob`) is run as it was compiled: its config becomes
the algorithm's `AlgorithmConfig` (`algorithm_config`, the one step from plain data back to
RLlib), its `spec.search` Tune's search domains, its `stop` Tune's stop criteria and its spec's
`checkpoint` Tune's checkpoint policy. The experiment lives in a `JobDirectory`, which *is* the
Tune experiment directory: an API job's is `<storage>/jobs/<job id>`; `rldojo train --out DIR
--name NAME` trains into `DIR/NAME`.

An API job's driver runs `run_job(<job directory>, attempt)`: it reads the compiled job from
the directory, watches for a stop request there, writes what it is doing (`progress.json`), and
on attempt 2 and later continues the experiment from its last checkpoints (`Tuner.restore`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ray
from pydantic import ValidationError
from ray import tune
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig

import algorithms
from algorithms.common import metrics
from algorithms.common.warm_start import WarmStart
from service import pausing, quiet
from service.compiler import CompiledJob
from service.driver import search
from service.driver.callbacks import (
    ForwardToLive,
    JobProgress,
    RowsBesideCheckpoints,
    TrialTable,
    live,
)
from service.driver.tracking import JobRuns
from service.driver.tune_private import ResumeFromNewest
from service.jobdir import JobDirectory, finite_float
from service.spec import ChoiceSearch, GridSearch, LogUniformSearch, SearchDomain
from service.status import root_cause

logger = logging.getLogger(__name__)

STOP_POLL_S = 1.0  # how often a running job looks for a stop request in its directory
# How long a stop request waits for every trial to pause at its next result (with a checkpoint
# there) before ending the run anyway; within the service's stop grace (20 s by default).
STOP_PATIENCE_S = 15.0


def algorithm_config(compiled: CompiledJob) -> AlgorithmConfig:
    """The compiled job's config as its algorithm's `AlgorithmConfig`.

    The stored settings are set on a fresh config of the algorithm's class, which supplies the
    classes and callables the JSON form leaves out. JSON has no tuples: RLlib's policy specs
    (`policies`) are tuples again here. A warm-started job's algorithm loads its checkpoint
    once built (`algorithms.common.warm_start`).
    """
    settings = dict(compiled.config)
    if isinstance(settings.get("policies"), dict):
        settings["policies"] = {
            name: tuple(spec) if isinstance(spec, list) else spec
            for name, spec in settings["policies"].items()
        }
    config_class = algorithms.get(compiled.spec.algorithm).config_class()
    config = config_class.update_from_dict(settings)
    source, asked = compiled.warm_start, compiled.spec.from_checkpoint
    if source is not None and asked is not None:
        config.callbacks(
            on_algorithm_init=WarmStart(
                source.uri, keep_optimizer=asked.keep_optimizer, keep_replay=asked.keep_replay
            )
        )
    return config


def param_space(compiled: CompiledJob) -> dict[str, Any]:
    """Tune's param space: the algorithm's config as a dict, with the spec's search domains
    (and a grid over the samples' seeds, when the job was compiled with them)."""
    space = algorithm_config(compiled).to_dict()
    for key, domain in compiled.spec.search.items():
        space[key] = tune_domain(domain)
    if compiled.sample_seeds is not None:  # in place of num_samples (`_new_tuner`)
        space["seed"] = tune.grid_search(compiled.sample_seeds)
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
    compiled: CompiledJob,
    directory: JobDirectory,
    *,
    resume: bool = False,
    callbacks: list[tune.Callback] | None = None,
) -> TrainingSummary:
    """Run (or resume) the compiled job's Tune experiment in `directory` on the current Ray.

    Args:
        compiled: The compiled job (`service.compiler.compile_job`).
        directory: The job directory (local path or `s3://`); it is the experiment directory.
        resume: Continue the experiment there from its last checkpoints.
        callbacks: Tune callbacks (the CLI's progress display, the job's progress file).

    Returns:
        The experiment's location, each trial's outcome and the best checkpoint.
    """
    if resume and not directory.exists("tuner.pkl"):
        # Stopped or preempted before Tune wrote its experiment: nothing ran, start afresh.
        logger.info("no Tune experiment to resume yet: training from the beginning")
        resume = False
    # The stop criteria are the pausing scheduler's (Tune's own stop would end the trials for
    # good): a trial pauses with a checkpoint there, and a resume with larger ones extends it.
    pausing.set_limits(compiled.stop, clear_stop=False)
    tuner = _restored_tuner(compiled, directory) if resume else _new_tuner(compiled, directory)
    # Tune snapshots its experiment state, and syncs the result rows to storage with it, every
    # TUNE_GLOBAL_CHECKPOINT_S seconds (by default 10 or more). A short period keeps the API's
    # metrics live and narrows what a crash rolls back: a resumed trial restarts from the last
    # checkpoint that snapshot knew of, and re-writes any newer checkpoint at the same iteration.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    running = [
        *(callbacks or []),
        RowsBesideCheckpoints(),
        TrialTable(
            directory, _table_keys(compiled), early_stops=compiled.spec.scheduler is not None
        ),
        *([ResumeFromNewest(directory)] if resume else []),
        *([JobRuns(compiled, job_id=directory.name)] if compiled.mlflow_uri else []),
    ]
    with live(running), _stop_gracefully_on_sigterm():
        grid = tuner.fit()
    best = directory.best_checkpoint()
    return TrainingSummary(
        experiment_path=directory.experiment_uri,
        trials=[_summarise(grid[index]) for index in range(len(grid))],
        best_checkpoint=directory.checkpoint_uri(best) if best else None,
    )


def _table_keys(compiled: CompiledJob) -> list[str]:
    """The hyperparameters a trial table shows: those searched, then those PBT mutates (and
    the seed, when each sample has its own)."""
    spec = compiled.spec
    mutated = list(getattr(spec.scheduler, "hyperparam_mutations", {}))
    seeds = ["seed"] if compiled.sample_seeds is not None else []
    return list(dict.fromkeys([*spec.search, *mutated, *seeds]))


def _trainable(compiled: CompiledJob) -> Any:
    trainable = algorithms.get(compiled.spec.algorithm).config_class().algo_class
    assert trainable is not None, f"{compiled.spec.algorithm}'s config names no Algorithm class"
    return trainable


def _restored_tuner(compiled: CompiledJob, directory: JobDirectory) -> tune.Tuner:
    return tune.Tuner.restore(
        directory.experiment_uri,
        trainable=_trainable(compiled),
        resume_unfinished=True,
        resume_errored=True,
        param_space=param_space(compiled),
    )


def _new_tuner(compiled: CompiledJob, directory: JobDirectory) -> tune.Tuner:
    spec = compiled.spec
    storage, name = directory.experiment_uri.rsplit("/", 1)
    return tune.Tuner(
        _trainable(compiled),
        param_space=param_space(compiled),
        tune_config=tune.TuneConfig(
            # Each sample's own seed is a grid point instead (compiler.sample_seeds).
            num_samples=1 if compiled.sample_seeds is not None else spec.num_samples,
            # What the queue counted this job as holding (service/admission.py).
            max_concurrent_trials=spec.resources.concurrent_trials,
            # Trials pause with a checkpoint at the stop criteria and on a stop request, under
            # the spec's scheduler (ASHA, PBT) when it names one.
            scheduler=pausing.PauseAtStop(
                search.tune_scheduler(spec), ends_at_limits=spec.trials_end_at_stop
            ),
            search_alg=search.tune_searcher(spec),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=spec.checkpoint.every,
                num_to_keep=spec.checkpoint.keep,
                checkpoint_at_end=True,
            ),
            callbacks=[
                ForwardToLive(),
                pausing.EndWhenAllPaused(patience_s=STOP_PATIENCE_S, expected_trials=spec.trials),
            ],
            verbose=0,
        ),
    )


def run_job(location: str, attempt: int, callbacks: list[tune.Callback] | None = None) -> str:
    """An API job's Ray job: train the compiled job stored in the job directory at `location`.

    Returns:
        How it ended, as also written to the attempt's progress file: "finished", "stopped"
        (a stop request ended it, or came before it started) or "failed" (a trial failed;
        the progress file's message is the root cause in one line).
    """
    directory = JobDirectory.open(location)
    progress = JobProgress(directory, attempt)
    if directory.stop_requested(attempt):
        progress.report("stopped", "stopped before training started")
        return "stopped"
    try:
        stored = directory.read_compiled()
        if stored is None:
            raise FileNotFoundError(f"no compiled job in {location}")
        compiled = _readable(stored, location)
        progress.report("starting", "connecting to the Ray cluster")
        with _watch_for_stop(directory, attempt) as stop_seen:
            summary = train(
                compiled, directory, resume=attempt > 1, callbacks=[progress, *(callbacks or [])]
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


def _readable(stored: dict[str, Any], location: str) -> CompiledJob:
    """The stored compiled job, or a one-line error naming its first unusable field."""
    try:
        return CompiledJob.model_validate(stored)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(
            f"compiled.json in {location} is unusable: {where}: {first['msg']}"
        ) from None


@contextmanager
def _watch_for_stop(directory: JobDirectory, attempt: int) -> Iterator[threading.Event]:
    """While Tune runs, end it gracefully once the job's directory holds a stop request.

    Every running trial pauses at its next result, saving a checkpoint there, and no other
    starts (`pausing.request_stop`); the run then ends (`pausing.EndWhenAllPaused`) and a
    resume continues each trial from where it paused. Yields an event set once seen.
    """
    done, seen = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(STOP_POLL_S):
            if directory.stop_requested(attempt):
                logger.info("stop requested: pausing every trial with a checkpoint")
                seen.set()
                pausing.request_stop()
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
