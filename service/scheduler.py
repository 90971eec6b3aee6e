"""The queue: which QUEUED job starts next, within quotas, and which running jobs give way.

A job holds, while it runs, the resources of its trials that run at once (`cpus`, `gpus` on
its record). The scheduler starts queued jobs in this order:

1. priority: high, then normal, then low;
2. fair share: the owner with the fewest jobs running now goes first;
3. age: the older job first.

A job starts when what it holds fits what the running jobs leave free, and its owner stays
within their quota (running jobs, CPUs, GPUs) — at every moment, since only the scheduler
starts jobs and it counts what runs. A job whose owner is at quota waits aside; the first job
in order that does not fit the cluster blocks the ones behind it, so big jobs are not starved.
When that job is `high`, running jobs of lower priority are preempted (lowest priority, then
newest, first) until it would fit: each stops gracefully, keeping its checkpoints, goes back to
the queue and later resumes from its last checkpoint.

`plan()` is pure (records in, decisions out); `JobService.schedule` carries it out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.admission import Capacity
from service.settings import Quota
from service.status import JobStatus

if TYPE_CHECKING:
    from service.store import JobRecord

HIGH = 2


@dataclass
class Held:
    """What a set of running jobs holds."""

    jobs: int = 0
    cpus: float = 0.0
    gpus: float = 0.0

    def add(self, job: JobRecord, sign: int = 1) -> None:
        self.jobs += sign
        self.cpus += sign * job.cpus
        self.gpus += sign * job.gpus


@dataclass
class Plan:
    """What one scheduler pass decided: jobs to start, running jobs to preempt (and for whom)."""

    start: list[JobRecord] = field(default_factory=list)
    preempt: list[tuple[JobRecord, JobRecord]] = field(default_factory=list)


def order(queued: Sequence[JobRecord], running: Counter[str]) -> list[JobRecord]:
    """Queued jobs in the order they would start: priority, fair share, age."""
    return sorted(queued, key=lambda job: (-job.priority, running[job.owner], job.created_at))


def plan(
    queued: Sequence[JobRecord],
    active: Sequence[JobRecord],
    capacity: Capacity,
    quota_of: Callable[[str], Quota],
) -> Plan:
    """Decide which queued jobs start now and which running jobs are preempted.

    Args:
        queued: QUEUED jobs.
        active: jobs that hold resources (PENDING, RUNNING, STOPPING).
        capacity: what the cluster offers in all.
        quota_of: each owner's quota.
    """
    total, by_owner = Held(), dict[str, Held]()
    for job in active:
        total.add(job)
        by_owner.setdefault(job.owner, Held()).add(job)
    decided = Plan()
    waiting = list(queued)
    while waiting:
        running = Counter({owner: held.jobs for owner, held in by_owner.items()})
        allowed = [job for job in order(waiting, running) if _within_quota(job, by_owner, quota_of)]
        if not allowed:
            break
        head = allowed[0]
        if _fits(head, total, capacity):
            decided.start.append(head)
            total.add(head)
            by_owner.setdefault(head.owner, Held()).add(head)
            waiting.remove(head)
            continue
        if head.priority >= HIGH:
            decided.preempt = [(victim, head) for victim in _victims(head, active, capacity)]
        break
    return decided


QuotaOf = Callable[[str], Quota]


def _within_quota(job: JobRecord, by_owner: dict[str, Held], quota_of: QuotaOf) -> bool:
    held = by_owner.get(job.owner, Held())
    return quota_of(job.owner).allows(held.jobs + 1, held.cpus + job.cpus, held.gpus + job.gpus)


def _fits(job: JobRecord, held: Held, capacity: Capacity) -> bool:
    return (
        held.cpus + job.cpus <= capacity.cpus + 1e-9
        and held.gpus + job.gpus <= capacity.gpus + 1e-9
    )


def _victims(job: JobRecord, active: Sequence[JobRecord], capacity: Capacity) -> list[JobRecord]:
    """Running jobs of lower priority whose stop would make room for `job` (none if even all
    of them would not). Jobs already stopping count as gone: they are making room now."""
    held = Held()
    for running in active:
        if running.status is not JobStatus.STOPPING:
            held.add(running)
    candidates = sorted(
        (a for a in active if a.priority < job.priority and a.status is not JobStatus.STOPPING),
        key=lambda a: (a.priority, -a.created_at.timestamp()),
    )
    chosen: list[JobRecord] = []
    for candidate in candidates:
        if _fits(job, held, capacity):
            break
        chosen.append(candidate)
        held.add(candidate, sign=-1)
    return chosen if _fits(job, held, capacity) else []
