"""The one place the driver reaches into Ray Tune's private state; checked against the Ray
version it was written and tested for.

Tune 2.60 offers no public way to make a resumed trial continue from a checkpoint its
experiment snapshot did not record, nor to drop one it did (`_ResumeFromNewest`'s reasons are
in its docstring), nor to tell the search algorithm that a paused trial is done
(`release_search_slot`). The code here rewrites `_CheckpointManager._checkpoint_results` and
`_latest_checkpoint_result`, and builds `ray.train._internal.session._TrainingResult`: any
other Ray may have renamed or changed them, so using it there fails loudly at once rather
than resuming from the wrong place.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray import tune

from algorithms.common import metrics
from service.jobdir import JobDirectory

logger = logging.getLogger(__name__)

TESTED_RAY = "2.60.0"  # the Ray whose Tune internals this module was written and tested against


class UntestedRayError(RuntimeError):
    """The installed Ray is not the one this module's use of Tune internals was tested with."""


def check_ray_version(found: str | None = None) -> None:
    """Raise `UntestedRayError` unless the installed Ray is `TESTED_RAY`.

    Example:
        >>> check_ray_version("2.60.0")
        >>> try:
        ...     check_ray_version("2.61.0")
        ... except UntestedRayError as error:
        ...     str(error).endswith("tested with Ray 2.60.0; found Ray 2.61.0")
        True
    """
    found = found or ray.__version__
    if found != TESTED_RAY:
        raise UntestedRayError(
            f"service/driver/tune_private.py uses Ray Tune internals tested with Ray "
            f"{TESTED_RAY}; found Ray {found}"
        )


def release_search_slot(tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
    """Tell the run's search algorithm that `trial`, paused at the job's stop, is complete.

    Tune tells it only of trials that terminate, and its count of live trials is what holds a
    job to `max_concurrent_trials` (the job's `concurrent_trials`): without this, the next
    trial of a job that runs them one at a time would never start. Calling it twice for one
    trial is harmless (the generator forgets a trial it no longer holds).
    """
    check_ray_version()
    # Schedulers get the controller behind a wrapper that warns on private attributes.
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    search_alg = getattr(controller, "_search_alg", None)
    if search_alg is not None:
        search_alg.on_trial_complete(trial.trial_id, result=result)


class ResumeFromNewest(tune.Callback):
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

    Raises:
        UntestedRayError: when made under a Ray other than `TESTED_RAY`.
    """

    def __init__(self, directory: JobDirectory) -> None:
        check_ray_version()
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
