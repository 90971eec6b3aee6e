"""The driver's Tune callbacks: live progress, rows beside checkpoints, and the forwarder that
lets a resumed experiment reach the callbacks of the process running it now.

Tune pickles the callbacks it is given into the experiment, and `Tuner.restore` takes those
back instead of new ones (it takes no callbacks), so a callback cannot be passed to a resumed
run. Tune therefore only ever gets `ForwardToLive`, which holds nothing and hands each event
to the callbacks `live(...)` installed around the `fit()` running in this context.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray
from ray import tune

from algorithms.common import metrics
from service import pausing
from service.jobdir import JobDirectory, finite_float

logger = logging.getLogger(__name__)

_LIVE: contextvars.ContextVar[tuple[tune.Callback, ...]] = contextvars.ContextVar(
    "rldojo_live_callbacks", default=()
)


@contextmanager
def live(callbacks: Sequence[tune.Callback]) -> Iterator[None]:
    """Hand Tune's events to `callbacks` while the block runs (the `fit()` of this driver)."""
    token = _LIVE.set(tuple(callbacks))
    try:
        yield
    finally:
        _LIVE.reset(token)


class ForwardToLive(tune.Callback):
    """The callback Tune keeps in the experiment: forwards each event to the live ones."""

    def setup(
        self,
        stop: Any = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        for callback in _LIVE.get():
            callback.setup(
                stop=stop, num_samples=num_samples, total_num_samples=total_num_samples, **info
            )

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_trial_start(iteration, trials, trial, **info)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_trial_complete(iteration, trials, trial, **info)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_trial_error(iteration, trials, trial, **info)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_step_begin(iteration, trials, **info)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        for callback in _LIVE.get():
            callback.on_trial_result(iteration, trials, trial, result, **info)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        for callback in _LIVE.get():
            callback.on_checkpoint(iteration, trials, trial, checkpoint, **info)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_step_end(iteration, trials, **info)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for callback in _LIVE.get():
            callback.on_experiment_end(trials, **info)


class RowsBesideCheckpoints(tune.Callback):
    """Puts a trial's rows on storage as soon as a checkpoint of it is there.

    Tune writes the rows into the driver's staging folder and copies them to storage with its
    periodic snapshot, while a trial uploads its checkpoints itself. A driver that dies between
    the two leaves a checkpoint on storage past the last stored row, and a resume from it would
    leave a gap in the rows; copying the rows when the checkpoint is reported (the row of its
    iteration is already written then) keeps them level. (Tune's own copy is not atomic: a
    file it leaves cut short is read as far as it goes, `row_parser.continuous_rows`.)
    """

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        import pyarrow.fs as pafs

        staged, stored = trial.local_path, trial.path
        if not staged or not stored or staged == stored:
            return
        # Copied beside, then renamed over: a driver killed mid-copy leaves the stored rows whole.
        partial = f"{stored}/result.json.partial"
        try:
            pafs.copy_files(
                f"{staged}/result.json",
                partial,
                source_filesystem=pafs.LocalFileSystem(),
                destination_filesystem=trial.storage.storage_filesystem,
            )
            trial.storage.storage_filesystem.move(partial, f"{stored}/result.json")
        except OSError as error:  # the periodic snapshot copies them anyway
            logger.warning("rows of trial %s not copied beside its checkpoint: %s", trial, error)


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


class TrialTable(tune.Callback):
    """Keeps `trials.json`, the table of the job's trials, for the API, the CLI and the page.

    Each trial: its state ("pending", "running", "paused", "finished", "stopped early" by the
    job's scheduler, "failed"), the searched and mutated hyperparameters it trains with now,
    its iterations and best return; and PBT's perturbations, oldest first. The table of an
    earlier attempt is carried on (its bests and perturbations), so it spans the whole job.
    Written when it changes, at most every `EVERY_S`, and at the end of the run.
    """

    EVERY_S = 2.0

    def __init__(self, directory: JobDirectory, keys: list[str], early_stops: bool) -> None:
        self.directory = directory
        self.keys = keys
        self.early_stops = early_stops  # a scheduler that ends trials early (ASHA, PBT)
        earlier = directory.read_trials() or {}
        self.best: dict[str, float] = {
            row["trial_id"]: row["best_return"]
            for row in earlier.get("trials", [])
            if row.get("best_return") is not None
        }
        self.earlier_perturbations: list[dict[str, Any]] = earlier.get("perturbations", [])
        self.written: Any = None
        self.written_at = 0.0

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        value = finite_float(metrics.flatten(result).get(metrics.EPISODE_RETURN_MEAN))
        if value is not None and value > self.best.get(trial.trial_id, -math.inf):
            self.best[trial.trial_id] = value

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if time.monotonic() - self.written_at >= self.EVERY_S:
            self._write(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._write(trials)

    def _write(self, trials: list[Any]) -> None:
        table = {
            "trials": [self._row(trial) for trial in trials],
            "perturbations": self.earlier_perturbations + pausing.perturbations(),
        }
        self.written_at = time.monotonic()
        if table != self.written:
            self.directory.write_trials(table)
            self.written = table

    def _row(self, trial: Any) -> dict[str, Any]:
        result = metrics.flatten(trial.last_result or {})
        return {
            "trial_id": trial.trial_id,
            "state": self._state(trial),
            "hyperparameters": {key: trial.config.get(key) for key in self.keys},
            "iterations": int(result.get(metrics.ITERATION, 0) or 0),
            "return_mean": finite_float(result.get(metrics.EPISODE_RETURN_MEAN)),
            "best_return": self.best.get(trial.trial_id),
        }

    def _state(self, trial: Any) -> str:
        done = pausing.done(trial)
        if trial.status == "TERMINATED":
            return "stopped early" if self.early_stops and not done else "finished"
        if trial.status == "PAUSED":
            return "finished" if done else "paused"
        return {"ERROR": "failed"}.get(trial.status, str(trial.status).lower())


ProgressFn = Callable[[dict[str, Any]], None]


class ProgressCallback(tune.Callback):
    """Hands each trial's flattened result row to a function (the CLI's progress display)."""

    def __init__(self, on_result: ProgressFn) -> None:
        self.on_result = on_result

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        row = metrics.flatten(result)
        row["trial_id"] = trial.trial_id
        self.on_result(row)
