"""The life cycle of a job (and of an evaluation): the store's status column, as an enum.

    QUEUED ──> PENDING ──> RUNNING ──> SUCCEEDED | FAILED
       │          │           │
       │          └───────────┴──> STOPPING ──> STOPPED | QUEUED (preempted)
       └──> STOPPED (cancelled)
    any status on Ray ──> LOST                                (the Ray cluster forgot the job)

QUEUED waits in the job store for room on the cluster; PENDING and RUNNING follow Ray's job.
STOPPING means a stop was asked for and some process of the job may still run; STOPPED is only
written once Ray reports the job's driver gone. Every legal transition, and the functions that
choose one, are in `service.lifecycle`. This module imports nothing heavy, so the CLI and the
SDK use it without loading the database layer.
"""

from __future__ import annotations

import re
from enum import Enum


class JobStatus(str, Enum):  # noqa: UP042 - str() and JSON give the plain value
    """Where a job or an evaluation stands."""

    QUEUED = "QUEUED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    LOST = "LOST"

    def is_terminal(self) -> bool:
        """True when nothing more will happen without a user action (resume, delete)."""
        return self in TERMINAL

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.LOST})
ACTIVE = frozenset(set(JobStatus) - TERMINAL)
RESUMABLE = frozenset({JobStatus.STOPPED, JobStatus.FAILED, JobStatus.LOST})
# States in which a Ray job of the job may exist (QUEUED has none yet).
ON_RAY = frozenset({JobStatus.PENDING, JobStatus.RUNNING, JobStatus.STOPPING})
# A job's place in the queue's order; the store keeps the index (0 low, 1 normal, 2 high).
PRIORITIES = ("low", "normal", "high")


def root_cause(text: str) -> str:
    """The last exception line of a driver's failure text, without terminal colour codes.

    Example:
        >>> root_cause("Traceback ...\\n  x = f()\\n\\x1b[36mValueError: bad size\\x1b[0m")
        'ValueError: bad size'
    """
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b", line)]
    return (errors or lines or [""])[-1][:500]
