"""The service's own records (jobs, evaluations) in SQLite or PostgreSQL, through SQLAlchemy 2.

Routes never write SQL: they call the keyword-only functions below. Status writes are
compare-and-swap (`update_job_status(expected=...)`), so a reconcile pass and a user's stop
cannot overwrite each other.

Example:
    >>> store = Store("sqlite://")
    >>> job = store.create_job(owner="alice", spec={"algorithm": "q_learning"}, status="PENDING")
    >>> store.get_job(job_id=job.id, owner="alice").status
    'PENDING'
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    """A short random id (12 hex characters)."""
    return uuid.uuid4().hex[:12]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


class JobRecord(Base):
    """One training job as the API knows it; `ray_job_id` is its current Ray Jobs submission."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    ray_job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    storage_uri: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EvaluationRecord(Base):
    """One evaluation of a job's checkpoint, run as its own Ray job."""

    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    checkpoint_id: Mapped[str] = mapped_column(String(128))
    episodes: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    video: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    ray_job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=_now)


class Store:
    """Keyword-only CRUD over the jobs and evaluations tables."""

    def __init__(self, url: str) -> None:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if url in ("sqlite://", "sqlite:///:memory:"):
                kwargs["poolclass"] = StaticPool
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # ---- jobs -----------------------------------------------------------------------------

    def create_job(
        self, *, owner: str, spec: dict[str, Any], status: str, storage_uri: str = ""
    ) -> JobRecord:
        """Insert a new job record and return it."""
        job = JobRecord(id=new_id(), owner=owner, spec=spec, status=status)
        job.storage_uri = storage_uri
        with self._session() as session:
            session.add(job)
        return job

    def get_job(self, *, job_id: str, owner: str | None = None) -> JobRecord | None:
        """The job `job_id`, or None when it does not exist or belongs to another owner."""
        with self._session() as session:
            job = session.get(JobRecord, job_id)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    def list_jobs(
        self, *, owner: str | None = None, statuses: Sequence[str] | None = None
    ) -> list[JobRecord]:
        """Jobs, newest first, optionally of one owner and some statuses."""
        query = select(JobRecord).order_by(JobRecord.created_at.desc())
        if owner is not None:
            query = query.where(JobRecord.owner == owner)
        if statuses:
            query = query.where(JobRecord.status.in_(list(statuses)))
        with self._session() as session:
            return list(session.scalars(query))

    def update_job(self, *, job_id: str, **values: Any) -> None:
        """Set fields of a job unconditionally (not its status: use `update_job_status`)."""
        if "status" in values:
            raise ValueError("status changes go through update_job_status (compare-and-swap)")
        values["updated_at"] = _now()
        with self._session() as session:
            session.execute(update(JobRecord).where(JobRecord.id == job_id).values(**values))

    def update_job_status(
        self, *, job_id: str, expected: Sequence[str], status: str, **values: Any
    ) -> bool:
        """Compare-and-swap: set `status` (and `values`) only if the status is in `expected`.

        Returns:
            True when the row changed; False when another writer got there first.
        """
        values.update(status=status, updated_at=_now())
        query = (
            update(JobRecord)
            .where(JobRecord.id == job_id, JobRecord.status.in_(list(expected)))
            .values(**values)
        )
        with self._session() as session:
            return bool(session.execute(query).rowcount == 1)  # type: ignore[attr-defined]

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
        status: str,
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
            status=status,
        )
        with self._session() as session:
            session.add(evaluation)
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
        self, *, owner: str | None = None, job_id: str | None = None
    ) -> list[EvaluationRecord]:
        """Evaluations, newest first."""
        query = select(EvaluationRecord).order_by(EvaluationRecord.created_at.desc())
        if owner is not None:
            query = query.where(EvaluationRecord.owner == owner)
        if job_id is not None:
            query = query.where(EvaluationRecord.job_id == job_id)
        with self._session() as session:
            return list(session.scalars(query))

    def update_evaluation_status(
        self, *, evaluation_id: str, expected: Sequence[str], status: str, **values: Any
    ) -> bool:
        """Compare-and-swap an evaluation's status, like `update_job_status`."""
        values.update(status=status, updated_at=_now())
        query = (
            update(EvaluationRecord)
            .where(EvaluationRecord.id == evaluation_id, EvaluationRecord.status.in_(expected))
            .values(**values)
        )
        with self._session() as session:
            return bool(session.execute(query).rowcount == 1)  # type: ignore[attr-defined]

    def update_evaluation(self, *, evaluation_id: str, **values: Any) -> None:
        """Set non-status fields of an evaluation."""
        values["updated_at"] = _now()
        with self._session() as session:
            session.execute(
                update(EvaluationRecord)
                .where(EvaluationRecord.id == evaluation_id)
                .values(**values)
            )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
