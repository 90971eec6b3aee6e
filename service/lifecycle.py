"""A job's life cycle as data: every legal transition, and pure functions that choose one.

    QUEUED ──start──▶ PENDING ──(Ray)──▶ RUNNING ──(Ray)──▶ SUCCEEDED | FAILED
      │                 │                   │
      │                 └───────stop────────┴──▶ STOPPING ──(driver gone)──▶ STOPPED
      │                         preempt ─────────────┘  └──(preempted)──▶ QUEUED
      └──stop (cancel)──▶ STOPPED             any job on Ray ──(Ray forgot it)──▶ LOST
    STOPPED | FAILED | LOST ──resume──▶ QUEUED       SUCCEEDED ──resume to a new stop──▶ QUEUED

What happens to a job is decided here and nowhere else. A *command* (a user's stop or resume,
the scheduler's start or preemption) and an *observation* (what Ray says of the job's
driver, what the driver wrote in its progress file, the clock) go in; a `Transition` comes
out: the status to write, the values to write with it, and the effects to carry out once the
write won (ask the driver to stop, force Ray to stop it, submit an attempt, keep logs).
`JobService` (service/jobs.py) only carries decisions out: it reads a record, asks this module,
writes compare-and-swap, and does the effects. Nothing here does I/O, so the tests drive every
transition on hand-made records (tests/service/test_lifecycle_decide.py).

Why a job stopped is a `StopReason` on the record, not text: the user's stop ends the job,
a preemption puts it back in the queue, a stop while queued cancels it.
"""

from __future__ import annotations

import datetime as dt
import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from service.status import ON_RAY, RESUMABLE, JobStatus, root_cause

Q, P, R = JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING
STOPPING, STOPPED = JobStatus.STOPPING, JobStatus.STOPPED
SUCCEEDED, FAILED, LOST = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.LOST

# Every legal change of status, once. A transition to the same status (a new message, a
# forced stop while STOPPING, adopting a Ray job) is always legal.
LEGAL: frozenset[tuple[JobStatus, JobStatus]] = frozenset(
    {
        (Q, P),  # the scheduler starts it
        (Q, STOPPED),  # cancelled while queued
        (P, Q),  # the cluster refused the attempt: back in the queue
        (P, R),  # Ray started the driver
        *((s, STOPPING) for s in (P, R)),  # stop or preemption asked
        *((s, end) for s in (P, R) for end in (SUCCEEDED, FAILED, STOPPED, LOST)),  # Ray ended it
        (STOPPING, STOPPED),  # the driver is gone
        (STOPPING, SUCCEEDED),  # it finished before it saw the stop
        (STOPPING, Q),  # preempted: queued to resume
        (STOPPING, LOST),
        *((s, Q) for s in RESUMABLE),  # resume
        (SUCCEEDED, Q),  # extended to a new stop
    }
)


class StopReason(str, Enum):  # noqa: UP042 - stored and shown as its plain value
    """Why a job was asked to stop."""

    USER = "user"  # its owner asked: it ends STOPPED
    PREEMPTED = "preempted"  # a higher-priority job needed the room: it queues again
    CANCELLED = "cancelled"  # stopped while queued: nothing ran

    def __str__(self) -> str:
        return self.value


class Effect(str, Enum):  # noqa: UP042
    """What the service does once a transition is written."""

    REQUEST_STOP = "request_stop"  # write the attempt's stop request; the driver ends itself
    FORCE_STOP = "force_stop"  # Ray Jobs' stop: SIGTERM, then SIGKILL
    SUBMIT = "submit"  # submit the attempt's driver to Ray Jobs
    SET_ASIDE_ROWS = "set_aside_rows"  # keep the last attempt's rows before the next starts
    ARCHIVE_LOGS = "archive_logs"  # keep the ended attempt's driver log on storage


class JobView(Protocol):
    """The fields of a job record a decision reads (service.store.JobRecord has them)."""

    id: str
    status: JobStatus
    message: str
    attempts: int
    ray_job_id: str | None
    updated_at: dt.datetime
    started_at: dt.datetime | None
    stop_requested_at: dt.datetime | None
    stop_reason: str | None


@dataclass(frozen=True)
class RaySeen:
    """What Ray Jobs says of the job's current attempt (service.cluster.RayState's fields)."""

    status: JobStatus
    message: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    exit_code: int | None = None


@dataclass(frozen=True)
class Timing:
    """The operator's clocks: how long a stop may take gracefully, how long an attempt may
    sit claimed without a Ray job before it is looked up (the API stopped mid-submit)."""

    stop_grace_s: float = 20.0
    adopt_after_s: float = 60.0


@dataclass(frozen=True)
class Transition:
    """A status to write (compare-and-swap from the record's) with its values and effects."""

    to: JobStatus
    message: str
    values: dict[str, Any] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()


