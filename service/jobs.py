"""Training jobs as Ray Jobs: submit, reconcile, stop, resume, delete.

Each job attempt is one Ray job (submission id `rldojo-<job id>-<attempt>`) whose entrypoint is
`rldojo train --spec /dev/stdin --out <storage>/jobs/<id> --name run [--resume]`, so the driver is
its own process on the cluster and outlives the API. The API's own record (store.py) is the source
of truth for who owns what; its status follows Ray's through `reconcile`, which runs on start-up
and on every read. Status writes are compare-and-swap on the prior status, so a concurrent stop,
resume and reconcile never overwrite one another.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from ray.job_submission import JobSubmissionClient

from algorithms.common import metrics
from service import cluster
from service.settings import Settings
from service.spec import JobSpec
from service.storage import Storage
from service.store import JobRecord, Store

logger = logging.getLogger(__name__)


class JobStatus(str, Enum):  # noqa: UP042 - the brief's shape; str() gives the value
    """Ray Jobs' five states, plus LOST: the cluster that ran the job no longer knows it."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    LOST = "LOST"

    def is_terminal(self) -> bool:
        """True when nothing more will happen without a user action (resume, delete)."""
        return self not in (JobStatus.PENDING, JobStatus.RUNNING)


ACTIVE = (JobStatus.PENDING.value, JobStatus.RUNNING.value)
RESUMABLE = (JobStatus.STOPPED.value, JobStatus.FAILED.value, JobStatus.LOST.value)


class ConflictError(Exception):
    """The job is in a state that does not allow the request (HTTP 409)."""


class ClusterUnavailableError(Exception):
    """The Ray cluster cannot be reached (HTTP 503)."""


def executable(name: str) -> str:
    """A console script of this environment (`rldojo`, `python`) by absolute path if present."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def node_command(name: str, args: Sequence[str], own: str | None = None) -> str:
    """Shell text that runs console script `name` with `args` on a cluster node.

    It runs this environment's copy (`own`, by default `executable(name)`) when the node has it
    at the same path, as on the embedded head or with one image everywhere, and otherwise the
    node's own `name` from its PATH (an existing cluster installed elsewhere).

    Example:
        >>> node_command("rldojo", ["train", "--name", "run"], own="/opt/venv/bin/rldojo")
        '"$(command -v /opt/venv/bin/rldojo || echo rldojo)" train --name run'
    """
    own = own or executable(name)
    program = name if own == name else f'"$(command -v {shlex.quote(own)} || echo {name})"'
    return f"{program} {shlex.join(args)}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _from_ms(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC) if value else None


class RayJobs:
    """The Ray Jobs SDK client for the service's cluster, connected lazily and re-connectable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: JobSubmissionClient | None = None
        self.connection: cluster.RayConnection | None = None

    def connect(self) -> cluster.RayConnection:
        """Connect (starting the embedded head if needed) and return the connection."""
        with self._lock:
            if self._client is None:
                try:
                    self.connection = cluster.connect(self.settings)
                    self._client = JobSubmissionClient(
                        self.connection.address, headers=self.connection.headers
                    )
                except (ConnectionError, RuntimeError, OSError) as error:
                    raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None
            assert self.connection is not None
            return self.connection

    @property
    def client(self) -> JobSubmissionClient:
        self.connect()
        assert self._client is not None
        return self._client

    def submit(self, *, entrypoint: str, submission_id: str, metadata: dict[str, str]) -> str:
        """Submit, retrying while the head's job agent is still starting."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return str(
                    self.client.submit_job(
                        entrypoint=entrypoint, submission_id=submission_id, metadata=metadata
                    )
                )
            except RuntimeError as error:
                if "No available agent" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
            except ConnectionError as error:
                raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def info(self, submission_id: str) -> Any | None:
        """Ray's JobDetails, None when the cluster does not know the id.

        Raises:
            ClusterUnavailableError: the dashboard cannot be reached.
        """
        try:
            return self.client.get_job_info(submission_id)
        except RuntimeError as error:
            if cluster.is_not_found(error):
                return None
            raise ClusterUnavailableError(str(error)) from None
        except (ConnectionError, OSError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def logs(self, submission_id: str) -> str | None:
        """The driver's log text, None when unknown or unreachable."""
        try:
            return str(self.client.get_job_logs(submission_id))
        except (RuntimeError, ConnectionError, OSError, ClusterUnavailableError):
            return None

    def stop(self, submission_id: str) -> None:
        try:
            self.client.stop_job(submission_id)
        except RuntimeError as error:
            if not cluster.is_not_found(error):
                raise ClusterUnavailableError(str(error)) from None
        except (ConnectionError, OSError) as error:
            raise ClusterUnavailableError(f"Ray cluster unavailable: {error}") from None

    def delete(self, submission_id: str) -> None:
        try:
            self.client.delete_job(submission_id)
        except (RuntimeError, ConnectionError, OSError, ClusterUnavailableError) as error:
            logger.info("could not delete Ray job %s: %s", submission_id, error)


