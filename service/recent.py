"""A value per key, computed at most once per short interval, for reads under load (API).

Twenty clients polling one running job would each parse its rows and list its checkpoints
many times a second, though they change once an iteration; a second old is as good as new to
them. Concurrent askers of one key wait for the one computation under way instead of starting
their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """`get(key, compute)` answers `compute()` as of at most `seconds` ago."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._values: dict[Hashable, tuple[float, T]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            known = self._values.get(key)
            if known is not None and self.clock() - known[0] < self.seconds:
                return known[1]
            value = compute()
            self._values[key] = (self.clock(), value)
            self._forget_stale()
            return value

    def _forget_stale(self) -> None:
        """Drop expired values so keys of finished or deleted jobs do not pile up."""
        now = self.clock()
        with self._guard:
            for key in [k for k, (at, _) in self._values.items() if now - at >= self.seconds]:
                del self._values[key]
                self._locks.pop(key, None)
