"""The API-driver control protocol: files under `attempts/<n>/` and `logs/`.

The API asks an attempt's driver to stop (`attempts/<n>/stop`, which the driver looks for every
second and at start-up); the driver reports what it is doing (`attempts/<n>/progress.json`);
the API keeps each ended attempt's driver log (`logs/attempt-<n>.log`); the driver keeps the
table of the job's trials (`trials.json`: each trial's state, hyperparameters, iterations and
best return, and PBT's perturbations) over every attempt.
"""

from __future__ import annotations

import json
import time
from typing import Any

from service.jobdir.files import JobFiles


class ControlFiles(JobFiles):
    """Stop requests, progress reports and kept driver logs, per attempt."""

    def request_stop(self, attempt: int) -> None:
        """Ask attempt `attempt`'s trainer to stop (it checks every second, and at start-up)."""
        self.write_text(f"attempts/{attempt}/stop", time.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def stop_requested(self, attempt: int) -> bool:
        return self.exists(f"attempts/{attempt}/stop")

    def write_progress(self, attempt: int, progress: dict[str, Any]) -> None:
        self.write_text(f"attempts/{attempt}/progress.json", json.dumps(progress))

    def read_progress(self, attempt: int) -> dict[str, Any] | None:
        text = self.read_text(f"attempts/{attempt}/progress.json")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return None  # being written right now

    def write_log(self, attempt: int, text: str) -> None:
        self.write_text(f"logs/attempt-{attempt}.log", text)

    def read_log(self, attempt: int) -> str | None:
        return self.read_text(f"logs/attempt-{attempt}.log")

    def write_trials(self, table: dict[str, Any]) -> None:
        self.write_text("trials.json", json.dumps(table))

    def read_trials(self) -> dict[str, Any] | None:
        text = self.read_text("trials.json")
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return None  # being written right now