class RefusedError(Exception):
    """The command is not allowed in the job's status (HTTP 409)."""


def submission_id(job_id: str, attempt: int) -> str:
    """The Ray Jobs submission id of a job's attempt."""
    return f"rldojo-{job_id}-{attempt}"


# ---- commands --------------------------------------------------------------------------------


def start(job: JobView) -> Transition:
    """The scheduler starts a queued job's next attempt (a resume when it ran before)."""
    _require(job, {Q}, "start")
    attempt = job.attempts + 1
    effects = (Effect.SET_ASIDE_ROWS, Effect.SUBMIT) if job.attempts else (Effect.SUBMIT,)
    message = "starting" if attempt == 1 else "resuming from the last checkpoint"
    values = {
        "attempts": attempt,
        "ray_job_id": None,
        "ended_at": None,
        "stop_requested_at": None,
        "stop_reason": None,
    }
    return Transition(P, message, values, effects)


def start_refused(job: JobView, why: str) -> Transition:
    """The cluster would not take the attempt just claimed: back in the queue, as it was."""
    _require(job, {P}, "put back")
    return Transition(
        Q, f"queued (the cluster could not take it: {why})", {"attempts": job.attempts - 1}
    )


def stop(job: JobView, now: dt.datetime) -> Transition:
    """The owner stops a job: a queued one is cancelled; a running one is asked to end; a
    stopping one (asked before) is forced."""
    if job.status is Q:
        return Transition(
            STOPPED, "cancelled while queued", {"stop_reason": StopReason.CANCELLED.value}
        )
    if job.status is STOPPING:
        # A user's stop turns a preemption into a real stop: the job must not queue again.
        return Transition(
            STOPPING,
            "stopping: forced (Ray Jobs stops its driver)",
            {"stop_reason": StopReason.USER.value},
            (Effect.FORCE_STOP,),
        )
    _require(job, {P, R}, "stop")
    return Transition(
        STOPPING,
        "stopping: waiting for the trainer to end",
        {"stop_requested_at": now, "stop_reason": StopReason.USER.value},
        (Effect.REQUEST_STOP,),
    )


def preempt(job: JobView, by: str, now: dt.datetime) -> Transition:
    """The scheduler makes room for job `by`: this one ends gracefully and queues again."""
    _require(job, {P, R}, "preempt")
    return Transition(
        STOPPING,
        f"preempted by job {by} (high priority): stopping, then queued to resume",
        {"stop_requested_at": now, "stop_reason": StopReason.PREEMPTED.value},
        (Effect.REQUEST_STOP,),
    )


def resume(job: JobView, extending: bool = False) -> Transition:
    """The owner continues a stopped, failed or lost job from its last checkpoints; one that
    is `extending` to a new stop may also have finished (its trials paused at the old one)."""
    _require(job, set(RESUMABLE) | ({SUCCEEDED} if extending else set()), "resume")
    message = "queued to continue to its new stop" if extending else "queued to resume"
    return Transition(
        Q,
        f"{message} from the last checkpoint",
        {"ended_at": None, "stop_requested_at": None, "stop_reason": None},
    )


def _require(job: JobView, allowed: set[JobStatus], command: str) -> None:
    if job.status not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise RefusedError(f"job {job.id} is {job.status}; only {names} jobs can {command}")


# ---- following Ray -----------------------------------------------------------------------------


def decide(
    job: JobView,
    ray: RaySeen | None,
    progress: dict[str, Any] | None,
    now: dt.datetime,
    timing: Timing,
    *,
    ray_has_attempt: bool | None = None,
) -> Transition | None:
    """What an active job's record should become, given what Ray and its driver say now.

    Args:
        job: the record as read.
        ray: Ray's word on the current attempt (`ray_job_id`); None when it was not asked
            (no Ray job recorded) or could not be reached.
        progress: the attempt's progress file (`phase`, `message`), None if none yet.
        now: the time of the decision.
        timing: the grace and adoption periods.
        ray_has_attempt: for an attempt claimed but never recorded as submitted, whether Ray
            knows its submission id (None: not asked).

    Returns:
        The transition to make, or None when the record already says what is true.
    """
    if job.status not in ON_RAY or not job.attempts:
        return None
    if not job.ray_job_id:
        return _unrecorded_attempt(job, now, timing, ray_has_attempt)
    if ray is None:
        return None
    if job.status is STOPPING:
        return _stopping(job, ray, progress, now, timing)
    if ray.status.is_terminal():
        return _ended(job, ray, progress)
    return _running(job, ray, progress)


