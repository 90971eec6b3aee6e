"""Job files on the storage root: a local path or an `s3://` URI, both through `pyarrow.fs`.

Layout under the root:

    jobs/<job_id>/spec.json                       the validated spec the job was submitted with
    jobs/<job_id>/run/<trial>/result.json         Tune's per-iteration rows (one JSON per line)
    jobs/<job_id>/run/<trial>/result.attempt-NNN.json  earlier attempts' rows (kept on resume)
    jobs/<job_id>/run/<trial>/checkpoint_NNNNNN/  RLlib algorithm checkpoints
    jobs/<job_id>/logs/attempt-<n>.log            each finished Ray job's driver log
    evaluations/<eval_id>/result.json, video.mp4  what an evaluation job wrote

Checkpoint ids are `<trial_id>-<NNNNNN>` and are only ever *looked up* among the checkpoints
listed here, never joined into a path, so no id can reach outside its job's directory.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import posixpath
import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from algorithms.common import metrics

EXPERIMENT = "run"
RESULT = "result.json"
_SETTLED_S = 3.0  # a row file unchanged this long is served from the parse cache
_ROWS_FILE = re.compile(r"^result(\.attempt-\d{3})?\.json$")
_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d{6})$")
_TRIAL_ID = re.compile(r"[0-9a-f]{5}_\d{5}")
# Only these may be rebuilt when reading a checkpoint's algorithm_state.pkl (numbers, dicts).
_SAFE_PICKLE_MODULES = ("builtins", "collections", "copyreg", "numpy", "_codecs")


class _NumbersOnly(pickle.Unpickler):
    """Unpickles plain data and numpy scalars; refuses any other class (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _SAFE_PICKLE_MODULES and name not in ("eval", "exec"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a job: its id, trial, iteration, env steps and metric when written."""

    id: str
    trial_id: str
    iteration: int | None
    env_steps: int | None
    return_mean: float | None
    path: str  # path inside the storage filesystem (never shown to users)


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN and infinities become None; containers are dropped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return None


class Storage:
    """Read and write a job's files under `root` (a local path or an `s3://` URI)."""

    def __init__(self, root: str) -> None:
        self.root_uri = root.rstrip("/")
        self.fs, self.base = pafs.FileSystem.from_uri(self._as_uri(root))
        self.base = self.base.rstrip("/")
        self._iterations: dict[str, int] = {}
        self._rows: dict[str, tuple[tuple[Any, Any], list[dict[str, Any]]]] = {}
        if isinstance(self.fs, pafs.LocalFileSystem):
            self.fs.create_dir(self.base, recursive=True)
        else:
            self._check_bucket()

    def _check_bucket(self) -> None:
        """Fail at start-up, naming the root, when an object store's bucket is not there."""
        bucket = self.base.split("/", 1)[0]
        try:
            found = self.fs.get_file_info(bucket).type != pafs.FileType.NotFound
        except OSError as error:
            raise ValueError(f"storage root {self.root_uri}: {error}") from None
        if not found:
            raise ValueError(
                f"storage root {self.root_uri}: bucket {bucket!r} does not exist (create it first)"
            )

    @staticmethod
    def _as_uri(root: str) -> str:
        if "://" in root:
            return root
        return "file://" + posixpath.abspath(root)

    # ---- paths ------------------------------------------------------------------------------

    def job_path(self, job_id: str) -> str:
        return f"{self.base}/jobs/{job_id}"

    def job_uri(self, job_id: str) -> str:
        """What `rldojo train --out` gets: the job's directory as a path or URI."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return self.job_path(job_id)
        return f"{self.root_uri}/jobs/{job_id}"

    def evaluation_path(self, evaluation_id: str) -> str:
        return f"{self.base}/evaluations/{evaluation_id}"

    def evaluation_uri(self, evaluation_id: str) -> str:
        if isinstance(self.fs, pafs.LocalFileSystem):
            return self.evaluation_path(evaluation_id)
        return f"{self.root_uri}/evaluations/{evaluation_id}"

    def uri_of(self, path: str) -> str:
        """A filesystem path from this storage as something a Ray job can open."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return path
        scheme = self.root_uri.split("://", 1)[0]
        return f"{scheme}://{path}"

    # ---- small files ------------------------------------------------------------------------

    def write_text(self, path: str, text: str) -> None:
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as stream:
            stream.write(text.encode())

    def read_text(self, path: str) -> str | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return bytes(stream.read()).decode(errors="replace")
        except (FileNotFoundError, OSError):
            return None

    def exists(self, path: str) -> bool:
        return bool(self.fs.get_file_info(path).type != pafs.FileType.NotFound)

    def open_stream(self, path: str, chunk: int = 1 << 16) -> Iterator[bytes]:
        """A file's bytes in chunks."""
        with self.fs.open_input_stream(path) as stream:
            while True:
                data = stream.read(chunk)
                if not data:
                    return
                yield bytes(data)

    def _list(self, path: str, recursive: bool = False) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
        try:
            return list(self.fs.get_file_info(selector))
        except (FileNotFoundError, OSError):
            return []

    def delete_job(self, job_id: str) -> None:
        """Remove every file of a job."""
        if self.exists(self.job_path(job_id)):
            self.fs.delete_dir(self.job_path(job_id))

    def delete_evaluation(self, evaluation_id: str) -> None:
        if self.exists(self.evaluation_path(evaluation_id)):
            self.fs.delete_dir(self.evaluation_path(evaluation_id))

    # ---- Tune results -----------------------------------------------------------------------

    def trial_paths(self, job_id: str) -> list[str]:
        """The job's trial directories (those that hold result rows)."""
        experiment = f"{self.job_path(job_id)}/{EXPERIMENT}"
        found = []
        for info in self._list(experiment):
            if info.type == pafs.FileType.Directory and self._rows_files(info.path):
                found.append(info.path)
        return sorted(found)

    def _rows_files(self, trial_path: str) -> list[str]:
        """Earlier attempts' row files, oldest first, then the current result.json."""
        names = {posixpath.basename(i.path) for i in self._list(trial_path)}
        attempts = sorted(n for n in names if _ROWS_FILE.match(n) and n != RESULT)
        current = [RESULT] if RESULT in names else []
        return [f"{trial_path}/{name}" for name in attempts + current]

    def keep_attempt_rows(self, job_id: str, attempt: int) -> None:
        """Copy attempt `attempt`'s result rows aside before the next attempt starts.

        A resumed Tune trial copies its old result.json back only when Tune's experiment
        snapshot had recorded one of its checkpoints; otherwise (a crash before that) it starts
        the file afresh and its upload replaces the rows already on storage. The copy in
        `result.attempt-NNN.json` keeps every row served so far, in either case.
        """
        for trial_path in self.trial_paths(job_id):
            current = f"{trial_path}/{RESULT}"
            if self.exists(current):
                self.fs.copy_file(current, f"{trial_path}/result.attempt-{attempt:03d}.json")

    def trial_rows(self, trial_path: str) -> list[dict[str, Any]]:
        """A trial's flattened per-iteration rows (metric names as in `metrics`), JSON-safe.

        Earlier attempts' rows come first, then the current attempt's; a file that starts with
        the previous file's rows (Tune carried them over on resume) adds only what follows them.
        """
        return merge_attempt_rows([self._file_rows(path) for path in self._rows_files(trial_path)])

    def _file_rows(self, path: str) -> list[dict[str, Any]]:
        """One row file's rows, cached per size and mtime, so repeated reads of a finished or
        idle trial cost one `stat`. A file changed in the last seconds is read again: S3 keeps
        mtimes to the second, and a resumed attempt may replace a file by one of the same size.
        """
        info = self.fs.get_file_info(path)
        key = (info.size, info.mtime_ns)
        settled = info.mtime_ns is not None and time.time() - info.mtime_ns / 1e9 > _SETTLED_S
        cached = self._rows.get(path)
        if cached is not None and cached[0] == key and settled:
            return [dict(row) for row in cached[1]]
        rows = self._parse_rows(path)
        self._rows[path] = (key, rows)
        return [dict(row) for row in rows]

    def _parse_rows(self, path: str) -> list[dict[str, Any]]:
        text = self.read_text(path) or ""
        rows = []
        for line in text.splitlines():
            try:
                row = metrics.flatten(json.loads(line))
            except (json.JSONDecodeError, AttributeError):
                continue  # a line being written right now
            rows.append({key: _clean(value) for key, value in row.items()})
        return rows

    def metric_rows(self, job_id: str) -> list[dict[str, Any]]:
        """Every trial's rows, each tagged with its `trial_id`, in trial then iteration order."""
        rows = []
        for trial_path in self.trial_paths(job_id):
            trial_id = _trial_id(trial_path)
            for row in self.trial_rows(trial_path):
                row.setdefault("trial_id", trial_id)
                rows.append(row)
        return rows

    def checkpoints(self, job_id: str) -> list[Checkpoint]:
        """The job's checkpoints on storage, oldest first within each trial."""
        found = []
        for trial_path in self.trial_paths(job_id):
            rows = self.trial_rows(trial_path)
            trial_id = str(rows[-1].get("trial_id")) if rows else _trial_id(trial_path)
            by_iteration = {_int(row.get(metrics.ITERATION)): row for row in rows}
            for info in self._list(trial_path):
                name = posixpath.basename(info.path)
                match = _CHECKPOINT_DIR.match(name)
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
                        return_mean=_float(row.get(metrics.EPISODE_RETURN_MEAN)),
                        path=info.path,
                    )
                )
        return sorted(found, key=lambda c: (c.trial_id, c.path))

    def _checkpoint_iteration(self, path: str) -> int | None:
        """The iteration a checkpoint was written at (from RLlib's algorithm_state.pkl)."""
        if path in self._iterations:
            return self._iterations[path]
        try:
            with self.fs.open_input_stream(f"{path}/algorithm_state.pkl") as stream:
                state = _NumbersOnly(io.BytesIO(bytes(stream.read()))).load()
            iteration = _int(state.get("training_iteration"))
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None  # being written right now, or not an algorithm checkpoint
        if iteration is not None:
            self._iterations[path] = iteration  # checkpoints never change once written
        return iteration

    def find_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint | None:
        """The checkpoint with this id, `best` (highest return, latest on ties), or None."""
        kept = self.checkpoints(job_id)
        if checkpoint_id == "best":
            if not kept:
                return None
            return max(
                enumerate(kept),
                key=lambda item: (
                    item[1].return_mean if item[1].return_mean is not None else -math.inf,
                    item[1].iteration or -1,
                    item[0],
                ),
            )[1]
        return next((c for c in kept if c.id == checkpoint_id), None)

    def archive(self, checkpoint: Checkpoint) -> Iterator[bytes]:
        """Stream a checkpoint directory as a .tar.gz whose top folder is `checkpoint_NNNNNN`."""
        top = posixpath.basename(checkpoint.path)
        sink = _Chunks()
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            for info in sorted(self._list(checkpoint.path, recursive=True), key=lambda i: i.path):
                relative = posixpath.relpath(info.path, checkpoint.path)
                member = tarfile.TarInfo(f"{top}/{relative}")
                member.mtime = int(info.mtime.timestamp()) if info.mtime else 0
                if info.type == pafs.FileType.Directory:
                    member.type = tarfile.DIRTYPE
                    member.mode = 0o755
                    tar.addfile(member)
                else:
                    member.size = int(info.size or 0)
                    member.mode = 0o644
                    with self.fs.open_input_stream(info.path) as stream:
                        tar.addfile(member, _Reader(stream))
                yield from sink.drain()
        yield from sink.drain()


class _Chunks(io.RawIOBase):
    """A write-only sink that hands back what was written so far (for streamed tar.gz)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        if parts:
            yield b"".join(parts)


class _Reader:
    """Adapts a pyarrow input stream to the `read(n)` tarfile expects."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        return bytes(self.stream.read() if size < 0 else self.stream.read(size))


def merge_attempt_rows(files: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One trial's rows from its row files, oldest attempt first.

    A file that starts with the previous file's rows (Tune carried them over on resume) adds
    only the rows that follow them; any other file adds all of its rows.
    """
    rows: list[dict[str, Any]] = []
    previous: list[dict[str, Any]] = []
    for more in files:
        carried = len(previous) if previous and more[: len(previous)] == previous else 0
        rows.extend(more[carried:])
        previous = more
    return rows


def _trial_id(trial_path: str) -> str:
    match = _TRIAL_ID.search(posixpath.basename(trial_path))
    return match.group(0) if match else posixpath.basename(trial_path)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
