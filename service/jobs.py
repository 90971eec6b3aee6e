"""Training jobs: the service that carries out the life cycle's decisions (service/lifecycle.py).

Every change of a job's status is decided by a pure function of `service.lifecycle` (a user's
stop or resume, the scheduler's start or preemption, what Ray says of a driver) and written
here compare-and-swap on the status and attempt it was decided from, so a stop, a resume, the
scheduler and the supervisor never overwrite one another; the effects (a stop request in the
job directory, Ray Jobs' submit or stop, the driver's log kept) follow the write that won.

Reads have no side effects: the routes read the store, and the supervisor thread (`supervise`)
follows Ray for every active job every couple of seconds. No lock is held across a network
call: a scheduler pass asks the cluster what it has, then plans and claims under the lock, and
submits to Ray after it.

Each attempt of a job is one Ray job (`rldojo-<job id>-<attempt>`) running the driver
(`python -m service.driver --job-dir <storage>/jobs/<id> --attempt <n>`): the spec and its
compiled config travel by storage (the API writes them into the job directory at submit), and
the driver is its own process on the cluster, outliving the API.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.exc import IntegrityError

from service import cluster, compiler, idempotency, lifecycle, quiet, scheduler, warm_starts
from service.admission import (
    Admitted,
    Capacity,
    check_fits,
    check_held_fits,
    check_priority,
    check_quota,
    held_while_running,
    with_concurrency,
)
from service.cluster import ClusterUnavailableError, RayJobs, node_command
from service.extending import extend
from service.jobdir import JobDirectory
from service.lifecycle import Effect, RaySeen, RefusedError, Transition, submission_id
from service.recent import Recent
from service.settings import Settings
from service.spec import JobSpec
from service.status import ACTIVE, ON_RAY, PRIORITIES, JobStatus
from service.storage import Storage
from service.store import JobRecord, Store, new_id

logger = logging.getLogger(__name__)

ConflictError = RefusedError  # the routes' 409: a command the job's status does not allow

__all__ = ["Admitted", "ConflictError", "JobService", "submission_id"]

SUMMARY_FRESH_S = 1.0  # how stale a read's job summary may be: its rows change per iteration
READ_FRESH_S = 1.0  # how long a read answer lasts when no job write happens in this process


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobService:
    """Everything the routes and the supervisor do with jobs, over the store, storage and Ray."""

    def __init__(self, *, settings: Settings, store: Store, storage: Storage, ray: RayJobs) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.ray = ray
        self.timing = lifecycle.Timing(stop_grace_s=settings.stop_grace_seconds)
        self._summaries: Recent[dict[str, Any]] = Recent(SUMMARY_FRESH_S)
        # The answers of GET /v1/jobs and /v1/jobs/{id}, per caller and query: thirty clients
        # polling share one store query per write (or per second) instead of one each.
        self.reads: Recent[bytes] = Recent(READ_FRESH_S)

    def directory(self, job: JobRecord | str) -> JobDirectory:
        """The job's directory on storage."""
        return self.storage.job(job if isinstance(job, str) else job.id)

    def get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id=job_id)
        assert job is not None, f"job {job_id} vanished"
        return job

    # ---- commands ---------------------------------------------------------------------------

    def check(self, *, owner: str, spec: JobSpec) -> Admitted:
        """Everything `submit` checks, without writing anything (POST /v1/jobs/validate).

        Raises:
            SpecError: one trial could never fit the cluster, or the job never its quota.
            PriorityRefusedError: `high` beyond the owner's quota of high-priority jobs.
            ClusterUnavailableError: the cluster cannot be asked what it has.
        """
        quota = self.settings.quota_of(owner)
        check_priority(owner, spec.priority, self._high_jobs(owner), quota)
        warm_start = None
        if spec.from_checkpoint is not None:
            warm_start = warm_starts.resolve(self.store, self.storage, owner, spec)
            spec = warm_starts.naming_the_checkpoint(spec, warm_start)
        capacity = self.capacity()
        compiled = compiler.compile_job(
            spec,
            cluster_gpus=capacity.node_gpus,
            mlflow_uri=self.settings.mlflow_tracking_uri,
            warm_start=warm_start,
        )
        bundles = compiled.trial_resources
        check_fits(spec, bundles, capacity)
        spec = with_concurrency(spec, bundles, capacity, quota)
        cpus, gpus = held_while_running(spec, bundles)
        check_held_fits(spec, cpus, gpus, capacity)
        check_quota(spec, cpus, gpus, quota)
        return Admitted(compiled.model_copy(update={"spec": spec}), cpus, gpus)

    def submit(
        self, *, owner: str, spec: JobSpec, idempotency_key: str | None = None
    ) -> tuple[JobRecord, bool]:
        """Admit the job, write its spec and compiled job to its directory, and queue it;
        returns it and True. The owner's job submitted with `idempotency_key` before (with the
        same spec) is returned instead, with False: nothing is written or started again.

        Nothing stays on storage when the record cannot be written.

        Raises:
            KeyReusedError: the key came before with another spec.
        """
        request = idempotency.fingerprint(spec)
        earlier = idempotency.earlier_job(self.store, owner, idempotency_key, request)
        if earlier is not None:
            return earlier, False
        admitted = self.check(owner=owner, spec=spec)
        spec = admitted.spec
        job_id = new_id()
        directory = self.directory(job_id)
        spec_json = spec.model_dump(mode="json")
        directory.write_spec(spec_json)
        directory.write_compiled(admitted.compiled.model_dump(mode="json"))
        try:
            self.store.create_job(
                job_id=job_id,
                owner=owner,
                spec=spec_json,
                status=JobStatus.QUEUED,
                message="queued",
                storage_uri=directory.uri,
                resolved_config=admitted.resolved_config,
                priority=PRIORITIES.index(spec.priority),
                name=spec.name,
                tags=spec.tags,
                shared=spec.shared,
                cpus=admitted.cpus,
                gpus=admitted.gpus,
                idempotency_key=idempotency_key,
                request_fingerprint=request,
            )
        except Exception as error:
            directory.delete()
            # A submit with the same key won the race to the unique index: answer its job.
            if not isinstance(error, IntegrityError) or idempotency_key is None:
                raise
            raced = idempotency.earlier_job(self.store, owner, idempotency_key, request)
            if raced is None:
                raise
            return raced, False
        self.schedule()
        return self.get(job_id), True

    def update(self, *, job: JobRecord, changes: dict[str, Any]) -> JobRecord:
        """Change a job's priority, name, tags or sharing (PATCH); the queue re-orders.

        Raises:
            PriorityRefusedError: `high` beyond the owner's quota of high-priority jobs.
        """
        if changes.get("priority") == "high" and job.priority < PRIORITIES.index("high"):
            quota = self.settings.quota_of(job.owner)
            check_priority(job.owner, "high", self._high_jobs(job.owner), quota)
        spec = {**job.spec, **changes}
        if "priority" in changes:
            changes["priority"] = PRIORITIES.index(changes["priority"])
        self.store.update_job(job_id=job.id, spec=spec, **changes)
        self.directory(job).write_spec(spec)
        if job.status is JobStatus.QUEUED:
            self.schedule()
        return self.get(job.id)

    def stop(self, *, job: JobRecord) -> JobRecord:
        """Stop a job; answers at once: STOPPED for a queued one (cancelled), STOPPING for one
        on Ray until the supervisor sees its driver gone. A stop of a STOPPING job forces it."""
        self._command(job.id, lifecycle.stop, _now())
        return self.get(job.id)

    def resume(self, *, job: JobRecord, stop: dict[str, Any] | None = None) -> JobRecord:
        """Queue a stopped, failed or lost job to continue from its last checkpoints; with
        `stop` (fields of the spec's stop: a SpecError if invalid), also a finished one, to
        that stop (`service.extending`)."""
        if stop:
            lifecycle.resume(job, extending=True)  # refused before anything is written
            extend(job, stop, self.directory(job), self.store)
        self._command(job.id, lifecycle.resume, bool(stop))
        self.schedule()
        return self.get(job.id)

    def delete(self, *, job: JobRecord, purge: bool) -> None:
        """Remove the records (refused while active); with `purge`, the files too."""
        job = self.get(job.id)
        if not job.status.is_terminal():
            raise ConflictError(f"job {job.id} is {job.status}; stop it before deleting")
        for attempt in range(1, job.attempts + 1):
            self.ray.delete(submission_id(job.id, attempt))
        self.store.delete_job(job_id=job.id)
        if purge:
            self.directory(job).delete()

    def _command(self, job_id: str, decide: Callable[..., Transition], *args: Any) -> None:
        """Decide a command on the freshest record and write it; retried when another writer
        changed the record in between (the command is decided again on what it wrote)."""
        for _ in range(5):
            job = self.get(job_id)
            if self._apply(job, decide(job, *args)):
                return
        raise ConflictError(f"job {job_id} keeps changing state; try again")

    def _high_jobs(self, owner: str) -> int:
        active = self.store.list_jobs(owner=owner, statuses=list(ACTIVE))
        return sum(1 for job in active if job.priority >= scheduler.HIGH)

    # ---- carrying a decision out -------------------------------------------------------------

    def _apply(self, job: JobRecord, transition: Transition, *, effects: bool = True) -> bool:
        """Write `transition` compare-and-swap from `job`'s status and attempt, then carry out
        its effects (or leave them to the caller: `effects=False`). False: another writer won."""
        won = self.store.update_job_status(
            job_id=job.id,
            expected=[job.status],
            status=transition.to,
            attempt=job.attempts,
            message=transition.message,
            **transition.values,
        )
        if won and effects:
            self._carry_out(job.id, transition.effects)
        return won

    def _carry_out(self, job_id: str, effects: tuple[Effect, ...]) -> None:
        job = self.get(job_id)
        for effect in effects:
            if effect is Effect.REQUEST_STOP:
                self.directory(job).request_stop(job.attempts)
            elif effect is Effect.FORCE_STOP and job.ray_job_id:
                sent = self.ray.stop(job.ray_job_id)
                logger.info("job %s: Ray Jobs stop sent (driver running: %s)", job.id, sent)
            elif effect is Effect.SET_ASIDE_ROWS:
                self.directory(job).keep_attempt_rows(job.attempts - 1)
            elif effect is Effect.SUBMIT:
                self._submit_attempt(job)
            elif effect is Effect.ARCHIVE_LOGS:
                self._archive_logs(job)

    def _submit_attempt(self, job: JobRecord) -> None:
        run = node_command(
            "python",
            ["-m", "service.driver", "--job-dir", self.directory(job).uri]
            + ["--attempt", str(job.attempts)],
        )
        sid = submission_id(job.id, job.attempts)
        try:
            self.ray.submit(
                entrypoint=run,
                submission_id=sid,
                metadata={
                    "rldojo_job_id": job.id,
                    "owner": job.owner,
                    "attempt": str(job.attempts),
                },
            )
        except ClusterUnavailableError as error:
            self._apply(job, lifecycle.start_refused(job, str(error)))
            return
        self.store.update_job(job_id=job.id, ray_job_id=sid)
        logger.info("job %s attempt %d submitted as %s", job.id, job.attempts, sid)

    def _archive_logs(self, job: JobRecord) -> None:
        """Keep an ended attempt's driver log on storage (it outlives the Ray cluster)."""
        if job.ray_job_id and job.attempts:
            text = self.ray.logs(job.ray_job_id)
            if text is not None:
                self.directory(job).write_log(job.attempts, text)

    # ---- the queue --------------------------------------------------------------------------

    def schedule(self) -> None:
        """One scheduler pass: start what fits in order, preempt for a high job that does not.

        The cluster is asked what it has before the lock; under it the pass only plans and
        claims (compare-and-swap writes); the claimed attempts are submitted after it.
        """
        if not self.store.list_jobs(statuses=[JobStatus.QUEUED]):
            return
        try:
            capacity = self.capacity()
        except ClusterUnavailableError as error:
            logger.warning("scheduler: %s", error)
            return
        claimed: list[tuple[str, Transition]] = []
        with self.store.scheduling():
            queued = self.store.list_jobs(statuses=[JobStatus.QUEUED])
            active = self.store.list_jobs(statuses=list(ON_RAY))
            decided = scheduler.plan(queued, active, capacity, self.settings.quota_of)
            for victim, head in decided.preempt:
                transition = lifecycle.preempt(victim, head.id, _now())
                if self._apply(victim, transition, effects=False):
                    claimed.append((victim.id, transition))
                    logger.info("job %s preempted for job %s", victim.id, head.id)
            for job in decided.start:
                transition = lifecycle.start(job)
                if self._apply(job, transition, effects=False):
                    claimed.append((job.id, transition))
        for job_id, transition in claimed:
            self._carry_out(job_id, transition.effects)

    def queue_positions(self) -> dict[str, int]:
        """Each queued job's place in the queue (1 starts next), as the scheduler orders it."""
        queued = self.store.list_jobs(statuses=[JobStatus.QUEUED])
        if not queued:
            return {}
        running = Counter(job.owner for job in self.store.list_jobs(statuses=list(ON_RAY)))
        return {job.id: place for place, job in enumerate(scheduler.order(queued, running), 1)}

    def capacity(self) -> Capacity:
        """What the cluster can ever offer one trial (live totals, or the configured maxima)."""
        try:
            summary = cluster.cluster_summary(self.ray.connect())
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None
        return Capacity.from_summary(
            summary, self.settings.max_cluster_cpus, self.settings.max_cluster_gpus
        )

    # ---- following Ray (the supervisor) ------------------------------------------------------

    def reconcile(self, job: JobRecord) -> JobRecord:
        """Bring an active job's record in line with what Ray and its driver say."""
        now = _now()
        ray, has_attempt = self._ask_ray(job, now)
        progress = self.directory(job).read_progress(job.attempts) if job.attempts else None
        transition = lifecycle.decide(
            job, ray, progress, now, self.timing, ray_has_attempt=has_attempt
        )
        if transition is not None:
            self._apply(job, transition)
        return self.get(job.id)

    def _ask_ray(self, job: JobRecord, now: dt.datetime) -> tuple[RaySeen | None, bool | None]:
        """Ray's state of the job's attempt, and (for an unrecorded attempt) whether Ray has it;
        (None, None) when Ray was not asked or could not answer."""
        if job.status not in ON_RAY:
            return None, None
        try:
            if job.ray_job_id:
                return self.ray.state(job.ray_job_id), None
            if lifecycle.needs_attempt_lookup(job, now, self.timing):
                return None, self.ray.info(submission_id(job.id, job.attempts)) is not None
        except ClusterUnavailableError as error:
            logger.warning("cannot reconcile job %s: %s", job.id, error)
        return None, None

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
                parts.append(quiet.without_noise_lines(text))
        return "".join(parts)

    def summary(self, job: JobRecord) -> dict[str, Any]:
        """Latest metrics, the best trial and the number of checkpoints, as of at most
        `SUMMARY_FRESH_S` ago within the job's current status and attempt (any transition
        reads storage afresh)."""
        key = (job.id, job.status, job.attempts)
        return self._summaries.get(key, lambda: self.directory(job).summary())