def needs_attempt_lookup(job: JobView, now: dt.datetime, timing: Timing) -> bool:
    """True when `decide` needs `ray_has_attempt`: an attempt claimed long ago, never recorded."""
    waited = (now - job.updated_at).total_seconds()
    return (
        job.status in ON_RAY
        and bool(job.attempts)
        and not job.ray_job_id
        and (waited >= timing.adopt_after_s)
    )


def _unrecorded_attempt(
    job: JobView, now: dt.datetime, timing: Timing, ray_has_attempt: bool | None
) -> Transition | None:
    """The API stopped between claiming an attempt and recording its submission: after a
    while, take up its Ray job if Ray has one, else fail it with the reason."""
    if not needs_attempt_lookup(job, now, timing) or ray_has_attempt is None:
        return None
    if ray_has_attempt:
        return Transition(
            job.status, job.message, {"ray_job_id": submission_id(job.id, job.attempts)}
        )
    return Transition(
        FAILED,
        f"attempt {job.attempts} never reached Ray (the API stopped); resume it",
        {"ended_at": now},
    )


def _stopping(
    job: JobView,
    ray: RaySeen,
    progress: dict[str, Any] | None,
    now: dt.datetime,
    timing: Timing,
) -> Transition | None:
    if ray.status is LOST:
        return Transition(LOST, ray.message, {"ended_at": now}, (Effect.ARCHIVE_LOGS,))
    if ray.status.is_terminal():
        if job.stop_reason == StopReason.PREEMPTED.value:
            return Transition(
                Q,
                "preempted by a high-priority job; queued to resume from its last checkpoint",
                {"ended_at": None},
                (Effect.ARCHIVE_LOGS,),
            )
        finished_first = ray.status is SUCCEEDED and (progress or {}).get("phase") == "finished"
        ended = {"ended_at": ray.ended_at or now, "started_at": job.started_at or ray.started_at}
        if finished_first:
            return Transition(SUCCEEDED, "", ended, (Effect.ARCHIVE_LOGS,))
        return Transition(
            STOPPED,
            "stopped by the user; resume continues from the last checkpoint",
            ended,
            (Effect.ARCHIVE_LOGS,),
        )
    asked = job.stop_requested_at or job.updated_at
    if (now - asked).total_seconds() > timing.stop_grace_s:
        waited = f"{timing.stop_grace_s:g} s"
        return Transition(
            STOPPING,
            f"stopping: forced after {waited} (Ray Jobs stops its driver)",
            {"stop_requested_at": now},  # the next force, if needed, after another grace
            (Effect.FORCE_STOP,),
        )
    return None


def _ended(job: JobView, ray: RaySeen, progress: dict[str, Any] | None) -> Transition:
    """Ray says the attempt's driver ended by itself: write how, once, with a one-line why."""
    values = {"ended_at": ray.ended_at, "started_at": job.started_at or ray.started_at}
    status = ray.status
    if status is LOST:
        return Transition(LOST, ray.message, values, (Effect.ARCHIVE_LOGS,))
    if status is STOPPED:
        message = "stopped outside rldojo (Ray Jobs stopped its driver)"
    elif status is FAILED:
        message = failure_message(ray, progress)
    else:
        message = ""
    return Transition(status, message, values, (Effect.ARCHIVE_LOGS,))


def _running(job: JobView, ray: RaySeen, progress: dict[str, Any] | None) -> Transition | None:
    """A live attempt: follow Ray's PENDING -> RUNNING and show what the driver is doing."""
    told = (progress or {}).get("message")
    message = str(told) if told else ray.message or job.message
    values: dict[str, Any] = {}
    if ray.started_at is not None and job.started_at is None:
        values["started_at"] = ray.started_at
    status = R if R in (ray.status, job.status) else job.status  # never back to PENDING
    if status is job.status and message == job.message and not values:
        return None
    return Transition(status, message, values)


def failure_message(ray: RaySeen, progress: dict[str, Any] | None) -> str:
    """One line saying why an attempt failed: the driver's own word when it wrote one, else
    how its process ended (the signal that killed it, or its exit code) and the root cause.

    Example:
        >>> seen = RaySeen(FAILED, "Job entrypoint command failed ...\\niter 18", None, None, -9)
        >>> failure_message(seen, {"phase": "training"})
        'the driver was killed by SIGKILL (exit code -9); resume continues from the last checkpoint'
    """
    told = progress or {}
    if told.get("phase") == "failed" and told.get("message"):
        return str(told["message"])
    code = ray.exit_code
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (
            f"the driver was killed by {name} (exit code {code}); resume continues from the "
            "last checkpoint"
        )
    cause = root_cause(ray.message)
    if code is not None and code > 0 and not _names_an_error(cause):
        return f"the driver exited with code {code}: {cause}" if cause else f"exit code {code}"
    return cause


def _names_an_error(line: str) -> bool:
    head = line.split(":", 1)[0]
    return head.endswith(("Error", "Exception"))
