"""The metrics stream's bookkeeping: each row once, whatever order the polls read the files in."""

from __future__ import annotations

from typing import Any

from service.api.routes.jobs import unsent_rows


def _rows(trial: str, iterations: range) -> list[dict[str, Any]]:
    return [{"trial_id": trial, "training_iteration": i} for i in iterations]


def _iterations(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(row["trial_id"], row["training_iteration"]) for row in rows]


def test_each_row_is_sent_once_per_trial() -> None:
    sent: dict[str, int] = {}
    first = unsent_rows(_rows("a", range(1, 4)) + _rows("b", range(1, 2)), sent)
    assert _iterations(first) == [("a", 1), ("a", 2), ("a", 3), ("b", 1)]
    second = unsent_rows(_rows("a", range(1, 5)) + _rows("b", range(1, 3)), sent)
    assert _iterations(second) == [("a", 4), ("b", 2)]
    assert unsent_rows(_rows("a", range(1, 5)) + _rows("b", range(1, 3)), sent) == []


def test_a_short_read_during_a_sync_resends_nothing() -> None:
    """Seen through docker-compose: a row file read mid-copy had 179 of its 310 rows, and the
    stream then sent rows 180-310 a second time."""
    sent: dict[str, int] = {}
    assert len(unsent_rows(_rows("a", range(1, 311)), sent)) == 310
    assert unsent_rows(_rows("a", range(1, 180)), sent) == []  # the file mid-copy
    resumed = unsent_rows(_rows("a", range(1, 313)), sent)
    assert _iterations(resumed) == [("a", 311), ("a", 312)]
