"""Training jobs: submit, queue, follow, stop, resume and delete them over the store, storage and
Ray.

A submitted job waits QUEUED in the job store until the scheduler (service/scheduler.py) gives
it room: it then starts as PENDING and follows Ray. A resume, and a job preempted by a high one,
queue the same way. Each job attempt is one Ray job (`rldojo-<job id>-<attempt>`) running
`rldojo train --job-dir <storage>/jobs/<id> --attempt <n>`: the spec travels by storage (the
API writes `spec.json` and the resolved `config.json` into the job directory at submit, and the
trainer reads them there), and the driver is its own process on the cluster, outliving the API.

The store is the source of truth for who owns what; a job's status follows Ray's through
`reconcile`, which the supervisor thread runs every few seconds and every read runs too. Status
writes are compare-and-swap on the prior status, so a stop, a resume and a reconcile never
overwrite one another.

Stopping is a state machine that cannot report a stop that has not happened:

    QUEUED --stop--> STOPPED (cancelled: nothing ran)
    PENDING | RUNNING --stop--> STOPPING --(Ray: the driver ended)--> STOPPED
                                   |
                                   +-- after `stop_grace_seconds`, or a repeated stop:
                                       Ray Jobs' stop (SIGTERM, SIGKILL after a while)

`stop` writes a stop request into the job directory: the trainer ends Tune gracefully when it
sees it (within a second), or never starts training if it sees it at start-up. STOPPED is
written only once Ray reports the driver process gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from typing import Any

import httpx

from service import cluster, scheduler
from service.admission import (
    Capacity,
    check_fits,
    check_held_fits,
    check_quota,
    held_while_running,
    with_concurrency,
)
from service.cluster import ClusterUnavailableError, RayJobs, node_command
from service.jobdir import JobDirectory
from service.settings import Settings
from service.spec import JobSpec
from service.status import ACTIVE, ON_RAY, PRIORITIES, RESUMABLE, JobStatus, root_cause
from service.storage import Storage
from service.store import JobRecord, Store, new_id

logger = logging.getLogger(__name__)


class ConflictError(Exception):
    """The job is in a state that does not allow the request (HTTP 409)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def submission_id(job_id: str, attempt: int) -> str:
    return f"rldojo-{job_id}-{attempt}"


