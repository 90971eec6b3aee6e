"""A job's directory: the one room that holds everything of one training job.

Both sides go through `JobDirectory`: the Ray job that trains (or evaluates) writes here, and
the API, the CLI and the plots read here; nothing else opens these files. It lives on a local
path or an `s3://` URI (`pyarrow.fs`), and its layout is:

    spec.json                         the validated job spec, as submitted
    compiled.json                     the job compiled at submit (service/compiler.py): the
                                      driver trains exactly this
    attempts/<n>/stop                 a stop was asked for attempt n (the trainer watches it)
    attempts/<n>/progress.json        what attempt n's trainer is doing (starting, waiting, ...)
    logs/attempt-<n>.log              attempt n's driver log, kept once it ended
    <trial>/result.json               Tune's rows of the current attempt (one JSON per line)
    <trial>/result.attempt-NNN.json   the rows of attempt NNN, set aside when the next started
    <trial>/checkpoint_NNNNNN/        RLlib algorithm checkpoints
    evaluations/<id>/result.json      an evaluation's score (and video.mp4)
    experiment_state-*.json, ...      Tune's own snapshot, which a resume restores

The directory *is* the Tune experiment (storage path: its parent; experiment name: its own
name, the job id), so no two jobs share an experiment name or Tune's staging folder. Jobs made
before this layout keep their trials under `run/`, which is read the same way.

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
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from algorithms.common import metrics

SPEC = "spec.json"
COMPILED = "compiled.json"
RESULT = "result.json"
EVALUATION_RESULT = "result.json"
EVALUATION_VIDEO = "video.mp4"
LEGACY_EXPERIMENT = "run"  # where jobs made before this layout keep their trials
_ROWS_FILE = re.compile(r"^result(?:\.attempt-(\d{3}))?\.json$")
_CHECKPOINT_DIR = re.compile(r"^checkpoint_(\d{6})$")
_TRIAL_ID = re.compile(r"[0-9a-f]{5}_\d{5}")
_SETTLED_S = 3.0  # a row file unchanged this long is served from the parse cache
# Only these may be rebuilt when reading a checkpoint's algorithm_state.pkl (numbers, dicts).
_SAFE_PICKLE_MODULES = ("builtins", "collections", "copyreg", "numpy", "_codecs")


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and the path inside it for a local path or a URI."""
    uri = location if "://" in location else "file://" + posixpath.abspath(location)
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a job: its id, trial, iteration, env steps and metric when written."""

    id: str
    trial_id: str
    iteration: int | None
    env_steps: int | None
    return_mean: float | None
    path: str  # path inside the storage filesystem (never shown to users)


@dataclass
class ParsedFile:
    """A row file as far as it was parsed: its stat key, its rows, and where parsing stopped
    (after the last whole line) with that line's bytes, to tell an append from a rewrite."""

    key: tuple[Any, Any]
    rows: list[dict[str, Any]]
    offset: int
    last_line: bytes


@dataclass
class RowCache:
    """Parsed row files by path, shared by every `JobDirectory` of one storage root."""

    rows: dict[str, ParsedFile] = field(default_factory=dict)
    iterations: dict[str, int] = field(default_factory=dict)


