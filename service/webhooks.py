"""Webhook deliveries: every status change of an owner's jobs and evaluations, POSTed as JSON.

Each request carries:

    Content-Type: application/json
    X-Rldojo-Event: job.status | evaluation.status
    X-Rldojo-Delivery: <delivery id>           (the same on every retry of one event)
    X-Rldojo-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the webhook's secret>

A receiver checks the signature over the exact bytes it got (`verify`). The events come from
the store's outbox (`service/store/events.py`), so a change and its event are written
together and the sender can restart at any time without losing one.

Every try checks the URL again (`service.webhook_targets`: resolve, check every address) and
connects to the address it checked, with the Host header and TLS name (SNI and certificate)
of the URL's host, so a name that resolves elsewhere a moment later changes nothing.
Redirects are not followed. A try that gets no 2xx within the timeouts is retried after 1,
2, 4 ... seconds (at most 5 minutes apart) until `webhook_attempts` tries, then marked
failed; a URL the rules refuse, or a request that cannot be built, fails at once with its
reason. Tries run on a small thread pool with at most `webhook_in_flight` at a time per
webhook, so a receiver that never answers holds up only its own deliveries; after
`webhook_disable_after` failed deliveries in a row the webhook is disabled (its owner
re-enables it with PATCH /v1/webhooks/{id}).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from service.settings import Settings
from service.store import DeliveryRecord, Store, WebhookRecord
from service.webhook_targets import Policy, Resolver, Verdict, resolve_and_check

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Rldojo-Signature"
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


def policy_of(settings: Settings) -> Policy:
    """The operator's webhook rules: http allowed or not, and the allow-list."""
    return Policy.from_entries(settings.webhook_allow, allow_http=settings.webhook_allow_http)


@dataclass(frozen=True)
class DeliveryOptions:
    """How deliveries are sent (the `webhook_*` settings)."""

    max_attempts: int = 12
    disable_after: int = 20
    workers: int = 8
    in_flight: int = 2
    connect_timeout_s: float = 3.0
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryOptions:
        return cls(
            max_attempts=settings.webhook_attempts,
            disable_after=settings.webhook_disable_after,
            workers=settings.webhook_workers,
            in_flight=settings.webhook_in_flight,
            connect_timeout_s=settings.webhook_connect_timeout_seconds,
            timeout_s=settings.webhook_timeout_seconds,
        )

    @property
    def lease(self) -> dt.timedelta:
        """How long a claim holds a delivery: longer than any one try can take."""
        return dt.timedelta(seconds=max(60.0, 4 * (self.connect_timeout_s + 2 * self.timeout_s)))


@dataclass(frozen=True)
class Outcome:
    """One try: the answer's status, or what went wrong; `final` when a retry cannot help."""

    status: int | None = None
    error: str | None = None
    final: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None


