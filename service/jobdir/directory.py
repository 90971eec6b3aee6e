"""`JobDirectory`: one job's directory, every part of it (see the package's docstring)."""

from __future__ import annotations

from typing import Any

from algorithms.common import metrics
from service.jobdir.archives import ArchiveFiles
from service.jobdir.checkpoints import CheckpointFiles
from service.jobdir.control import ControlFiles
from service.jobdir.evaluations import EvaluationFiles
from service.jobdir.row_parser import finite_float
from service.jobdir.specs import SpecFiles


class JobDirectory(SpecFiles, ControlFiles, CheckpointFiles, ArchiveFiles, EvaluationFiles):
    """Read and write one job's files.

    Example:
        >>> job = JobDirectory.open("/tmp/rldojo-doc/jobs/abc123")
        >>> job.name
        'abc123'
    """

    def summary(self) -> dict[str, Any]:
        """Latest row of the newest trial, the best trial (the highest mean return any of its
        iterations reported, and at which iteration) and the number of checkpoints."""
        latest: dict[str, dict[str, Any]] = {}
        best: dict[str, Any] | None = None
        for row in self.rows():  # parsed once: checkpoints() below reads the same cache
            latest[str(row.get("trial_id"))] = row
            value = finite_float(row.get(metrics.EPISODE_RETURN_MEAN))
            if value is not None and (best is None or value > best["return_mean"]):
                best = {
                    "trial_id": str(row.get("trial_id")),
                    "return_mean": value,
                    "iteration": row.get(metrics.ITERATION),
                }
        newest = max(latest.values(), key=lambda r: r.get("timestamp") or 0, default=None)
        return {
            "latest_metrics": _headline(newest) if newest else None,
            "best_trial": best,
            "checkpoints": len(self.checkpoints()),
        }


def _headline(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "trial_id",
        metrics.ITERATION,
        metrics.ENV_STEPS,
        metrics.EPISODE_RETURN_MEAN,
        metrics.EPISODE_LEN_MEAN,
        metrics.ENV_STEPS_PER_SECOND,
        metrics.TIME_TOTAL_S,
    )
    return {key: row.get(key) for key in keys}
