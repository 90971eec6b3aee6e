"""A job's Tune experiment and its result rows: trial folders, one row file per attempt, and
each trial's rows continuous over attempts (parsed by `row_parser.py`)."""

from __future__ import annotations

import posixpath
import re
import time
from typing import Any

import pyarrow.fs as pafs

from service.jobdir.files import JobFiles
from service.jobdir.row_parser import continuous_rows, parse_rows

RESULT = "result.json"
_ROWS_FILE = re.compile(r"^result(?:\.attempt-(\d{3}))?\.json$")
_TRIAL_ID = re.compile(r"[0-9a-f]{5}_\d{5}")
_SETTLED_S = 3.0  # a row file unchanged this long is served from the parse cache


class RowFiles(JobFiles):
    """The experiment's trials and their rows (Tune's result.json files, every attempt's)."""

    @property
    def experiment_path(self) -> str:
        """The Tune experiment's path: the job directory itself."""
        return self.path

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
        parsed = parse_rows(self.fs, path, cached, key)
        self.cache.rows[path] = parsed
        return [dict(row) for row in parsed.rows]

    def rows(self) -> list[dict[str, Any]]:
        """Every trial's rows, each tagged with its `trial_id`, in trial then iteration order."""
        found = []
        for trial_path in self.trial_paths():
            trial_id = _trial_id(trial_path)
            for row in self.trial_rows(trial_path):
                row.setdefault("trial_id", trial_id)
                found.append(row)
        return found


def _trial_id(trial_path: str) -> str:
    match = _TRIAL_ID.search(posixpath.basename(trial_path))
    return match.group(0) if match else posixpath.basename(trial_path)
