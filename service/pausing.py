"""A job's trials end by pausing with a checkpoint: at their stop criteria, and on a stop request.

Tune's own stop (`RunConfig.stop`) terminates a trial, and `Tuner.restore` never runs a
terminated trial again, so a finished job could not be extended; its SIGUSR1 stop ends the run
without a checkpoint, so a stopped job went back to its last periodic checkpoint. Here a trial
is *paused* instead (Tune's scheduler decision PAUSE saves a checkpoint of the trial where it is,
then stops its actor), in both cases:

- when its result reaches the job's stop criteria (`Limits`), it pauses and is not run again
  while the criteria stay the same; a resume with larger criteria (extend) continues it;
- when the job is asked to stop (`request_stop`), every running trial pauses at its next
  result and no pending or paused trial starts.

Once no trial runs and none may start, `EndWhenAllPaused` ends the Tune run (SIGUSR1: Tune
writes its experiment state and `fit()` returns); `Tuner.restore(resume_unfinished=True)` then
continues every paused trial from its pause checkpoint: no iteration is lost or repeated.

Tune pickles the scheduler and callbacks into the experiment, so they hold nothing: the
criteria and the stop flag live in this process (`_now`), set by the driver at start-up from
the job's stored spec, and so a resumed run always uses the spec's current criteria.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ray import tune
from ray.tune.schedulers import FIFOScheduler, PopulationBasedTraining, TrialScheduler

from service.driver.tune_private import release_search_slot

logger = logging.getLogger(__name__)


@dataclass
class Limits:
    """A job's stop criteria: a trial is done once its result reaches any of them."""

    criteria: dict[str, float] = field(default_factory=dict)

    def reached(self, result: dict[str, Any] | None) -> bool:
        if not result:
            return False
        for key, limit in self.criteria.items():
            value = _lookup(result, key)
            if value is not None and value >= limit:
                return True
        return False


@dataclass
class _Now:
    limits: Limits = field(default_factory=Limits)
    stopping: threading.Event = field(default_factory=threading.Event)
    perturbations: list[dict[str, Any]] = field(default_factory=list)  # this process's PBT steps


_now = _Now()


def set_limits(criteria: dict[str, float], *, clear_stop: bool = True) -> None:
    """The job's stop criteria for this process's run (from the stored spec); a stop asked
    for already stays asked for unless `clear_stop` (a new run in the same process)."""
    _now.limits = Limits(dict(criteria))
    _now.perturbations.clear()  # a run's own; the trial table keeps those of earlier attempts
    if clear_stop:
        _now.stopping.clear()


def request_stop() -> None:
    """Pause every trial at its next result and start none; the run then ends."""
    _now.stopping.set()


def stop_requested() -> bool:
    return _now.stopping.is_set()


def perturbations() -> list[dict[str, Any]]:
    """The PBT exploits of this process's run, oldest first: which trial copied which trial's
    checkpoint, at which of its iterations, and the hyperparameters it went on with."""
    return list(_now.perturbations)


def _note_perturbation(trials: list[Any], trial: Any, before: dict[str, Any]) -> None:
    changed = {key: value for key, value in trial.config.items() if before.get(key) != value}
    if not changed:
        return
    # The checkpoint the trial goes on from lies in the trial it copied.
    checkpoint = getattr(trial.checkpoint, "path", "") or ""
    source = next(
        (
            other.trial_id
            for other in trials
            if other is not trial and other.path and checkpoint.startswith(other.path)
        ),
        None,
    )
    _now.perturbations.append(
        {
            "time": time.time(),
            "trial_id": trial.trial_id,
            "iteration": (trial.last_result or {}).get("training_iteration"),
            "copied": source,
            "from_values": {key: before.get(key) for key in changed},
            "values": changed,
        }
    )


def _lookup(result: dict[str, Any], key: str) -> float | None:
    """`result[key]`, with `a/b` keys looked up in nested dicts too."""
    value: Any = result.get(key)
    if value is None and "/" in key:
        value = result
        for part in key.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def done(trial: Any) -> bool:
    """Whether a trial's last result reached the job's stop criteria."""
    return _now.limits.reached(getattr(trial, "last_result", None))


