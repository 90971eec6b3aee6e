"""Webhook events as an outbox: written in the same transaction as the change they announce.

A status change of a job or an evaluation, and the delivery rows for each of its owner's
webhooks, commit together, so no event is lost when the API stops right after a change, and
none is sent for a change that rolled back. `service.webhooks` sends the rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.status import JobStatus
from service.store.records import (
    DeliveryRecord,
    EvaluationRecord,
    JobRecord,
    WebhookRecord,
    new_id,
    now,
)

JOB_EVENT = "job.status"
EVALUATION_EVENT = "evaluation.status"


def job_changed(session: Session, job: JobRecord, previous: JobStatus | None) -> None:
    """Queue a `job.status` event for each of the job owner's webhooks."""
    spec = job.spec or {}
    _enqueue(
        session,
        job.owner,
        JOB_EVENT,
        {
            "job": {
                "id": job.id,
                "name": job.name,
                "owner": job.owner,
                "status": JobStatus(job.status).value,
                "previous_status": previous.value if previous else None,
                "message": job.message,
                "algorithm": spec.get("algorithm"),
                "env": spec.get("env"),
                "attempts": job.attempts,
                "tags": job.tags or [],
            }
        },
    )


def evaluation_changed(
    session: Session, evaluation: EvaluationRecord, previous: JobStatus | None
) -> None:
    """Queue an `evaluation.status` event for each of the evaluation owner's webhooks."""
    result = evaluation.result or {}
    _enqueue(
        session,
        evaluation.owner,
        EVALUATION_EVENT,
        {
            "evaluation": {
                "id": evaluation.id,
                "job_id": evaluation.job_id,
                "checkpoint_id": evaluation.checkpoint_id,
                "status": JobStatus(evaluation.status).value,
                "previous_status": previous.value if previous else None,
                "message": evaluation.message,
                "return_mean": result.get("return_mean"),
                "episodes": evaluation.episodes,
            }
        },
    )


def _enqueue(session: Session, owner: str, event: str, body: dict[str, Any]) -> None:
    enabled = select(WebhookRecord).where(
        WebhookRecord.owner == owner, WebhookRecord.disabled_at.is_(None)
    )  # a disabled webhook gets nothing queued (it says so on GET /v1/webhooks)
    hooks = session.scalars(enabled)
    created = now()
    for hook in hooks:
        delivery_id = new_id()
        payload = {"event": event, "delivery": delivery_id, "time": created.isoformat(), **body}
        session.add(
            DeliveryRecord(
                id=delivery_id,
                webhook_id=hook.id,
                owner=owner,
                event=event,
                payload=payload,
                state="pending",
                attempts=0,
                next_attempt_at=created,
                created_at=created,
            )
        )
