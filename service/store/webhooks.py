"""The store's webhooks and their deliveries: registration, the outbox's claims, health.

Mixed into `Store`. A claim takes at most one due delivery per webhook and only as many as
the sender starts at once, so a claim never holds another owner's delivery behind a slow
receiver; a webhook whose deliveries keep failing is disabled, and what it had pending is
marked failed (with the reason) rather than left waiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from service.store.records import DeliveryRecord, WebhookRecord, new_id, now


class WebhookStore:
    """Keyword-only functions over the webhooks and deliveries tables."""

    def _session(self) -> AbstractContextManager[Session]:
        raise NotImplementedError  # Store's

    def create_webhook(self, *, owner: str, url: str, secret: str) -> WebhookRecord:
        """Register a webhook (enabled)."""
        hook = WebhookRecord(
            id=new_id(),
            owner=owner,
            url=url,
            secret=secret,
            created_at=now(),
            consecutive_failures=0,
        )
        with self._session() as session:
            session.add(hook)
        return hook

    def list_webhooks(self, *, owner: str) -> list[WebhookRecord]:
        """An owner's webhooks, oldest first."""
        query = select(WebhookRecord).where(WebhookRecord.owner == owner)
        with self._session() as session:
            return list(session.scalars(query.order_by(WebhookRecord.created_at)))

    def get_webhook(self, *, webhook_id: str, owner: str | None = None) -> WebhookRecord | None:
        """The webhook, or None when it does not exist or is another owner's."""
        with self._session() as session:
            hook = session.get(WebhookRecord, webhook_id)
        return None if hook is None or (owner and hook.owner != owner) else hook

    def delete_webhook(self, *, webhook_id: str) -> None:
        """Remove a webhook; its delivery log stays readable until then, not after."""
        with self._session() as session:
            hook = session.get(WebhookRecord, webhook_id)
            if hook is not None:
                session.delete(hook)
            for delivery in session.scalars(
                select(DeliveryRecord).where(DeliveryRecord.webhook_id == webhook_id)
            ):
                session.delete(delivery)

    def set_webhook_enabled(
        self, *, webhook_id: str, enabled: bool, reason: str = "disabled by its owner"
    ) -> WebhookRecord | None:
        """Enable a webhook (its failure count starts again from 0) or disable it (its pending
        deliveries are marked failed with `reason`); the webhook as it is now."""
        with self._session() as session:
            if enabled:
                values: dict[str, Any] = {
                    "disabled_at": None,
                    "disabled_reason": None,
                    "consecutive_failures": 0,
                }
                session.execute(
                    update(WebhookRecord).where(WebhookRecord.id == webhook_id).values(**values)
                )
            else:
                _disable(session, webhook_id, reason)
            return session.get(WebhookRecord, webhook_id, populate_existing=True)

    def list_deliveries(self, *, webhook_id: str, limit: int = 200) -> list[DeliveryRecord]:
        """A webhook's deliveries, newest first."""
        query = (
            select(DeliveryRecord)
            .where(DeliveryRecord.webhook_id == webhook_id)
            .order_by(DeliveryRecord.created_at.desc(), DeliveryRecord.id)
            .limit(limit)
        )
        with self._session() as session:
            return list(session.scalars(query))

    def claim_deliveries(
        self,
        *,
        limit: int = 20,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        skip_webhooks: Collection[str] = (),
    ) -> list[tuple[DeliveryRecord, WebhookRecord]]:
        """Due pending deliveries, the oldest due one of up to `limit` webhooks (none of
        `skip_webhooks`), each claimed for `lease` so that one sender sends it.

        A delivery whose webhook is gone is marked failed here, never left pending.
        """
        moment = now()
        due = (
            DeliveryRecord.state == "pending",
            DeliveryRecord.next_attempt_at <= moment,
            or_(DeliveryRecord.claimed_until.is_(None), DeliveryRecord.claimed_until < moment),
        )
        hooks = (
            select(DeliveryRecord.webhook_id)
            .where(*due)
            .group_by(DeliveryRecord.webhook_id)
            .order_by(func.min(DeliveryRecord.next_attempt_at))
            .limit(limit)
        )
        if skip_webhooks:
            hooks = hooks.where(DeliveryRecord.webhook_id.not_in(list(skip_webhooks)))
        claimed = []
        with self._session() as session:
            for webhook_id in list(session.scalars(hooks)):
                oldest = (
                    select(DeliveryRecord.id)
                    .where(*due, DeliveryRecord.webhook_id == webhook_id)
                    .order_by(DeliveryRecord.next_attempt_at, DeliveryRecord.created_at)
                    .limit(1)
                )
                delivery_id = session.scalar(oldest)
                if delivery_id is None:
                    continue
                won = session.execute(
                    update(DeliveryRecord)
                    .where(DeliveryRecord.id == delivery_id, *due[2:])
                    .values(claimed_until=moment + lease)
                )
                if won.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another sender claimed it first
                delivery = session.get(DeliveryRecord, delivery_id, populate_existing=True)
                hook = session.get(WebhookRecord, webhook_id)
                if delivery is not None and hook is not None:
                    claimed.append((delivery, hook))
                elif delivery is not None:
                    delivery.state, delivery.last_error = "failed", "its webhook was removed"
        return claimed

    def finish_delivery(self, *, delivery_id: str, **values: Any) -> None:
        """Record an attempt's outcome (state, attempts, next_attempt_at, ...); release it."""
        values["claimed_until"] = None
        with self._session() as session:
            session.execute(
                update(DeliveryRecord).where(DeliveryRecord.id == delivery_id).values(**values)
            )

    def record_webhook_outcome(
        self, *, webhook_id: str, delivered: bool, disable_after: int, reason: str = ""
    ) -> bool:
        """Count a delivery that ended: a delivered one resets the webhook's failures, a
        failed one adds one, and the `disable_after`-th in a row (0: never) disables it.

        Returns:
            True when this failure disabled the webhook.
        """
        with self._session() as session:
            if delivered:
                session.execute(
                    update(WebhookRecord)
                    .where(WebhookRecord.id == webhook_id, WebhookRecord.consecutive_failures != 0)
                    .values(consecutive_failures=0)
                )
                return False
            session.execute(
                update(WebhookRecord)
                .where(WebhookRecord.id == webhook_id)
                .values(consecutive_failures=WebhookRecord.consecutive_failures + 1)
            )
            hook = session.get(WebhookRecord, webhook_id, populate_existing=True)
            if hook is None or not hook.enabled or not disable_after:
                return False
            if hook.consecutive_failures < disable_after:
                return False
            why = f"disabled after {hook.consecutive_failures} failed deliveries in a row"
            _disable(session, webhook_id, f"{why} (last: {reason})" if reason else why)
            return True


def _disable(session: Session, webhook_id: str, reason: str) -> None:
    """Disable the webhook (kept if it already was) and fail what it had pending."""
    moment = now()
    session.execute(
        update(WebhookRecord)
        .where(WebhookRecord.id == webhook_id, WebhookRecord.disabled_at.is_(None))
        .values(disabled_at=moment, disabled_reason=reason[:1000])
    )
    session.execute(
        update(DeliveryRecord)
        .where(DeliveryRecord.webhook_id == webhook_id, DeliveryRecord.state == "pending")
        .values(state="failed", last_error=f"not sent: webhook {reason}"[:500])
    )