class JobDirectory:
    """Read and write one job's files.

    Example:
        >>> job = JobDirectory.open("/tmp/rldojo-doc/jobs/abc123")
        >>> job.name
        'abc123'
    """

    def __init__(
        self, fs: pafs.FileSystem, path: str, uri: str, cache: RowCache | None = None
    ) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self.uri = uri.rstrip("/")
        self.cache = cache or RowCache()

    @classmethod
    def open(cls, location: str, cache: RowCache | None = None) -> JobDirectory:
        """The job directory at a local path (made absolute) or an `s3://` URI."""
        fs, path = filesystem(location)
        uri = location.rstrip("/") if "://" in location else path
        return cls(fs, path, uri, cache)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    def _uri_of(self, path: str) -> str:
        """A path of this filesystem as something another process (a Ray job) can open."""
        if isinstance(self.fs, pafs.LocalFileSystem):
            return path
        return self.uri + path[len(self.path) :]

    # ---- small files --------------------------------------------------------------------------

    def write_text(self, relative: str, text: str) -> None:
        self.write_bytes(relative, text.encode())

    def write_bytes(self, relative: str, data: bytes) -> None:
        path = f"{self.path}/{relative}"
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as stream:
            stream.write(data)

    def read_text(self, relative: str) -> str | None:
        return self._read(f"{self.path}/{relative}")

    def _read(self, path: str) -> str | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return bytes(stream.read()).decode(errors="replace")
        except (FileNotFoundError, OSError):
            return None

    def _exists(self, path: str) -> bool:
        return bool(self.fs.get_file_info(path).type != pafs.FileType.NotFound)

    def exists(self, relative: str = "") -> bool:
        return self._exists(f"{self.path}/{relative}".rstrip("/"))

    def _list(self, path: str, recursive: bool = False) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=recursive)
        try:
            return list(self.fs.get_file_info(selector))
        except (FileNotFoundError, OSError):
            return []

    def delete(self) -> None:
        """Remove every file of the job."""
        if self.exists():
            self.fs.delete_dir(self.path)

    # ---- the spec and the compiled job -------------------------------------------------------

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.write_text(SPEC, json.dumps(spec, indent=2))

    def read_spec(self) -> dict[str, Any] | None:
        text = self.read_text(SPEC)
        return json.loads(text) if text is not None else None

    def write_compiled(self, compiled: dict[str, Any]) -> None:
        """Store the compiled job (`CompiledJob.model_dump(mode="json")`) the driver trains."""
        self.write_text(COMPILED, json.dumps(compiled, indent=2, sort_keys=True))

    def read_compiled(self) -> dict[str, Any] | None:
        text = self.read_text(COMPILED)
        return json.loads(text) if text is not None else None

    # ---- attempts: stop requests, progress, logs ---------------------------------------------

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

    # ---- the Tune experiment -----------------------------------------------------------------

    @property
    def experiment_path(self) -> str:
        legacy = f"{self.path}/{LEGACY_EXPERIMENT}"
        return legacy if self._exists(legacy) else self.path

    @property
    def experiment_uri(self) -> str:
        """Where `Tuner.restore` finds the experiment."""
        return self._uri_of(self.experiment_path)

    def trial_paths(self) -> list[str]:
        """The trial directories (those that hold result rows)."""
        found = []
        for info in self._list(self.experiment_path):
            if info.type == pafs.FileType.Directory and self._rows_files(info.path):
                found.append(info.path)
        return sorted(found)

    def _rows_files(self, trial_path: str) -> list[tuple[int | None, str]]:
        """(attempt, path) of each row file, oldest attempt first; None is the current one."""
        numbered: list[tuple[int | None, str]] = []
        current: list[tuple[int | None, str]] = []
        for info in self._list(trial_path):
            match = _ROWS_FILE.match(posixpath.basename(info.path))
            if match is None or info.type != pafs.FileType.File:
                continue
            if match.group(1) is None:
                current.append((None, info.path))
            else:
                numbered.append((int(match.group(1)), info.path))
        return sorted(numbered, key=lambda item: item[0] or 0) + current

    def keep_attempt_rows(self, attempt: int) -> None:
        """Copy attempt `attempt`'s result rows aside before the next attempt starts.

        A resumed Tune trial copies its old result.json back only when Tune's experiment
        snapshot had recorded one of its checkpoints; otherwise (a crash before that) it starts
        the file afresh and its upload replaces the rows already on storage. The copy in
        `result.attempt-NNN.json` keeps every row served so far, in either case.
        """
        for trial_path in self.trial_paths():
            current = f"{trial_path}/{RESULT}"
            if self._exists(current):
                self.fs.copy_file(current, f"{trial_path}/result.attempt-{attempt:03d}.json")

    # ---- result rows -------------------------------------------------------------------------

    def trial_rows(self, trial_path: str) -> list[dict[str, Any]]:
        """A trial's rows as the user sees them: one per iteration, continuous across attempts.

        Each row carries `attempt`, the attempt that produced it. Where a later attempt went
        over iterations an earlier one had reported (it resumed from an older checkpoint), the
        later attempt's rows replace the earlier ones from that iteration on; every row stays in
        its file on storage.
        """
        files = self._rows_files(trial_path)
        last = max((n for n, _ in files if n is not None), default=0) + 1
        return continuous_rows(
            [(n if n is not None else last, self._file_rows(path)) for n, path in files]
        )

    def _file_rows(self, path: str) -> list[dict[str, Any]]:
        """One row file's rows, parsed incrementally.

        An unchanged file costs one `stat`; one that grew (Tune appends a row per iteration)
        costs its new lines, as long as the last line parsed is still where it was; anything
        else (a rewrite on resume, a short read while Tune copies the file over) is parsed
        again whole. A file changed in the last seconds is always checked: S3 keeps mtimes to
        the second, and a rewrite may keep the size.
        """
        info = self.fs.get_file_info(path)
        key = (info.size, info.mtime_ns)
        settled = info.mtime_ns is not None and time.time() - info.mtime_ns / 1e9 > _SETTLED_S
        cached = self.cache.rows.get(path)
        if cached is not None and cached.key == key and settled:
            return [dict(row) for row in cached.rows]
        parsed = self._parse_rows(path, cached, key)
        self.cache.rows[path] = parsed
        return [dict(row) for row in parsed.rows]

    def _parse_rows(self, path: str, cached: ParsedFile | None, key: tuple[Any, Any]) -> ParsedFile:
        try:
            with self.fs.open_input_file(path) as handle:
                start = 0
                if cached is not None and cached.offset and cached.last_line:
                    back = cached.offset - len(cached.last_line)
                    if handle.read_at(len(cached.last_line), back) == cached.last_line:
                        start = cached.offset
                handle.seek(start)
                data = bytes(handle.read())
        except (FileNotFoundError, OSError):
            return ParsedFile(key, [], 0, b"")
        rows = list(cached.rows) if start and cached is not None else []
        whole = data[: data.rfind(b"\n") + 1]  # a last line without its newline is being written
        last_line = cached.last_line if start and cached is not None else b""
        for line in whole.splitlines(keepends=True):
            last_line = line
            try:
                row = metrics.flatten(json.loads(line))
            except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
                continue
            rows.append({name: _clean(value) for name, value in row.items()})
        return ParsedFile(key, rows, start + len(whole), last_line)

    def rows(self) -> list[dict[str, Any]]:
        """Every trial's rows, each tagged with its `trial_id`, in trial then iteration order."""
        found = []
        for trial_path in self.trial_paths():
            trial_id = _trial_id(trial_path)
            for row in self.trial_rows(trial_path):
                row.setdefault("trial_id", trial_id)
                found.append(row)
        return found

    def summary(self) -> dict[str, Any]:
        """Latest row of the newest trial, the best trial (highest latest mean return) and the
        number of checkpoints."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.rows():  # parsed once: checkpoints() below reads the same cache
            latest[str(row.get("trial_id"))] = row
        best: dict[str, Any] | None = None
        for trial_id, row in latest.items():
            value = finite_float(row.get(metrics.EPISODE_RETURN_MEAN))
            if value is not None and (best is None or value > best["return_mean"]):
                best = {
                    "trial_id": trial_id,
                    "return_mean": value,
                    "iteration": row.get(metrics.ITERATION),
                }
        newest = max(latest.values(), key=lambda r: r.get("timestamp") or 0, default=None)
        return {
            "latest_metrics": _headline(newest) if newest else None,
            "best_trial": best,
            "checkpoints": len(self.checkpoints()),
        }

    # ---- checkpoints -------------------------------------------------------------------------

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
                state = _NumbersOnly(io.BytesIO(bytes(stream.read()))).load()
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

    def checkpoint_uri(self, checkpoint: Checkpoint) -> str:
        """A checkpoint as a path or URI that a Ray job (or `rldojo evaluate`) opens."""
        return self._uri_of(checkpoint.path)

    def archive(self, checkpoint: Checkpoint) -> Iterator[bytes]:
        """Stream a checkpoint directory as a .tar.gz whose top folder is `checkpoint_NNNNNN`."""
        top = posixpath.basename(checkpoint.path)
        sink = _Chunks()
        with tarfile.open(fileobj=sink, mode="w|gz") as tar:
            for info in sorted(self._list(checkpoint.path, recursive=True), key=lambda i: i.path):
                member = tarfile.TarInfo(f"{top}/{posixpath.relpath(info.path, checkpoint.path)}")
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

    # ---- evaluations -------------------------------------------------------------------------

    def evaluation_uri(self, evaluation_id: str) -> str:
        """Where evaluation `evaluation_id` writes its result (a path or URI for its Ray job)."""
        return self._uri_of(f"{self.path}/evaluations/{evaluation_id}")

    def evaluation_result(self, evaluation_id: str) -> dict[str, Any] | None:
        text = self.read_text(f"evaluations/{evaluation_id}/{EVALUATION_RESULT}")
        return json.loads(text) if text else None

    def evaluation_video(self, evaluation_id: str) -> str | None:
        """The path of an evaluation's video, None when it has none."""
        path = f"{self.path}/evaluations/{evaluation_id}/{EVALUATION_VIDEO}"
        return path if self._exists(path) else None

    def open_stream(self, path: str, chunk: int = 1 << 16) -> Iterator[bytes]:
        """A file's bytes in chunks (`path` as this directory handed it out)."""
        with self.fs.open_input_stream(path) as stream:
            while data := stream.read(chunk):
                yield bytes(data)


