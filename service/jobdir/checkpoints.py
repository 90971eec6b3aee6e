"""Checkpoint discovery: a job's RLlib checkpoints on storage, each with the iteration it was
written at (read from its `algorithm_state.pkl` by an unpickler that rebuilds only numbers and
plain containers, so no code in a checkpoint runs here) and that iteration's metrics.

Checkpoint ids are `<trial_id>-<NNNNNN>` and are only ever *looked up* among the checkpoints
listed here, never joined into a path, so no id can reach outside its directory.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import posixpath
import re
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from algorithms.common import metrics
from service.jobdir.row_parser import _int, finite_float
from service.jobdir.rows import RowFiles, _trial_id

_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d{6})$")
# Only these may be rebuilt when reading a checkpoint's algorithm_state.pkl (numbers, dicts).
_SAFE_PICKLE_MODULES = ("builtins", "collections", "copyreg", "numpy", "_codecs")


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a job: its id, trial, iteration, env steps and metric when written."""

    id: str
    trial_id: str
    iteration: int | None
    env_steps: int | None
    return_mean: float | None
    path: str  # path inside the storage filesystem (never shown to users)


class CheckpointFiles(RowFiles):
    """The checkpoints of the job's trials, the best of them, and their URIs for a Ray job."""

    def checkpoints(self) -> list[Checkpoint]:
        """The job's checkpoints on storage, oldest first within each trial."""
        found = [c for trial in self.trial_paths() for c in self.trial_checkpoints(trial)]
        return sorted(found, key=lambda c: (c.trial_id, c.iteration or -1, c.path))

    def trial_checkpoints(self, trial_path: str) -> list[Checkpoint]:
        """One trial's checkpoints whose algorithm state can be read (so, written whole)."""
        rows = self.trial_rows(trial_path)
        trial_id = str(rows[-1].get("trial_id")) if rows else _trial_id(trial_path)
        by_iteration = {_int(row.get(metrics.ITERATION)): row for row in rows}
        found = []
        for info in self._list(trial_path):
            match = _CHECKPOINT_DIR.match(posixpath.basename(info.path))
            if info.type != pafs.FileType.Directory or match is None:
                continue
            iteration = self._checkpoint_iteration(info.path)
            row = by_iteration.get(iteration, {}) if iteration is not None else {}
            found.append(
                Checkpoint(
                    id=f"{trial_id}-{match.group(1)}",
                    trial_id=trial_id,
                    iteration=iteration,
                    env_steps=_int(row.get(metrics.ENV_STEPS)),
                    return_mean=finite_float(row.get(metrics.EPISODE_RETURN_MEAN)),
                    path=info.path,
                )
            )
        return sorted(found, key=lambda c: (c.iteration or -1, c.path))

    def result_at(self, trial_path: str, iteration: int) -> dict[str, Any] | None:
        """Tune's own (nested) result row of an iteration, from the newest file that has it."""
        for _attempt, path in reversed(self._rows_files(trial_path)):
            for line in reversed((self._read(path) or "").splitlines()):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get(metrics.ITERATION) == iteration:
                    return row
        return None

    def _checkpoint_iteration(self, path: str) -> int | None:
        """The iteration a checkpoint was written at (from RLlib's algorithm_state.pkl)."""
        if path in self.cache.iterations:
            return self.cache.iterations[path]
        try:
            with self.fs.open_input_stream(f"{path}/algorithm_state.pkl") as stream:
                state = NumbersOnly(io.BytesIO(bytes(stream.read()))).load()
            iteration = _int(state.get("training_iteration"))
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None  # being written right now, or not an algorithm checkpoint
        if iteration is not None:
            self.cache.iterations[path] = iteration  # checkpoints never change once written
        return iteration

    def best_checkpoint(self) -> Checkpoint | None:
        """The checkpoint with the highest mean return when written; the latest on ties."""
        kept = self.checkpoints()
        if not kept:
            return None
        ranked = sorted(
            enumerate(kept),
            key=lambda item: (_finite(item[1].return_mean), item[1].iteration or -1, item[0]),
        )
        return ranked[-1][1]

    def find_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """The checkpoint with this id, `best`, or None."""
        if checkpoint_id == "best":
            return self.best_checkpoint()
        return next((c for c in self.checkpoints() if c.id == checkpoint_id), None)

    def checkpoint_holds(self, checkpoint: Checkpoint, part: str) -> bool:
        """Whether the checkpoint has this part (a file or folder inside it, e.g. `replay`)."""
        return self._exists(f"{checkpoint.path}/{part}")

    def checkpoint_uri(self, checkpoint: Checkpoint) -> str:
        """A checkpoint as a path or URI that a Ray job (or `rldojo evaluate`) opens."""
        return self._uri_of(checkpoint.path)


class NumbersOnly(pickle.Unpickler):
    """Unpickles plain data and numpy scalars; refuses any other class (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _SAFE_PICKLE_MODULES and name not in ("eval", "exec"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _finite(value: float | None) -> float:
    return value if value is not None else -math.inf
