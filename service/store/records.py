"""The job store's tables as SQLAlchemy records: jobs, evaluations, webhooks, deliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.status import JobStatus

# The status column holds the enum's values as plain strings (as before it was an enum).
_STATUS = Enum(
    JobStatus,
    native_enum=False,
    length=16,
    create_constraint=False,
    values_callable=lambda statuses: [status.value for status in statuses],
)


def now() -> dt.datetime:
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
    status: Mapped[JobStatus] = mapped_column(_STATUS, index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    ray_job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    storage_uri: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The algorithm's config as the job runs it, every default filled in (JSON-safe values).
    resolved_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When the user asked to stop the current attempt (a stop is escalated from there).
    stop_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The queue: 0 low, 1 normal, 2 high; what one job holds when running (its trials).
    priority: Mapped[int] = mapped_column(Integer, default=1)
    cpus: Mapped[float] = mapped_column(Float, default=0.0)
    gpus: Mapped[float] = mapped_column(Float, default=0.0)
    # Why the current attempt was asked to stop (service.lifecycle.StopReason): a preempted
    # job goes back to QUEUED once its driver is gone, a user's stop ends STOPPED.
    stop_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Readable (not changeable) by every owner: listed, compared, on the leaderboard.
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # The submit's Idempotency-Key (unique per owner) and its spec's fingerprint: a retry with
    # the same key and spec gets this job back, the same key with another spec is refused.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_jobs_owner_idempotency_key", "owner", "idempotency_key", unique=True),
    )


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
    status: Mapped[JobStatus] = mapped_column(_STATUS, index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    ray_job_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)


class WebhookRecord(Base):
    """An owner's webhook: every status change of their jobs and evaluations is POSTed here."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))  # the HMAC-SHA256 key of its signatures
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    # Deliveries in a row that ended failed; a delivered one resets it.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Set when it was disabled (after too many failures, or by its owner): nothing is sent.
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def enabled(self) -> bool:
        """True while events are queued and sent to it."""
        return self.disabled_at is None


class DeliveryRecord(Base):
    """One event for one webhook, and how its delivery went (an outbox row)."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    webhook_id: Mapped[str] = mapped_column(String(32), index=True)
    owner: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=now)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
