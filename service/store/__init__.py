"""The service's own records (jobs, evaluations, webhooks) in SQLite or PostgreSQL (SQLAlchemy 2).

Routes never write SQL: they call the keyword-only functions below. Status writes are
compare-and-swap (`update_job_status(expected=...)`), so a reconcile pass and a user's stop
cannot overwrite each other, and each status change queues its webhook events in the same
transaction (`events.py`). The schema is kept by Alembic revisions (`service/migrations`),
applied when a `Store` opens a database, so an older database is upgraded in place.

Example:
    >>> store = Store("sqlite://")
    >>> job = store.create_job(owner="alice", spec={"algorithm": "q_learning"}, status="PENDING")
    >>> store.get_job(job_id=job.id, owner="alice").status
    <JobStatus.PENDING: 'PENDING'>
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from service.status import JobStatus
from service.store import events
from service.store.database import database_url, open_engine, strict_json
from service.store.records import (
    DeliveryRecord,
    EvaluationRecord,
    JobRecord,
    WebhookRecord,
    new_id,
    now,
)
from service.store.webhooks import WebhookStore

__all__ = [
    "DeliveryRecord",
    "EvaluationRecord",
    "JobRecord",
    "Store",
    "WebhookRecord",
    "database_url",
    "new_id",
    "strict_json",
]

_SCHEDULER_LOCK = 0x726C6471  # the advisory lock one scheduler pass holds (PostgreSQL)


class Store(WebhookStore):
    """Keyword-only CRUD over the jobs, evaluations, webhooks and deliveries tables (the last
    two in `webhooks.py`)."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._scheduling = threading.Lock()
        self._job_writes = itertools.count()
        self._jobs_version = 0

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @property
    def jobs_version(self) -> int:
        """How many job writes this store has committed: a read cached at one version is
        exact for this process until the next (`service.recent.Recent`)."""
        return self._jobs_version

    def _jobs_written(self) -> None:
        """Called after a job write commits (not before: a reader in between would cache the
        old rows under the new version)."""
        self._jobs_version = next(self._job_writes) + 1

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers."""
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    @contextmanager
    def scheduling(self) -> Iterator[None]:
        """Held by one scheduler pass at a time, across API processes on PostgreSQL."""
        with self._scheduling, self._session() as session:
            if self.engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEDULER_LOCK})
            yield

    # ---- jobs -----------------------------------------------------------------------------

    def create_job(
        self,
        *,
        owner: str,
        spec: dict[str, Any],
        status: JobStatus | str,
        storage_uri: str = "",
        job_id: str | None = None,
        **values: Any,
    ) -> JobRecord:
        """Insert a new job record (`values`: any other column) and return it."""
        job = JobRecord(
            id=job_id or new_id(),
            owner=owner,
            spec=spec,
            status=JobStatus(status),
            storage_uri=storage_uri,
            **values,
        )
        with self._session() as session:
            session.add(job)
            session.flush()
            events.job_changed(session, job, None)
        self._jobs_written()
        return job

    def job_by_idempotency_key(self, *, owner: str, key: str) -> JobRecord | None:
        """The owner's job submitted with `key`, or None."""
        query = select(JobRecord).where(JobRecord.owner == owner, JobRecord.idempotency_key == key)
        with self._session() as session:
            return session.scalars(query).first()

    def get_job(self, *, job_id: str, owner: str | None = None) -> JobRecord | None:
        """The job `job_id`, or None when it does not exist or belongs to another owner."""
        with self._session() as session:
            job = session.get(JobRecord, job_id)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    def list_jobs(
        self,
        *,
        owner: str | None = None,
        statuses: Sequence[JobStatus | str] | None = None,
        visible_to: str | None = None,
        algorithm: str | None = None,
        env: str | None = None,
        tag: str | None = None,
    ) -> list[JobRecord]:
        """Jobs, newest first: of one `owner`, or those `visible_to` someone (theirs and the
        shared ones), optionally of some statuses, an algorithm, an env, a tag."""
        query = select(JobRecord).order_by(JobRecord.created_at.desc())
        if owner is not None:
            query = query.where(JobRecord.owner == owner)
        if visible_to is not None:
            query = query.where(or_(JobRecord.owner == visible_to, JobRecord.shared.is_(True)))
        if statuses:
            query = query.where(JobRecord.status.in_([JobStatus(s) for s in statuses]))
        with self._session() as session:
            found = list(session.scalars(query))
        # JSON fields are filtered here: the same on SQLite and PostgreSQL.
        return [
            job
            for job in found
            if (algorithm is None or job.spec.get("algorithm") == algorithm)
            and (env is None or job.spec.get("env") == env)
            and (tag is None or tag in (job.tags or []))
        ]

    def update_job(self, *, job_id: str, **values: Any) -> None:
        """Set fields of a job unconditionally (not its status: use `update_job_status`)."""
        if "status" in values:
            raise ValueError("status changes go through update_job_status (compare-and-swap)")
        values["updated_at"] = now()
        with self._session() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))
        self._jobs_written()

    def update_job_status(
        self,
        *,
        job_id: str,
        expected: Sequence[JobStatus | str],
        status: JobStatus | str,
        attempt: int | None = None,
        **values: Any,
    ) -> bool:
        """Compare-and-swap: set `status` (and `values`) only if the status is in `expected`
        (and, given `attempt`, the job is still on that attempt: a resume may have started the
        next one since the caller read the record). A change of status queues its event.

        Returns:
            True when the row changed; False when another writer got there first.
        """
        new = JobStatus(status)
        allowed = [JobStatus(s) for s in expected]
        values.update(status=new, updated_at=now())
        conditions = [JobRecord.id == job_id, JobRecord.status.in_(allowed)]
        if attempt is not None:
            conditions.append(JobRecord.attempts == attempt)
        with self._session() as session:
            changed = session.execute(update(JobRecord).where(*conditions).values(**values))
            if changed.rowcount != 1:  # type: ignore[attr-defined]
                return False
            previous = allowed[0] if len(allowed) == 1 else None
            if previous is not new:
                job = session.get(JobRecord, job_id, populate_existing=True)
                assert job is not None
                events.job_changed(session, job, previous)
        self._jobs_written()
        return True

    def delete_job(self, *, job_id: str) -> None:
        """Remove a job and its evaluations."""
        with self._session() as session:
            for evaluation in session.scalars(
                select(EvaluationRecord).where(EvaluationRecord.job_id == job_id)
            ):
                session.delete(evaluation)
            job = session.get(JobRecord, job_id)
            if job is not None:
                session.delete(job)
        self._jobs_written()

    # ---- evaluations ----------------------------------------------------------------------

    def create_evaluation(
        self,
        *,
        owner: str,
        job_id: str,
        checkpoint_id: str,
        episodes: int,
        seed: int,
        video: bool,
        status: JobStatus | str,
    ) -> EvaluationRecord:
        """Insert a new evaluation record and return it."""
        evaluation = EvaluationRecord(
            id=new_id(),
            owner=owner,
            job_id=job_id,
            checkpoint_id=checkpoint_id,
            episodes=episodes,
            seed=seed,
            video=video,
            status=JobStatus(status),
        )
        with self._session() as session:
            session.add(evaluation)
            session.flush()
            events.evaluation_changed(session, evaluation, None)
        return evaluation

    def get_evaluation(
        self, *, evaluation_id: str, owner: str | None = None
    ) -> EvaluationRecord | None:
        """The evaluation, or None when it does not exist or belongs to another owner."""
        with self._session() as session:
            evaluation = session.get(EvaluationRecord, evaluation_id)
        if evaluation is None or (owner is not None and evaluation.owner != owner):
            return None
        return evaluation

    def list_evaluations(
        self,
        *,
        owner: str | None = None,
        job_id: str | None = None,
        status: JobStatus | None = None,
    ) -> list[EvaluationRecord]:
        """Evaluations, newest first."""
        query = select(EvaluationRecord).order_by(EvaluationRecord.created_at.desc())
        if owner is not None:
            query = query.where(EvaluationRecord.owner == owner)
        if job_id is not None:
            query = query.where(EvaluationRecord.job_id == job_id)
        if status is not None:
            query = query.where(EvaluationRecord.status == status)
        with self._session() as session:
            return list(session.scalars(query))

    def update_evaluation_status(
        self,
        *,
        evaluation_id: str,
        expected: Sequence[JobStatus | str],
        status: JobStatus | str,
        **values: Any,
    ) -> bool:
        """Compare-and-swap an evaluation's status, like `update_job_status`."""
        new = JobStatus(status)
        allowed = [JobStatus(s) for s in expected]
        values.update(status=new, updated_at=now())
        query = (
            update(EvaluationRecord)
            .where(EvaluationRecord.id == evaluation_id, EvaluationRecord.status.in_(allowed))
            .values(**values)
        )
        with self._session() as session:
            if session.execute(query).rowcount != 1:  # type: ignore[attr-defined]
                return False
            previous = allowed[0] if len(allowed) == 1 else None
            if previous is not new:
                evaluation = session.get(EvaluationRecord, evaluation_id, populate_existing=True)
                assert evaluation is not None
                events.evaluation_changed(session, evaluation, previous)
            return True

    def update_evaluation(self, *, evaluation_id: str, **values: Any) -> None:
        """Set non-status fields of an evaluation."""
        values["updated_at"] = now()
        with self._session() as session:
            session.execute(
                update(EvaluationRecord)
                .where(EvaluationRecord.id == evaluation_id)
                .values(**values)
            )