def continuous_rows(files: list[tuple[int, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One trial's rows from its row files (attempt, rows), oldest attempt first.

    Rows are kept in iteration order, one per iteration: a row whose iteration is not past the
    last one kept replaces that row and every later one (the attempt went back to an older
    checkpoint). Each row is labelled with the attempt that produced it: the first attempt whose
    file holds a row of the same trial process (Tune copies a trial's rows into the next
    attempt's file on resume, and may upload a stopped driver's last rows with them).

    Example:
        >>> first = [{"training_iteration": i, "pid": 7} for i in (1, 2, 3)]
        >>> second = first[:1] + [{"training_iteration": i, "pid": 8} for i in (2, 3, 4)]
        >>> rows = continuous_rows([(1, first), (2, second)])
        >>> [(row["training_iteration"], row["attempt"]) for row in rows]
        [(1, 1), (2, 2), (3, 2), (4, 2)]
    """
    first_seen: dict[tuple[Any, ...], int] = {}
    kept: list[dict[str, Any]] = []
    for attempt, rows in files:
        for row in rows:
            iteration = _int(row.get(metrics.ITERATION))
            if iteration is None:
                continue
            process = (row.get("hostname"), row.get("node_ip"), row.get("pid"))
            producer = first_seen.setdefault(process, attempt) if row.get("pid") else attempt
            while kept and (_int(kept[-1].get(metrics.ITERATION)) or 0) >= iteration:
                kept.pop()
            kept.append({**row, "attempt": producer})
    return kept


class _NumbersOnly(pickle.Unpickler):
    """Unpickles plain data and numpy scalars; refuses any other class (no code runs)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _SAFE_PICKLE_MODULES and name not in ("eval", "exec"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


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


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN and infinities become None; containers are dropped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return None


def _trial_id(trial_path: str) -> str:
    match = _TRIAL_ID.search(posixpath.basename(trial_path))
    return match.group(0) if match else posixpath.basename(trial_path)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def finite_float(value: Any) -> float | None:
    """A finite float, or None for anything else (NaN, infinities, text, None)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _finite(value: float | None) -> float:
    return value if value is not None else -math.inf
