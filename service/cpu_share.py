"""The embedded Ray head's share of the CPUs (API host and Ray nodes): behind the API's.

Niceness alone does not do it on Linux with autogroups (`/proc/sys/kernel/sched_autogroup_enabled`,
on by default): the scheduler first splits the CPUs evenly between sessions, and only within a
session does niceness count. `ray start` runs in its own session and Ray Jobs starts each
driver in another, so a niced head still took an even share from the API (the read bench's
p99 went with it). The session's autogroup is therefore given the same niceness.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def run_behind(nice: int) -> None:
    """Lower this process (and what it starts) by `nice`, its session's autogroup with it.

    Called in a new session's first process (a `preexec_fn` after `setsid`)."""
    if nice:
        os.nice(nice)
    autogroup_follows_niceness()


def autogroup_follows_niceness() -> None:
    """Give this session's autogroup this process's niceness, where the kernel has autogroups.

    A driver calls it at start: Ray Jobs put it in a session of its own (autogroup nice 0)
    while the process kept the head's niceness."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness <= 0 or not AUTOGROUP.exists():
        return
    try:
        AUTOGROUP.write_text(f"{niceness}\n")
    except OSError:  # no autogroups here, or not ours to change: niceness alone then
        pass
