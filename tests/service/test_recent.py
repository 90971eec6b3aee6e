"""`Recent`: a value per key at most so old, one computation at a time per key."""

from __future__ import annotations

import threading
import time

from service.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_reused_while_fresh_and_computed_again_after() -> None:
    clock = Clock()
    recent: Recent[int] = Recent(1.0, clock=clock)
    calls: list[str] = []

    def compute() -> int:
        calls.append("x")
        return len(calls)

    assert recent.get("job", compute) == 1
    clock.now = 0.9
    assert recent.get("job", compute) == 1
    clock.now = 1.0
    assert recent.get("job", compute) == 2
    assert recent.get("other", compute) == 3  # keys apart
    assert len(calls) == 3


def test_concurrent_askers_of_one_key_share_one_computation() -> None:
    recent: Recent[int] = Recent(60.0)
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 7

    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(recent.get("job", slow))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [7] * 8
    assert len(calls) == 1


def test_stale_values_are_forgotten() -> None:
    clock = Clock()
    recent: Recent[int] = Recent(1.0, clock=clock)
    recent.get("old", lambda: 1)
    clock.now = 5.0
    recent.get("new", lambda: 2)
    assert list(recent._values) == ["new"]


def test_a_new_version_is_computed_at_once_even_while_fresh() -> None:
    clock = Clock()
    recent: Recent[int] = Recent(60.0, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert recent.get("list", compute, version=1) == 1
    assert recent.get("list", compute, version=1) == 1
    assert recent.get("list", compute, version=2) == 2  # a write: the old answer is dropped
    clock.now = 60.0
    assert recent.get("list", compute, version=2) == 3  # and age still bounds it
