"""The incremental row parser: Tune's result.json files (one JSON object per line), parsed as
far as they are whole and continued from there when they grow; and one trial's rows made
continuous over its attempts.

Plain data and functions over a `pyarrow.fs` filesystem: the job directory (`rows.py`) keeps
one `RowCache` per storage root, so an unchanged file costs one `stat`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from algorithms.common import metrics


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


def parse_rows(
    fs: pafs.FileSystem, path: str, cached: ParsedFile | None, key: tuple[Any, Any]
) -> ParsedFile:
    """A row file parsed on from where `cached` stopped if its last line is still there (an
    append), else whole; a last line without its newline is left for the next parse."""
    try:
        with fs.open_input_file(path) as handle:
            start = 0
            if cached is not None and cached.offset and cached.last_line:
                back = cached.offset - len(cached.last_line)
                if handle.read_at(len(cached.last_line), back) == cached.last_line:
                    start = cached.offset
            size = handle.size()
            if start > size:  # rewritten shorter since: parse it again whole
                start = 0
            # `read()` with no size reads (size - position) bytes as measured now, which goes
            # negative when the file shrinks meanwhile: ask for a count instead.
            data = bytes(handle.read_at(size - start, start)) if size > start else b""
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


def continuous_rows(files: list[tuple[int, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """One trial's rows from its row files (attempt, rows), oldest attempt first.

    Rows are kept in iteration order, one per iteration: a row whose iteration is not past the
    last one kept replaces that row and every later one (the attempt went back to an older
    checkpoint). A row that is a copy of one kept (Tune copies a trial's rows into the next
    attempt's file on resume) changes nothing, so a file cut short (a driver killed while it
    copied the file to storage) does not take the rows after its end with it. Each row is
    labelled with the attempt that produced it: the first attempt whose file holds a row of the
    same trial process (a stopped driver's last rows may be uploaded with the next attempt's).

    Example:
        >>> first = [{"training_iteration": i, "pid": 7} for i in (1, 2, 3)]
        >>> second = first[:1] + [{"training_iteration": i, "pid": 8} for i in (2, 3, 4)]
        >>> rows = continuous_rows([(1, first), (2, second)])
        >>> [(row["training_iteration"], row["attempt"]) for row in rows]
        [(1, 1), (2, 2), (3, 2), (4, 2)]
        >>> cut_short = first[:2]  # a copy of the first file that lost its end
        >>> [row["training_iteration"] for row in continuous_rows([(1, first), (2, cut_short)])]
        [1, 2, 3]
    """
    first_seen: dict[tuple[Any, ...], int] = {}
    kept: list[dict[str, Any]] = []
    kept_at: dict[int, tuple[Any, ...]] = {}  # iteration -> the kept row's identity
    for attempt, rows in files:
        for row in rows:
            iteration = _int(row.get(metrics.ITERATION))
            if iteration is None:
                continue
            process = (row.get("hostname"), row.get("node_ip"), row.get("pid"))
            producer = first_seen.setdefault(process, attempt) if row.get("pid") else attempt
            identity = (*process, row.get("time_total_s"))
            if row.get("pid") and kept_at.get(iteration) == identity:
                continue  # the same row, copied into a later file
            while kept and (_int(kept[-1].get(metrics.ITERATION)) or 0) >= iteration:
                kept_at.pop(_int(kept.pop().get(metrics.ITERATION)) or 0, None)
            kept.append({**row, "attempt": producer})
            kept_at[iteration] = identity
    return kept


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN and infinities become None; containers are dropped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return None


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
