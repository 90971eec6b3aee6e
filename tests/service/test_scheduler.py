"""The queue's decisions (service/scheduler.py) on hand-made records: order, quotas, blocking,
preemption."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from service.admission import Capacity
from service.scheduler import order, plan
from service.settings import Quota
from service.status import JobStatus
from service.store import JobRecord

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TWO_CPUS = Capacity(cpus=2, gpus=0, node_cpus=2, node_gpus=0)


def _job(
    name: str,
    owner: str = "alice",
    priority: int = 1,
    cpus: float = 1.0,
    status: JobStatus = JobStatus.QUEUED,
    minute: int = 0,
) -> JobRecord:
    return JobRecord(
        id=name,
        owner=owner,
        spec={},
        status=status,
        priority=priority,
        cpus=cpus,
        gpus=0.0,
        created_at=START + dt.timedelta(minutes=minute),
    )


def _no_quota(_owner: str) -> Quota:
    return Quota()


def test_order_is_priority_then_fair_share_then_age() -> None:
    queued = [
        _job("old-normal", "alice", 1, minute=0),
        _job("new-high", "bob", 2, minute=5),
        _job("alice-normal", "alice", 1, minute=1),
        _job("bob-normal", "bob", 1, minute=2),
        _job("low", "carol", 0, minute=0),
    ]
    running = Counter({"alice": 2, "bob": 0})
    assert [j.id for j in order(queued, running)] == [
        "new-high",
        "bob-normal",  # bob runs nothing: his job goes before alice's older ones
        "old-normal",
        "alice-normal",
        "low",
    ]


def test_jobs_start_while_they_fit_and_fair_share_alternates_owners() -> None:
    queued = [_job(f"a{i}", "alice", minute=i) for i in range(3)] + [
        _job(f"b{i}", "bob", minute=10 + i) for i in range(3)
    ]
    decided = plan(queued, [], Capacity(cpus=4, gpus=0, node_cpus=4, node_gpus=0), _no_quota)
    assert [j.id for j in decided.start] == ["a0", "b0", "a1", "b1"]
    assert decided.preempt == []


def test_quota_holds_and_the_owner_at_quota_waits_aside() -> None:
    running = [_job("a-run", "alice", status=JobStatus.RUNNING)]
    queued = [_job("a-next", "alice", minute=0), _job("b-next", "bob", minute=9)]

    def quota(owner: str) -> Quota:
        return Quota(running_jobs=1) if owner == "alice" else Quota()

    decided = plan(queued, running, TWO_CPUS, quota)
    assert [j.id for j in decided.start] == ["b-next"]  # alice's waits: she is at her quota
    cpu_quota = plan(queued, [], TWO_CPUS, lambda _o: Quota(cpus=0.5))
    assert cpu_quota.start == []


def test_the_head_that_does_not_fit_blocks_the_jobs_behind_it() -> None:
    running = [_job("run", "carol", status=JobStatus.RUNNING)]
    queued = [_job("big", "alice", cpus=2.0, minute=0), _job("small", "bob", cpus=1.0, minute=1)]
    decided = plan(queued, running, TWO_CPUS, _no_quota)
    assert decided.start == [] and decided.preempt == []  # normal priority: it waits


def test_a_high_job_preempts_the_lowest_priority_newest_jobs_it_needs() -> None:
    running = [
        _job("normal-old", "alice", 1, status=JobStatus.RUNNING, minute=0),
        _job("low-old", "bob", 0, status=JobStatus.RUNNING, minute=1),
        _job("low-new", "bob", 0, status=JobStatus.RUNNING, minute=2),
    ]
    queued = [_job("urgent", "carol", 2, cpus=2.0, minute=3)]
    capacity = Capacity(cpus=3, gpus=0, node_cpus=3, node_gpus=0)
    decided = plan(queued, running, capacity, _no_quota)
    assert decided.start == []
    assert [(victim.id, head.id) for victim, head in decided.preempt] == [
        ("low-new", "urgent"),
        ("low-old", "urgent"),
    ]
    # Jobs already stopping count as leaving: no more victims while they end.
    stopping = [
        _job("normal-old", "alice", 1, status=JobStatus.RUNNING, minute=0),
        _job("low-old", "bob", 0, status=JobStatus.STOPPING, minute=1),
        _job("low-new", "bob", 0, status=JobStatus.STOPPING, minute=2),
    ]
    assert plan(queued, stopping, capacity, _no_quota).preempt == []
    # Nothing is preempted when even all lower-priority jobs would not make room.
    assert plan([_job("huge", priority=2, cpus=5)], running, capacity, _no_quota).preempt == []
