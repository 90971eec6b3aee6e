"""service.lifecycle on hand-made records: every transition, no Ray, no store (milliseconds)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest

from service import lifecycle
from service.lifecycle import Effect, RaySeen, RefusedError, StopReason, Timing
from service.status import JobStatus

Q, P, R = JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING
STOPPING, STOPPED = JobStatus.STOPPING, JobStatus.STOPPED
SUCCEEDED, FAILED, LOST = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.LOST
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
TIMING = Timing(stop_grace_s=20, adopt_after_s=60)


@dataclass(frozen=True)
class Job:
    """The fields `lifecycle.JobView` names, as a record would hold them."""

    id: str = "job1"
    status: JobStatus = Q
    message: str = "queued"
    attempts: int = 0
    ray_job_id: str | None = None
    updated_at: dt.datetime = T0
    started_at: dt.datetime | None = None
    stop_requested_at: dt.datetime | None = None
    stop_reason: str | None = None


def on_ray(status: JobStatus = R, **values: object) -> Job:
    fields = {"attempts": 1, "ray_job_id": "rldojo-job1-1", "message": "training"}
    fields.update(values)
    return replace(Job(status=status), **fields)  # type: ignore[arg-type]


def ray(status: JobStatus, message: str = "", exit_code: int | None = None) -> RaySeen:
    return RaySeen(status, message, T0, T0 if status.is_terminal() else None, exit_code)


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def assert_legal(job: Job, transition: lifecycle.Transition | None) -> None:
    if transition is not None and transition.to is not job.status:
        assert (job.status, transition.to) in lifecycle.LEGAL


# ---- commands ----------------------------------------------------------------------------------


def test_start_claims_the_next_attempt_and_submits_it() -> None:
    first = lifecycle.start(Job())
    assert (first.to, first.values["attempts"], first.effects) == (P, 1, (Effect.SUBMIT,))
    again = lifecycle.start(Job(attempts=2, stop_reason="preempted"))
    assert again.values["attempts"] == 3 and again.values["stop_reason"] is None
    # the rows of attempt 2 are set aside before attempt 3 is submitted
    assert again.effects == (Effect.SET_ASIDE_ROWS, Effect.SUBMIT)
    with pytest.raises(RefusedError):
        lifecycle.start(on_ray(R))


def test_a_refused_start_goes_back_to_the_queue_as_it_was() -> None:
    back = lifecycle.start_refused(on_ray(P, attempts=3, ray_job_id=None), "no agent")
    assert back.to is Q and back.values == {"attempts": 2} and "no agent" in back.message


def test_stop_cancels_a_queued_job_asks_a_running_one_and_forces_a_stopping_one() -> None:
    cancelled = lifecycle.stop(Job(), T0)
    assert cancelled.to is STOPPED and cancelled.values["stop_reason"] == "cancelled"
    assert not cancelled.effects
    for status in (P, R):
        asked = lifecycle.stop(on_ray(status), T0)
        assert asked.to is STOPPING and asked.effects == (Effect.REQUEST_STOP,)
        assert asked.values == {"stop_requested_at": T0, "stop_reason": "user"}
    forced = lifecycle.stop(on_ray(STOPPING, stop_reason="preempted"), T0)
    assert forced.to is STOPPING and forced.effects == (Effect.FORCE_STOP,)
    assert forced.values["stop_reason"] == "user"  # a user's stop ends a preempted job too
    for status in (STOPPED, SUCCEEDED, FAILED, LOST):
        with pytest.raises(RefusedError, match="only"):
            lifecycle.stop(on_ray(status), T0)


def test_preempt_stops_gracefully_with_its_reason() -> None:
    preempted = lifecycle.preempt(on_ray(R), "high1", T0)
    assert preempted.to is STOPPING and preempted.values["stop_reason"] == "preempted"
    assert preempted.effects == (Effect.REQUEST_STOP,) and "high1" in preempted.message
    with pytest.raises(RefusedError):
        lifecycle.preempt(Job(), "high1", T0)


def test_resume_queues_every_ended_job_and_refuses_active_ones() -> None:
    for status in (STOPPED, FAILED, LOST):
        resumed = lifecycle.resume(on_ray(status, stop_reason="user"))
        assert resumed.to is Q and resumed.values["stop_reason"] is None
    for status in (Q, P, R, STOPPING, SUCCEEDED):
        with pytest.raises(RefusedError):
            lifecycle.resume(on_ray(status))


def test_a_finished_job_is_resumed_only_to_a_new_stop() -> None:
    extended = lifecycle.resume(on_ray(SUCCEEDED), extending=True)
    assert extended.to is Q and "new stop" in extended.message
    assert (SUCCEEDED, Q) in lifecycle.LEGAL
    for status in (STOPPED, FAILED, LOST):  # a larger stop on a stopped job is a resume too
        assert lifecycle.resume(on_ray(status), extending=True).to is Q
    for status in (Q, P, R, STOPPING):
        with pytest.raises(RefusedError):
            lifecycle.resume(on_ray(status), extending=True)


# ---- following Ray -------------------------------------------------------------------------------


def test_nothing_to_decide_for_queued_or_ended_jobs() -> None:
    for status in (Q, STOPPED, SUCCEEDED, FAILED, LOST):
        assert lifecycle.decide(on_ray(status), ray(R), None, T0, TIMING) is None


def test_a_running_job_follows_ray_and_shows_what_the_driver_does() -> None:
    pending = on_ray(P, message="starting")
    moved = lifecycle.decide(pending, ray(R), {"message": "waiting for resources"}, T0, TIMING)
    assert moved is not None and (moved.to, moved.message) == (R, "waiting for resources")
    assert moved.values == {"started_at": T0}
    assert_legal(pending, moved)
    same = on_ray(R, message="training", started_at=T0)
    assert lifecycle.decide(same, ray(R), {"message": "training"}, T0, TIMING) is None


def test_a_driver_that_ends_by_itself_ends_the_job_with_a_one_line_reason() -> None:
    job = on_ray(R, started_at=T0)
    done = lifecycle.decide(job, ray(SUCCEEDED), {"phase": "finished"}, T0, TIMING)
    assert done is not None and done.to is SUCCEEDED and done.effects == (Effect.ARCHIVE_LOGS,)
    said = lifecycle.decide(
        job, ray(FAILED, "x"), {"phase": "failed", "message": "E: bad"}, T0, TIMING
    )
    assert said is not None and (said.to, said.message) == (FAILED, "E: bad")
    traceback = "Traceback (most recent call last):\n  f()\nValueError: bad size\n"
    crashed = lifecycle.decide(job, ray(FAILED, traceback, 1), None, T0, TIMING)
    assert crashed is not None and crashed.message == "ValueError: bad size"
    outside = lifecycle.decide(job, ray(STOPPED), None, T0, TIMING)
    assert outside is not None and outside.to is STOPPED and "outside rldojo" in outside.message
    lost = lifecycle.decide(job, ray(LOST, "the Ray cluster lost it"), None, T0, TIMING)
    assert lost is not None and lost.to is LOST
    for transition in (done, said, crashed, outside, lost):
        assert_legal(job, transition)


def test_a_killed_driver_says_which_signal_killed_it() -> None:
    log_tail = "Job entrypoint command failed with exit code -9 ...\ntrial  iter 18 return 80.0"
    killed = lifecycle.decide(
        on_ray(R), ray(FAILED, log_tail, -9), {"phase": "training"}, T0, TIMING
    )
    assert killed is not None and killed.to is FAILED
    assert killed.message.startswith("the driver was killed by SIGKILL (exit code -9)")
    terminated = lifecycle.failure_message(ray(FAILED, "", -15), None)
    assert "SIGTERM" in terminated
    exited = lifecycle.failure_message(ray(FAILED, "last line: iter 3", 2), None)
    assert exited == "the driver exited with code 2: last line: iter 3"


def test_a_stopping_job_ends_stopped_or_queues_again_when_preempted() -> None:
    asked = on_ray(STOPPING, stop_requested_at=T0, stop_reason="user")
    assert lifecycle.decide(asked, ray(R), None, later(5), TIMING) is None  # still ending
    stopped = lifecycle.decide(asked, ray(SUCCEEDED), {"phase": "stopped"}, later(5), TIMING)
    assert stopped is not None and stopped.to is STOPPED
    finished = lifecycle.decide(asked, ray(SUCCEEDED), {"phase": "finished"}, later(5), TIMING)
    assert finished is not None and finished.to is SUCCEEDED  # it finished before the stop
    preempted = replace(asked, stop_reason=StopReason.PREEMPTED.value)
    queued = lifecycle.decide(preempted, ray(STOPPED), None, later(5), TIMING)
    assert queued is not None and queued.to is Q and queued.effects == (Effect.ARCHIVE_LOGS,)
    lost = lifecycle.decide(asked, ray(LOST), None, later(5), TIMING)
    assert lost is not None and lost.to is LOST
    for transition in (stopped, finished, queued, lost):
        assert_legal(asked, transition)


def test_a_stop_not_done_within_the_grace_period_is_forced_once_per_period() -> None:
    asked = on_ray(STOPPING, stop_requested_at=T0, stop_reason="user")
    forced = lifecycle.decide(asked, ray(R), None, later(21), TIMING)
    assert forced is not None and forced.to is STOPPING and forced.effects == (Effect.FORCE_STOP,)
    assert forced.values == {"stop_requested_at": later(21)}
    again = replace(asked, stop_requested_at=later(21))
    assert lifecycle.decide(again, ray(R), None, later(30), TIMING) is None


def test_an_attempt_claimed_but_never_recorded_is_adopted_or_failed_after_a_while() -> None:
    claimed = on_ray(P, ray_job_id=None, attempts=2, message="resuming")
    assert not lifecycle.needs_attempt_lookup(claimed, later(10), TIMING)
    assert lifecycle.decide(claimed, None, None, later(10), TIMING) is None
    assert lifecycle.needs_attempt_lookup(claimed, later(61), TIMING)
    adopted = lifecycle.decide(claimed, None, None, later(61), TIMING, ray_has_attempt=True)
    assert adopted is not None and adopted.to is P
    assert adopted.values == {"ray_job_id": "rldojo-job1-2"}
    failed = lifecycle.decide(claimed, None, None, later(61), TIMING, ray_has_attempt=False)
    assert failed is not None and failed.to is FAILED and "never reached Ray" in failed.message
    # Ray could not be asked: decide nothing yet
    assert lifecycle.decide(claimed, None, None, later(61), TIMING) is None


def test_ray_unreachable_decides_nothing() -> None:
    assert lifecycle.decide(on_ray(R), None, {"message": "x"}, T0, TIMING) is None


def test_every_status_pair_a_command_or_decision_makes_is_listed_as_legal() -> None:
    """Drive every command and decision over every status and Ray answer: each change of
    status they make is in LEGAL, and nothing else changes status."""
    made = set()
    commands = [
        lambda job: lifecycle.start(job),
        lambda job: lifecycle.stop(job, T0),
        lambda job: lifecycle.preempt(job, "h", T0),
        lambda job: lifecycle.resume(job),
        lambda job: lifecycle.resume(job, extending=True),
        lambda job: lifecycle.start_refused(job, "why"),
    ]
    for status in JobStatus:
        for reason in (None, "user", "preempted"):
            job = on_ray(status, stop_reason=reason, stop_requested_at=T0)
            for command in commands:
                try:
                    transition = command(job)
                except RefusedError:
                    continue
                assert_legal(job, transition)
                made.add((status, transition.to))
            for answer in JobStatus:
                for progress in (None, {"phase": "finished"}):
                    decided = lifecycle.decide(job, ray(answer), progress, later(30), TIMING)
                    assert_legal(job, decided)
                    if decided is not None:
                        made.add((status, decided.to))
    changes = {pair for pair in made if pair[0] is not pair[1]}
    assert changes <= lifecycle.LEGAL
    # and LEGAL lists nothing that can never happen
    assert lifecycle.LEGAL <= changes
