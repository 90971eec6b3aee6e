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
import json
import math
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
    text,
    update,
)
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
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
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)  # PostgreSQL answers in its session's time zone


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
        parsed = database_url(url)
        kwargs: dict[str, Any] = {"json_serializer": strict_json}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_pre_ping"] = True  # survive a database restart between requests
        self.engine = create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _create_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def ping(self) -> None:
        """One round trip to the database; raises when it cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

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


def database_url(url: str) -> URL:
    """The SQLAlchemy URL, with `postgresql://` (and `postgres://`) meaning psycopg 3.

    Example:
        >>> database_url("postgresql://rldojo@db:5432/rldojo").drivername
        'postgresql+psycopg'
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def strict_json(value: Any) -> str:
    """Standard JSON for the JSON columns: NaN and infinities become null.

    PostgreSQL's json type refuses them and so do JSON clients; SQLite would store them.

    Example:
        >>> strict_json({"a": float("inf"), "b": [1.5, float("nan")]})
        '{"a": null, "b": [1.5, null]}'
    """
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


_SCHEMA_LOCK = 0x726C646F6A6F  # "rldojo": the advisory lock serialising schema creation


def _create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create missing tables; safe when several API processes start on one database at once."""
    for attempt in range(attempts):
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
                    )
                Base.metadata.create_all(connection)
            return
        except DBAPIError as error:
            # SQLite has no such lock: a process that lost the race sees "already exists".
            if "already exists" not in str(error) or attempt == attempts - 1:
                raise