class PauseAtStop(TrialScheduler):
    """Wraps the job's scheduler (FIFO unless the spec chose one): PAUSE at the criteria and
    on a stop request, and never start a trial that is done or while stopping."""

    # Class defaults too: a job stopped under an older rldojo resumes with the scheduler Tune
    # pickled then, which has no such attribute of its own.
    ends_at_limits = False

    def __init__(self, inner: TrialScheduler | None = None, ends_at_limits: bool = False) -> None:
        self.inner = inner or FIFOScheduler()
        # PBT and model-based searchers need a trial at the stop to end
        # (`JobSpec.trials_end_at_stop`).
        self.ends_at_limits = ends_at_limits

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return bool(self.inner.set_search_properties(metric, mode, **spec))

    @property
    def metric(self) -> str | None:
        return self.inner.metric

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        # PBT's exploits change trials' configs (this one's, or any paused one's in its
        # synchronous mode): compared before and after to record them.
        pbt = isinstance(self.inner, PopulationBasedTraining)
        trials = tune_controller.get_trials() if pbt else []
        configs_before = [dict(other.config) for other in trials]
        decision = self.inner.on_trial_result(tune_controller, trial, result)
        for other, before in zip(trials, configs_before, strict=True):
            _note_perturbation(trials, other, before)
        if trial.status == "PAUSED":
            return str(decision)  # the inner scheduler paused it itself (PBT)
        if stop_requested():
            return TrialScheduler.PAUSE
        if _now.limits.reached(result):
            # The job's stop comes first: a trial at its criteria is done (and extensible),
            # not stopped early, even when ASHA's last rung is the same iteration. Under PBT
            # it ends (PBT counts a paused trial in its population, and the others would keep
            # copying its last checkpoint over and over), and under a model-based searcher
            # (which hears of a trial's result, and starts the next, only once it ends).
            if self.ends_at_limits:
                return TrialScheduler.STOP
            release_search_slot(tune_controller, trial, result)  # the next trial may start
            return TrialScheduler.PAUSE
        # CONTINUE, PAUSE (PBT making room), or STOP: ASHA's early stop ends the trial for good.
        return str(decision)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.inner.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.inner.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        if stop_requested():
            return None
        chosen = self.inner.choose_trial_to_run(tune_controller)
        if chosen is None or not done(chosen):
            return chosen
        # The inner choice is done: the first pending trial, then a paused one that is not.
        for status in ("PENDING", "PAUSED"):
            for trial in tune_controller.get_trials():
                if trial.status == status and not done(trial):
                    return trial
        return None

    def debug_string(self) -> str:
        return f"pausing at the job's stop, over: {self.inner.debug_string()}"

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


class EndWhenAllPaused(tune.Callback):
    """Ends the Tune run once no trial runs and none may start (all paused, done or failed).

    A stop request whose trials do not pause within `patience_s` (an iteration longer than
    that) ends the run anyway: their last periodic checkpoint is what a resume continues.
    """

    expected_trials: int | None = None  # the class default serves experiments from before it

    def __init__(self, patience_s: float = 15.0, expected_trials: int | None = None) -> None:
        self.patience_s = patience_s
        # A searcher (and Tune's own variant generator) creates trials as earlier ones end:
        # the run is settled only once all of them exist.
        self.expected_trials = expected_trials
        self.asked_at: float | None = None
        self.sent = False

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.sent or not trials:
            return
        if stop_requested():
            self.asked_at = self.asked_at or time.monotonic()
            idle = all(t.status in ("PAUSED", "PENDING", "TERMINATED", "ERROR") for t in trials)
            late = time.monotonic() - self.asked_at > self.patience_s
            if idle or late:
                self._end("every trial paused with a checkpoint" if idle else "forced")
            return
        expected = self.expected_trials
        settled = (expected is None or len(trials) >= expected) and all(
            t.status in ("TERMINATED", "ERROR") or (t.status == "PAUSED" and done(t))
            for t in trials
        )
        if settled:
            self._end("every trial reached the stop")

    def _end(self, why: str) -> None:
        self.sent = True
        logger.info("ending the Tune run: %s", why)
        os.kill(os.getpid(), signal.SIGUSR1)