class Sender:
    """Sends due deliveries until stopped (one per API process), on a thread pool.

    Args:
        store: the outbox.
        policy: which receivers are allowed (`policy_of(settings)`).
        options: attempts, disabling, concurrency and timeouts.
        resolver: host name -> addresses (default: the system's, getaddrinfo).
        transport: the HTTP transport (default: httpx's, no connection kept alive, no proxy).
        poll_s: how long to wait when nothing could be started.
    """

    def __init__(
        self,
        store: Store,
        policy: Policy,
        options: DeliveryOptions | None = None,
        *,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.store = store
        self.policy = policy
        self.options = options or DeliveryOptions()
        self.resolver = resolver
        self.poll_s = poll_s
        # Each try makes its own connection (to the address it checked, with its own TLS
        # name); environment proxies would connect elsewhere, so they are not used.
        self.http = httpx.Client(
            transport=transport
            or httpx.HTTPTransport(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0)
            ),
            timeout=httpx.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            follow_redirects=False,
            trust_env=False,
        )
        self._pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="webhook")
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> Sender:
        """The sender the settings describe."""
        return cls(store, policy_of(settings), DeliveryOptions.from_settings(settings))

    def run(self, stop: threading.Event) -> None:
        """Start due deliveries until `stop` is set; then wait for the tries in flight."""
        try:
            while not stop.is_set():
                try:
                    started = self.send_due()
                except Exception:  # the database or a network edge case: log, go on
                    logger.exception("webhook sender pass failed")
                    started = 0
                if not started:
                    stop.wait(self.poll_s)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)  # a cancelled claim expires
            self.http.close()

    def send_due(self) -> int:
        """Claim and start what is due, as far as the pool and each webhook's limit allow;
        how many tries were started."""
        with self._lock:
            free = self.options.workers - sum(self._in_flight.values())
            busy = {h for h, n in self._in_flight.items() if n >= self.options.in_flight}
        if free <= 0:
            return 0
        claimed = self.store.claim_deliveries(
            limit=free, lease=self.options.lease, skip_webhooks=busy
        )
        for delivery, hook in claimed:
            with self._lock:
                self._in_flight[hook.id] += 1
            self._pool.submit(self._deliver, delivery, hook)
        return len(claimed)

    def _deliver(self, delivery: DeliveryRecord, hook: WebhookRecord) -> None:
        try:
            if not hook.enabled:
                reason = f"not sent: webhook {hook.disabled_reason or 'disabled'}"
                self._record(delivery, hook, Outcome(error=reason, final=True), counts=False)
                return
            self._record(delivery, hook, self.attempt(delivery, hook))
        except Exception:  # the database: the claim expires and the delivery is tried again
            logger.exception("webhook %s delivery %s: recording failed", hook.id, delivery.id)
        finally:
            with self._lock:
                self._in_flight[hook.id] -= 1
                if self._in_flight[hook.id] <= 0:
                    del self._in_flight[hook.id]

    def attempt(self, delivery: DeliveryRecord, hook: WebhookRecord) -> Outcome:
        """One try: check the URL now, then POST to the address that was checked."""
        verdict = resolve_and_check(hook.url, self.policy, self.resolver)
        if not verdict.allowed:
            return Outcome(error=f"refused: {verdict.reason}", final=not verdict.temporary)
        try:
            request = self._request(delivery, hook, verdict)
        except Exception as error:  # whatever it is, this delivery cannot go
            return Outcome(error=f"cannot build the request: {error}", final=True)
        try:
            response = self.http.send(request, stream=True)  # the body is never read
            response.close()
        except httpx.HTTPError as failure:
            return Outcome(error=f"{type(failure).__name__}: {failure}")
        status = response.status_code
        if 200 <= status < 300:
            return Outcome(status=status)
        if 300 <= status < 400:
            return Outcome(status=status, error=f"HTTP {status} (redirects are not followed)")
        return Outcome(status=status, error=f"HTTP {status}")

    def _request(
        self, delivery: DeliveryRecord, hook: WebhookRecord, verdict: Verdict
    ) -> httpx.Request:
        target, address = verdict.target, verdict.address
        assert target is not None and address is not None
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": "rldojo-webhooks",
            "X-Rldojo-Event": delivery.event,
            "X-Rldojo-Delivery": delivery.id,
            SIGNATURE_HEADER: sign(hook.secret, body),
        }
        # TLS checks the certificate against the URL's host, not the address connected to.
        named = target.scheme == "https" and target.literal is None
        extensions = {"sni_hostname": target.host} if named else {}
        return self.http.build_request(
            "POST", target.url_for(address), content=body, headers=headers, extensions=extensions
        )

    def _record(
        self, delivery: DeliveryRecord, hook: WebhookRecord, outcome: Outcome, counts: bool = True
    ) -> None:
        attempts = delivery.attempts + 1
        moment = dt.datetime.now(dt.UTC)
        if outcome.delivered:
            self.store.finish_delivery(
                delivery_id=delivery.id,
                state="delivered",
                attempts=attempts,
                last_status=outcome.status,
                last_error=None,
                delivered_at=moment,
            )
            self.store.record_webhook_outcome(
                webhook_id=hook.id, delivered=True, disable_after=self.options.disable_after
            )
            return
        error = (outcome.error or "")[:500]
        final = outcome.final or attempts >= self.options.max_attempts
        self.store.finish_delivery(
            delivery_id=delivery.id,
            state="failed" if final else "pending",
            attempts=attempts,
            last_status=outcome.status,
            last_error=error,
            next_attempt_at=moment + backoff(attempts),
        )
        logger.info("webhook %s delivery %s try %d: %s", hook.id, delivery.id, attempts, error)
        if final and counts and self._count_failure(hook, error):
            logger.warning("webhook %s (%s) disabled: %s", hook.id, hook.owner, error)

    def _count_failure(self, hook: WebhookRecord, error: str) -> bool:
        return self.store.record_webhook_outcome(
            webhook_id=hook.id,
            delivered=False,
            disable_after=self.options.disable_after,
            reason=error,
        )
