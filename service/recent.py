"""A value per key, computed at most once per short interval, for reads under load (API).

Twenty clients polling one running job would each parse its rows and list its checkpoints
many times a second, though they change once an iteration; a second old is as good as new to
them. Concurrent askers of one key wait for the one computation under way instead of starting
their own.

A `version` (the store's count of job writes) makes a value exact as well as recent: it is
dropped as soon as this process writes, so a client sees its own stop at once, and only other
processes' writes may take up to `seconds` to show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """`get(key, compute)` answers `compute()` as of at most `seconds` ago (and, given a
    `version`, computed at that version)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._values: dict[Hashable, tuple[float, Hashable, T]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T], version: Hashable = None) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            known = self._values.get(key)
            if known is not None and known[1] == version and self._fresh(known[0]):
                return known[2]
            value = compute()
            # Kept under the version read before computing: a write during the computation
            # leaves it stale, so the next reader computes again.
            self._values[key] = (self.clock(), version, value)
            self._forget_stale()
            return value

    def known(self, key: Hashable, version: Hashable = None) -> T | None:
        """The value `get` would answer without computing, or None (no lock: a peek)."""
        known = self._values.get(key)
        if known is not None and known[1] == version and self._fresh(known[0]):
            return known[2]
        return None

    def _fresh(self, at: float) -> bool:
        return self.clock() - at < self.seconds

    def _forget_stale(self) -> None:
        """Drop expired values so keys of finished or deleted jobs do not pile up."""
        now = self.clock()
        with self._guard:
            for key in [k for k, (at, _, _) in self._values.items() if now - at >= self.seconds]:
                del self._values[key]
                self._locks.pop(key, None)