class JobService:
    """Everything the routes do with jobs, over the store, the storage and Ray Jobs."""

    def __init__(self, *, settings: Settings, store: Store, storage: Storage, ray: RayJobs) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.ray = ray

    def directory(self, job: JobRecord | str) -> JobDirectory:
        """The job's directory on storage."""
        return self.storage.job(job if isinstance(job, str) else job.id)

    # ---- commands ---------------------------------------------------------------------------

    def submit(self, *, owner: str, spec: JobSpec) -> JobRecord:
        """Admit the job, write its spec and resolved config to its directory, and queue it.

        Raises:
            SpecError: one trial could never fit the cluster, or the job never its quota.
            ClusterUnavailableError: the cluster cannot be asked what it has.
        """
        from service.training import build_config, resolved_config, trial_resources

        config = build_config(spec)
        bundles = trial_resources(config)
        capacity = self.capacity()
        check_fits(spec, bundles, capacity)
        quota = self.settings.quota_of(owner)
        spec = with_concurrency(spec, bundles, capacity, quota)
        cpus, gpus = held_while_running(spec, bundles)
        check_held_fits(spec, cpus, gpus, capacity)
        check_quota(spec, cpus, gpus, quota)
        job_id = new_id()
        directory = self.directory(job_id)
        spec_json = spec.model_dump(mode="json")
        resolved = resolved_config(config, spec)
        directory.write_spec(spec_json)
        directory.write_config(resolved)
        self.store.create_job(
            job_id=job_id,
            owner=owner,
            spec=spec_json,
            status=JobStatus.QUEUED,
            message="queued",
            storage_uri=directory.uri,
            resolved_config=resolved,
            priority=PRIORITIES.index(spec.priority),
            name=spec.name,
            tags=spec.tags,
            shared=spec.shared,
            cpus=cpus,
            gpus=gpus,
        )
        self.schedule()
        return self._get(job_id)

    # ---- the queue --------------------------------------------------------------------------

    def schedule(self) -> None:
        """One scheduler pass: start what fits in order, preempt for a high job that does not."""
        with self.store.scheduling():
            queued = self.store.list_jobs(statuses=[JobStatus.QUEUED])
            if not queued:
                return
            active = self.store.list_jobs(statuses=list(ON_RAY))
            try:
                capacity = self.capacity()
            except ClusterUnavailableError as error:
                logger.warning("scheduler: %s", error)
                return
            decided = scheduler.plan(queued, active, capacity, self.settings.quota_of)
            for victim, head in decided.preempt:
                self._preempt(victim, head)
            for job in decided.start:
                self._start_queued(job)

    def queue_positions(self) -> dict[str, int]:
        """Each queued job's place in the queue (1 starts next), as the scheduler orders it."""
        queued = self.store.list_jobs(statuses=[JobStatus.QUEUED])
        if not queued:
            return {}
        running = Counter(job.owner for job in self.store.list_jobs(statuses=list(ON_RAY)))
        return {job.id: place for place, job in enumerate(scheduler.order(queued, running), 1)}

    def _start_queued(self, job: JobRecord) -> None:
        """Start a queued job's next attempt: the first, or a resume from its checkpoints."""
        attempt = job.attempts + 1
        if job.attempts:
            self.directory(job).keep_attempt_rows(job.attempts)
        claimed = self._set_status(
            job,
            JobStatus.PENDING,
            message="starting" if attempt == 1 else "resuming from the last checkpoint",
            ray_job_id=None,
            attempts=attempt,
            ended_at=None,
            stop_requested_at=None,
        )
        if not claimed:
            return
        try:
            self._start_attempt(self._get(job.id), attempt=attempt)
        except ClusterUnavailableError as error:
            self.store.update_job_status(
                job_id=job.id,
                expected=[JobStatus.PENDING],
                status=JobStatus.QUEUED,
                attempts=job.attempts,
                message=f"queued (the cluster could not take it: {error})",
            )

    def _preempt(self, victim: JobRecord, head: JobRecord) -> None:
        """Stop a running job gracefully to make room for `head`; it queues again afterwards."""
        self.directory(victim).request_stop(victim.attempts)
        self._set_status(
            victim,
            JobStatus.STOPPING,
            requeue=True,
            stop_requested_at=_now(),
            message=f"preempted by job {head.id} (high priority): stopping; it resumes from "
            "its last checkpoint when there is room",
        )
        logger.info("job %s preempted for job %s", victim.id, head.id)

    def update(self, *, job: JobRecord, changes: dict[str, Any]) -> JobRecord:
        """Change a job's priority, name, tags or sharing (PATCH); the queue re-orders."""
        spec = {**job.spec, **changes}
        if "priority" in changes:
            changes["priority"] = PRIORITIES.index(changes["priority"])
        self.store.update_job(job_id=job.id, spec=spec, **changes)
        self.directory(job).write_spec(spec)
        if job.status is JobStatus.QUEUED:
            self.schedule()
        return self._get(job.id)

    def capacity(self) -> Capacity:
        """What the cluster can ever offer one trial (live totals, or the configured maxima)."""
        try:
            summary = cluster.cluster_summary(self.ray.connect())
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None
        return Capacity.from_summary(
            summary, self.settings.max_cluster_cpus, self.settings.max_cluster_gpus
        )

    def _start_attempt(self, job: JobRecord, *, attempt: int) -> None:
        run = node_command(
            "rldojo", ["train", "--job-dir", self.directory(job).uri, "--attempt", str(attempt)]
        )
        sid = submission_id(job.id, attempt)
        self.ray.submit(
            entrypoint=run,
            submission_id=sid,
            metadata={"rldojo_job_id": job.id, "owner": job.owner, "attempt": str(attempt)},
        )
        self.store.update_job(job_id=job.id, ray_job_id=sid, attempts=attempt)
        logger.info("job %s attempt %d submitted as %s", job.id, attempt, sid)

    def stop(self, *, job: JobRecord, wait_s: float = 20.0) -> JobRecord:
        """Stop a job; returns it STOPPED once its driver is gone, or STOPPING until then.

        A stop of a STOPPING job forces it at once (Ray Jobs' stop), so a stop can be repeated
        until it is true.
        """
        job = self.reconcile(job)
        if job.status.is_terminal():
            raise ConflictError(f"job {job.id} is already {job.status}")
        if job.status is JobStatus.QUEUED:
            if not self._set_status(job, JobStatus.STOPPED, message="cancelled while queued"):
                return self.stop(job=self._get(job.id), wait_s=wait_s)
            return self._get(job.id)
        if job.status is JobStatus.STOPPING:
            self._force_stop(job)
        else:
            self.directory(job).request_stop(job.attempts)
            claimed = self._set_status(
                job,
                JobStatus.STOPPING,
                message="stopping: waiting for the trainer to end",
                stop_requested_at=_now(),
                requeue=False,
            )
            if not claimed:
                return self.stop(job=self._get(job.id), wait_s=wait_s)
        deadline = time.monotonic() + wait_s
        current = self.reconcile(self._get(job.id))
        while not current.status.is_terminal() and time.monotonic() < deadline:
            time.sleep(0.25)
            current = self.reconcile(current)
        return current

    def _force_stop(self, job: JobRecord) -> None:
        if job.ray_job_id:
            sent = self.ray.stop(job.ray_job_id)
            logger.info("job %s: Ray Jobs stop sent (driver running: %s)", job.id, sent)

    def resume(self, *, job: JobRecord) -> JobRecord:
        """Queue a stopped, failed or lost job to continue from its last checkpoints."""
        job = self.reconcile(job)
        if job.status not in RESUMABLE:
            allowed = ", ".join(sorted(s.value for s in RESUMABLE))
            raise ConflictError(f"job {job.id} is {job.status}; only {allowed} jobs can resume")
        claimed = self._set_status(
            job,
            JobStatus.QUEUED,
            message="queued to resume from the last checkpoint",
            ended_at=None,
            stop_requested_at=None,
        )
        if not claimed:
            raise ConflictError(f"job {job.id} changed state meanwhile; try again")
        self.schedule()
        return self._get(job.id)

    def delete(self, *, job: JobRecord, purge: bool) -> None:
        """Remove the records (refused while active); with `purge`, the files too."""
        job = self.reconcile(job)
        if not job.status.is_terminal():
            raise ConflictError(f"job {job.id} is {job.status}; stop it before deleting")
        for attempt in range(1, job.attempts + 1):
            self.ray.delete(submission_id(job.id, attempt))
        self.store.delete_job(job_id=job.id)
        if purge:
            self.directory(job).delete()

    # ---- following Ray ----------------------------------------------------------------------

    def _get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id=job_id)
        assert job is not None
        return job

    def _set_status(self, job: JobRecord, status: JobStatus, **values: Any) -> bool:
        """Compare-and-swap from the status *and attempt* `job` was read with."""
        return self.store.update_job_status(
            job_id=job.id, expected=[job.status], status=status, attempt=job.attempts, **values
        )

    def reconcile(self, job: JobRecord) -> JobRecord:
        """Bring an active job's status in line with Ray's; returns the fresh record."""
        if job.status in ON_RAY and not job.ray_job_id and job.attempts:
            return self._adopt_or_fail(job)
        if job.status not in ON_RAY or not job.ray_job_id:
            return job
        try:
            state = self.ray.state(job.ray_job_id)
        except ClusterUnavailableError as error:
            logger.warning("cannot reconcile job %s: %s", job.id, error)
            return job
        if job.status is JobStatus.STOPPING:
            return self._reconcile_stopping(job, state)
        if state.status.is_terminal():
            return self._finish(job, state.status, state)
        values: dict[str, Any] = {}
        if state.started_at is not None and job.started_at is None:
            values["started_at"] = state.started_at
        message = self._progress_message(job) or state.message
        if state.status is not job.status or message != job.message or values:
            self._set_status(job, state.status, message=message, **values)
            return self._get(job.id)
        return job

    def _adopt_or_fail(self, job: JobRecord, after_s: float = 60.0) -> JobRecord:
        """An attempt claimed but never recorded as submitted (the API stopped in between):
        after a minute, take up its Ray job if Ray has it, else fail it with the reason."""
        if (_now() - job.updated_at).total_seconds() < after_s:
            return job
        sid = submission_id(job.id, job.attempts)
        try:
            known = self.ray.info(sid) is not None
        except ClusterUnavailableError:
            return job
        if known:
            self.store.update_job(job_id=job.id, ray_job_id=sid)
        else:
            self._set_status(
                job,
                JobStatus.FAILED,
                message=f"attempt {job.attempts} never reached Ray (the API stopped); resume it",
                ended_at=_now(),
            )
        return self._get(job.id)

    def _reconcile_stopping(self, job: JobRecord, state: cluster.RayState) -> JobRecord:
        if state.status.is_terminal() and job.requeue:
            self._archive_logs(job)
            self._set_status(
                job,
                JobStatus.QUEUED,
                requeue=False,
                message=job.message.replace(": stopping;", ";", 1),
            )
            return self._get(job.id)
        if state.status.is_terminal():
            progress = self.directory(job).read_progress(job.attempts) or {}
            finished_first = (
                state.status is JobStatus.SUCCEEDED and progress.get("phase") == "finished"
            )
            final = JobStatus.SUCCEEDED if finished_first else JobStatus.STOPPED
            return self._finish(job, final, state)
        asked = job.stop_requested_at or job.updated_at
        if (_now() - asked).total_seconds() > self.settings.stop_grace_seconds:
            self._force_stop(job)
        return job

    def _finish(self, job: JobRecord, status: JobStatus, state: cluster.RayState) -> JobRecord:
        """Write a terminal status once, with a one-line reason, and keep the driver's log."""
        message = self._end_message(job, status, state)
        self._archive_logs(job)
        self._set_status(
            job,
            status,
            message=message,
            ended_at=state.ended_at or _now(),
            started_at=job.started_at or state.started_at,
        )
        return self._get(job.id)

    def _end_message(self, job: JobRecord, status: JobStatus, state: cluster.RayState) -> str:
        if status is JobStatus.STOPPED:
            return "stopped by the user; resume continues from the last checkpoint"
        if status is JobStatus.LOST:
            return state.message
        progress = self.directory(job).read_progress(job.attempts) or {}
        if status is JobStatus.FAILED and progress.get("phase") == "failed":
            return str(progress.get("message", ""))
        if status is JobStatus.FAILED:
            return root_cause(state.message)
        return ""

    def _progress_message(self, job: JobRecord) -> str | None:
        """What the trainer says it is doing (starting, waiting for resources, training)."""
        if job.status is JobStatus.PENDING and job.attempts == 0:
            return None
        progress = self.directory(job).read_progress(job.attempts)
        return str(progress["message"]) if progress and progress.get("message") else None

    def reconcile_all(self) -> int:
        """Reconcile every active job (start-up recovery and the supervisor); how many."""
        active = self.store.list_jobs(statuses=list(ACTIVE))
        for job in active:
            try:
                self.reconcile(job)
            except Exception:  # one broken job must not stop the others being followed
                logger.exception("reconciling job %s failed", job.id)
        return len(active)

    def supervise(self, stop: threading.Event, period_s: float = 2.0) -> None:
        """Follow every active job until `stop` is set (the API's supervisor thread)."""
        while not stop.wait(period_s):
            try:
                self.reconcile_all()
                self.schedule()
            except Exception:
                logger.exception("supervisor pass failed")

    def _archive_logs(self, job: JobRecord) -> None:
        """Keep a finished attempt's driver log on storage (it outlives the Ray cluster)."""
        if job.ray_job_id and job.attempts:
            text = self.ray.logs(job.ray_job_id)
            if text is not None:
                self.directory(job).write_log(job.attempts, text)

    # ---- reading ----------------------------------------------------------------------------

    def logs(self, job: JobRecord) -> str:
        """All attempts' driver logs: archived ones from storage, the live one from Ray."""
        directory = self.directory(job)
        parts = []
        for attempt in range(1, job.attempts + 1):
            text = directory.read_log(attempt)
            if text is None and attempt == job.attempts and job.ray_job_id:
                text = self.ray.logs(job.ray_job_id)
            if text:
                parts.append(text)
        return "".join(parts)

    def summary(self, job: JobRecord) -> dict[str, Any]:
        """Latest metrics, the best trial and the number of checkpoints."""
        return self.directory(job).summary()
