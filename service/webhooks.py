"""Webhook deliveries: every status change of an owner's jobs and evaluations, POSTed as JSON.

Each request carries:

    Content-Type: application/json
    X-Rldojo-Event: job.status | evaluation.status
    X-Rldojo-Delivery: <delivery id>           (the same on every retry of one event)
    X-Rldojo-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the webhook's secret>

A receiver checks the signature over the exact bytes it got (`verify`). A delivery that does
not get a 2xx answer within `TIMEOUT_S` is retried after 1, 2, 4 ... seconds (at most 5
minutes apart) until `webhook_attempts` tries, then marked failed; every try is kept
(`GET /v1/webhooks/{id}/deliveries`). The events come from the store's outbox
(`service/store/events.py`), so a change and its event are written together and the sender
(one thread in the API) can restart at any time without losing one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading

import httpx

from service.store import DeliveryRecord, Store, WebhookRecord

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rldojo-Signature"
TIMEOUT_S = 5.0
MAX_BACKOFF_S = 300.0


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`.

    Example:
        >>> sign("s3cret", b'{"event": "job.status"}')[:15]
        'sha256=dc81b686'
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """True when `signature` is `sign(secret, body)` (compared in constant time)."""
    return hmac.compare_digest(sign(secret, body), signature)


def backoff(attempts: int) -> dt.timedelta:
    """The wait before try `attempts + 1`: 1, 2, 4, ... seconds, at most 5 minutes."""
    return dt.timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)))


class Sender:
    """Sends due deliveries until stopped (one thread per API process)."""

    def __init__(self, store: Store, max_attempts: int, poll_s: float = 0.25) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.poll_s = poll_s
        self.http = httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                sent = self.send_due()
            except Exception:  # the database or a network edge case: log, go on
                logger.exception("webhook sender pass failed")
                sent = 0
            if not sent:
                stop.wait(self.poll_s)
        self.http.close()

    def send_due(self) -> int:
        """Try every delivery that is due now; how many were tried."""
        claimed = self.store.claim_deliveries()
        for delivery, hook in claimed:
            self._try(delivery, hook)
        return len(claimed)

    def _try(self, delivery: DeliveryRecord, hook: WebhookRecord) -> None:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "rldojo-webhooks",
            "X-Rldojo-Event": delivery.event,
            "X-Rldojo-Delivery": delivery.id,
            SIGNATURE_HEADER: sign(hook.secret, body),
        }
        attempts = delivery.attempts + 1
        status: int | None = None
        try:
            status = self.http.post(hook.url, content=body, headers=headers).status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        moment = dt.datetime.now(dt.UTC)
        if error is None:
            self.store.finish_delivery(
                delivery_id=delivery.id,
                state="delivered",
                attempts=attempts,
                last_status=status,
                last_error=None,
                delivered_at=moment,
            )
            return
        self.store.finish_delivery(
            delivery_id=delivery.id,
            state="failed" if attempts >= self.max_attempts else "pending",
            attempts=attempts,
            last_status=status,
            last_error=error[:500],
            next_attempt_at=moment + backoff(attempts),
        )
        logger.info("webhook %s delivery %s try %d: %s", hook.id, delivery.id, attempts, error)
