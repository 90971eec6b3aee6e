"""The embedded head's processes run behind the API: niceness and the session's autogroup."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from service.cpu_share import AUTOGROUP

pytestmark = pytest.mark.skipif(not AUTOGROUP.exists(), reason="the kernel has no autogroups")

PROBE = (
    "import os; from service.cpu_share import run_behind; run_behind({nice}); "
    "print(os.getpriority(os.PRIO_PROCESS, 0), open('/proc/self/autogroup').read().split()[-1])"
)


def in_a_new_session(nice: int) -> list[int]:
    """Run `run_behind(nice)` as a session's first process, as `ray start` is; what it ended at."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(nice=nice)],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=True,
        cwd=os.getcwd(),
    ).stdout
    return [int(word) for word in out.split()]


def test_a_new_session_is_lowered_with_its_autogroup() -> None:
    niceness, autogroup_nice = in_a_new_session(7)
    assert niceness == os.getpriority(os.PRIO_PROCESS, 0) + 7
    assert autogroup_nice == niceness


def test_nice_zero_leaves_the_session_alone() -> None:
    niceness, autogroup_nice = in_a_new_session(0)
    assert niceness == os.getpriority(os.PRIO_PROCESS, 0)
    assert autogroup_nice == max(niceness, 0)  # a new session starts at 0 and follows a niced one