class JobService:
    """Everything the routes do with jobs, over the store, the storage and Ray Jobs."""

    def __init__(self, *, settings: Settings, store: Store, storage: Storage, ray: RayJobs) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.ray = ray

    # ---- commands ---------------------------------------------------------------------------

    def submit(self, *, owner: str, spec: JobSpec) -> JobRecord:
        """Record the job, write its spec to storage and start attempt 1 on Ray."""
        spec_json = spec.model_dump(mode="json")
        job = self.store.create_job(owner=owner, spec=spec_json, status=JobStatus.PENDING.value)
        self.store.update_job(job_id=job.id, storage_uri=self.storage.job_uri(job.id))
        self.storage.write_text(
            f"{self.storage.job_path(job.id)}/spec.json", json.dumps(spec_json, indent=2)
        )
        try:
            self._start_attempt(job_id=job.id, owner=owner, spec=spec_json, attempt=1)
        except ClusterUnavailableError as error:
            self.store.update_job_status(
                job_id=job.id,
                expected=[JobStatus.PENDING.value],
                status=JobStatus.FAILED.value,
                message=str(error),
                ended_at=_now(),
            )
        return self._get(job.id)

    def _start_attempt(
        self, *, job_id: str, owner: str, spec: dict[str, Any], attempt: int
    ) -> None:
        submission_id = f"rldojo-{job_id}-{attempt}"
        command = [
            "train",
            "--spec",
            "/dev/stdin",
            "--out",
            self.storage.job_uri(job_id),
            "--name",
            "run",
        ]
        if attempt > 1:
            command.append("--resume")
        run = node_command("rldojo", command)
        entrypoint = f"printf '%s' {shlex.quote(json.dumps(spec))} | {run}"
        self.ray.submit(
            entrypoint=entrypoint,
            submission_id=submission_id,
            metadata={"rldojo_job_id": job_id, "owner": owner, "attempt": str(attempt)},
        )
        self.store.update_job(job_id=job_id, ray_job_id=submission_id, attempts=attempt)
        logger.info("job %s attempt %d submitted as %s", job_id, attempt, submission_id)

    def stop(self, *, job: JobRecord, wait_s: float = 10.0) -> JobRecord:
        """Ask Ray to stop the job's driver; returns the record once Ray reports it ended."""
        if JobStatus(job.status).is_terminal():
            raise ConflictError(f"job {job.id} is already {job.status}")
        if job.ray_job_id:
            self.ray.stop(job.ray_job_id)
        deadline = time.monotonic() + wait_s
        current = self.reconcile(job)
        while not JobStatus(current.status).is_terminal() and time.monotonic() < deadline:
            time.sleep(0.25)
            current = self.reconcile(current)
        return current

    def resume(self, *, job: JobRecord) -> JobRecord:
        """Continue a stopped, failed or lost job from its last checkpoints (`Tuner.restore`)."""
        job = self.reconcile(job)
        if job.status not in RESUMABLE:
            raise ConflictError(f"job {job.id} is {job.status}; only {RESUMABLE} can resume")
        claimed = self.store.update_job_status(
            job_id=job.id,
            expected=[job.status],
            status=JobStatus.PENDING.value,
            message="resuming from the last checkpoint",
            ended_at=None,
        )
        if not claimed:
            raise ConflictError(f"job {job.id} changed state meanwhile; try again")
        self.storage.keep_attempt_rows(job.id, job.attempts)
        try:
            self._start_attempt(
                job_id=job.id, owner=job.owner, spec=job.spec, attempt=job.attempts + 1
            )
        except ClusterUnavailableError:
            self.store.update_job_status(
                job_id=job.id, expected=[JobStatus.PENDING.value], status=job.status
            )
            raise
        return self._get(job.id)

    def delete(self, *, job: JobRecord, purge: bool) -> None:
        """Remove the records (refused while active); with `purge`, the files too."""
        job = self.reconcile(job)
        if not JobStatus(job.status).is_terminal():
            raise ConflictError(f"job {job.id} is {job.status}; stop it before deleting")
        for attempt in range(1, job.attempts + 1):
            self.ray.delete(f"rldojo-{job.id}-{attempt}")
        evaluations = self.store.list_evaluations(job_id=job.id)
        self.store.delete_job(job_id=job.id)
        if purge:
            self.storage.delete_job(job.id)
            for evaluation in evaluations:
                self.storage.delete_evaluation(evaluation.id)

    # ---- reading ----------------------------------------------------------------------------

    def _get(self, job_id: str) -> JobRecord:
        job = self.store.get_job(job_id=job_id)
        assert job is not None
        return job

    def reconcile(self, job: JobRecord) -> JobRecord:
        """Bring an active job's status in line with Ray's; returns the fresh record."""
        if job.status not in ACTIVE or not job.ray_job_id:
            return job
        try:
            info = self.ray.info(job.ray_job_id)
        except ClusterUnavailableError as error:
            logger.warning("cannot reconcile job %s: %s", job.id, error)
            return job
        started: dt.datetime | None
        ended: dt.datetime | None
        if info is None:
            new_status, message, started, ended = (
                JobStatus.LOST,
                "the Ray cluster lost it",
                None,
                _now(),
            )
        else:
            new_status = JobStatus(str(getattr(info.status, "value", info.status)))
            message = str(info.message or "")
            started, ended = _from_ms(info.start_time), _from_ms(info.end_time)
        if new_status.value == job.status and not (started and job.started_at is None):
            return job
        values: dict[str, Any] = {"message": message}
        if started is not None and job.started_at is None:
            values["started_at"] = started
        if new_status.is_terminal():
            values["ended_at"] = ended or _now()
            self._archive_logs(job)
        self.store.update_job_status(
            job_id=job.id, expected=[job.status], status=new_status.value, **values
        )
        return self._get(job.id)

    def reconcile_all(self) -> int:
        """Reconcile every active job (start-up recovery); returns how many were checked."""
        active = self.store.list_jobs(statuses=list(ACTIVE))
        for job in active:
            self.reconcile(job)
        return len(active)

    def _log_path(self, job_id: str, attempt: int) -> str:
        return f"{self.storage.job_path(job_id)}/logs/attempt-{attempt}.log"

    def _archive_logs(self, job: JobRecord) -> None:
        """Keep a finished attempt's driver log on storage (it outlives the Ray cluster)."""
        if job.ray_job_id and job.attempts:
            text = self.ray.logs(job.ray_job_id)
            if text is not None:
                self.storage.write_text(self._log_path(job.id, job.attempts), text)

    def logs(self, job: JobRecord) -> str:
        """All attempts' driver logs: archived ones from storage, the live one from Ray."""
        parts = []
        for attempt in range(1, job.attempts + 1):
            text = self.storage.read_text(self._log_path(job.id, attempt))
            if text is None and attempt == job.attempts and job.ray_job_id:
                text = self.ray.logs(job.ray_job_id)
            if text:
                parts.append(text)
        return "".join(parts)

    def summary(self, job: JobRecord) -> dict[str, Any]:
        """Latest metrics of each trial, the best trial and the number of checkpoints."""
        rows = self.storage.metric_rows(job.id)
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest[str(row.get("trial_id"))] = row
        best: dict[str, Any] | None = None
        for trial_id, row in latest.items():
            value = row.get(metrics.EPISODE_RETURN_MEAN)
            if isinstance(value, int | float) and (best is None or value > best["return_mean"]):
                best = {
                    "trial_id": trial_id,
                    "return_mean": float(value),
                    "iteration": row.get(metrics.ITERATION),
                }
        newest = max(latest.values(), key=lambda r: r.get("timestamp") or 0, default=None)
        return {
            "latest_metrics": _headline(newest) if newest else None,
            "best_trial": best,
            "checkpoints": len(self.storage.checkpoints(job.id)),
        }


def _headline(row: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "trial_id",
        metrics.ITERATION,
        metrics.ENV_STEPS,
        metrics.EPISODE_RETURN_MEAN,
        metrics.EPISODE_LEN_MEAN,
        metrics.ENV_STEPS_PER_SECOND,
        metrics.TIME_TOTAL_S,
    )
    return {key: row.get(key) for key in keys}
