"""A job's trials in MLflow (driver side): one MLflow run per trial, through Tune's own callback.

A spec with `"tracking": {"mlflow": true}` is compiled with the service's tracking store
(`RLDOJO_MLFLOW_TRACKING_URI`, or `rldojo train --mlflow-uri`), and its driver logs each trial
to that store with `JobRuns`, Tune's `MLflowLoggerCallback` made to fit a job:

- a run is tagged with the job (`rldojo.job_id`), its algorithm, env and preset, and the trial
  (`rldojo.trial_id`); its params are the trial's resolved config: the algorithm's
  hyperparameters as that trial starts with them (searched values included), the env and its
  settings, the seed and the resources;
- its metrics are the result rows' numbers, all of one iteration in one request, stepped by
  env steps;
- a resumed job continues its trials' runs (found by their tags) instead of starting new ones;
  a run ends FINISHED when its trial reached the stop criteria (or was stopped early by the
  scheduler), FAILED, or KILLED when a stop request cut it short, until a resume reopens it.

Tune's callback logs a result key by key and the whole RLlib config as params, a few hundred
requests per iteration, and knows a run only by the `Trial` object of this process; hence the
overrides. Where the store cannot be written mid-run the trial trains on and the driver log
says so once: tracking never fails a job.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from ray.air.integrations.mlflow import MLflowLoggerCallback

import algorithms
from algorithms.common import metrics
from service import pausing
from service.compiler import CompiledJob

logger = logging.getLogger(__name__)

JOB_TAG, TRIAL_TAG = "rldojo.job_id", "rldojo.trial_id"
DEFAULT_EXPERIMENT = "rldojo"
# What a run's params hold besides the algorithm's hyperparameters (RLlib config keys).
RUN_SETTINGS = ("env", "env_config", "seed", "num_env_runners", "num_learners",
                "num_gpus_per_learner")  # fmt: skip
BOOKKEEPING = {"pid", "timestamp", "done"}  # numbers of a result row that measure nothing
PARAMS_PER_REQUEST, METRICS_PER_REQUEST = 100, 1000  # MLflow's limits on one log_batch


class JobRuns(MLflowLoggerCallback):
    """Logs a job's trials to MLflow: one run per trial, continued when the job resumes."""

    def __init__(self, compiled: CompiledJob, job_id: str) -> None:
        tracking = compiled.spec.tracking
        assert compiled.mlflow_uri is not None, "a job logs to MLflow only with a tracking URI"
        super().__init__(
            compiled.mlflow_uri,
            experiment_name=tracking.experiment or DEFAULT_EXPERIMENT,
            tags={
                JOB_TAG: job_id,
                "rldojo.algorithm": compiled.spec.algorithm,
                "rldojo.env": compiled.spec.env_id,
                "rldojo.preset": compiled.preset or "",
            },
        )
        self.hyperparameters = list(algorithms.hyperparameters(compiled.spec.algorithm))
        self._run_of: dict[str, str] = {}  # trial id -> MLflow run id
        self._warned: set[str] = set()

    def setup(self, *args: Any, **kwargs: Any) -> None:
        from mlflow import MlflowClient  # only a tracked job's driver imports MLflow

        super().setup(*args, **kwargs)
        self.client = MlflowClient(self.tracking_uri)

    # ---- Tune's LoggerCallback hooks ------------------------------------------------------

    def log_trial_start(self, trial: Any) -> None:
        if trial.trial_id in self._run_of:  # unpaused, or restarted after a failure
            return
        earlier = self._earlier_run(trial.trial_id)
        if earlier is not None:
            self._run_of[trial.trial_id] = earlier.info.run_id
            if earlier.info.status != "RUNNING":
                self.client.update_run(earlier.info.run_id, status="RUNNING")
            return
        tags = {**(self.tags or {}), TRIAL_TAG: trial.trial_id, "trial_name": str(trial)}
        run = self.client.create_run(self.mlflow_util.experiment_id, run_name=str(trial), tags=tags)
        self._run_of[trial.trial_id] = run.info.run_id
        self._log_params(run.info.run_id, run_params(trial.config, self.hyperparameters))

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        run_id = self._run_of.get(trial.trial_id)
        if run_id is None:
            return
        row = metrics.flatten(result)
        step = int(row.get(metrics.ENV_STEPS) or row.get(metrics.ITERATION) or iteration)
        numbers = result_metrics(row)
        try:
            self._log_metrics(run_id, numbers, step)
        except Exception as error:  # the store is down or full: training goes on
            self._warn_once(trial.trial_id, error)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        run_id = self._run_of.pop(trial.trial_id, None)
        if run_id is not None:
            self._end(run_id, "FAILED" if failed else "FINISHED")

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        # Trials still open here are paused: at the stop criteria (done, though an extend may
        # continue them) or by a stop request (cut short). A resume reopens their runs.
        for trial in trials:
            run_id = self._run_of.pop(trial.trial_id, None)
            if run_id is not None:
                self._end(run_id, "FINISHED" if pausing.done(trial) else "KILLED")

    # ---- MLflow -----------------------------------------------------------------------------

    def _earlier_run(self, trial_id: str) -> Any:
        """The run this trial logged to in an earlier attempt of the job, if any."""
        # Filtered by the trial id (Tune's, of safe characters), matched on the job id here:
        # a job id (`rldojo train --name`) may hold what a filter string would have to escape.
        job_id = (self.tags or {})[JOB_TAG]
        found = self.client.search_runs(
            [self.mlflow_util.experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = '{trial_id}'"
        )
        return next((run for run in found if run.data.tags.get(JOB_TAG) == job_id), None)

    def _log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for batch in _batches(items, PARAMS_PER_REQUEST):
            self.client.log_batch(run_id, params=batch)

    def _log_metrics(self, run_id: str, numbers: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(key, value, now, step) for key, value in numbers.items()]
        for batch in _batches(items, METRICS_PER_REQUEST):
            self.client.log_batch(run_id, metrics=batch)

    def _end(self, run_id: str, status: str) -> None:
        try:
            self.client.set_terminated(run_id, status=status)
        except Exception as error:
            self._warn_once(run_id, error)

    def _warn_once(self, key: str, error: Exception) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("MLflow logging failed (training goes on): %s", error)


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    """`items` in MLflow's largest requests (log_batch refuses more)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def run_params(config: dict[str, Any], hyperparameters: list[str]) -> dict[str, str]:
    """A trial's params: its hyperparameters and settings from its config, flattened to text
    (an env setting is `env_config/size`, as in result keys), each within MLflow's 6,000
    characters."""
    chosen = {key: config[key] for key in [*hyperparameters, *RUN_SETTINGS] if key in config}
    flat = metrics.flatten(chosen)
    return {key: str(value)[:6000] for key, value in flat.items() if value is not None}


def result_metrics(row: dict[str, Any]) -> dict[str, float]:
    """A flattened result row's numbers that are metrics (not its config or bookkeeping)."""
    return {
        key: float(value)
        for key, value in row.items()
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and not key.startswith("config/")
        and key not in BOOKKEEPING
    }
