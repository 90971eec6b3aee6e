"""/v1/webhooks: register URLs that get every status change of your jobs and evaluations.

A URL is checked when it is registered and when it is re-enabled (`service.webhook_targets`:
https unless the operator allows http, no user info or control characters, every address
its host resolves to global unless the operator's allow-list names it); a refusal is a 422
naming `url` and why. Delivery checks it again at every try.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from service.api.deps import Owner, SettingsDep, StoreDep
from service.api.routes.jobs import ERRORS
from service.schemas import DeliveryOut, WebhookIn, WebhookOut, WebhookPatch
from service.settings import Settings
from service.store import WebhookRecord
from service.text import PlainText
from service.webhook_targets import resolve_and_check
from service.webhooks import policy_of

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERRORS)
WebhookId = Annotated[PlainText, Path(max_length=64)]


def _owned(store: StoreDep, owner: str, webhook_id: str) -> WebhookRecord:
    hook = store.get_webhook(webhook_id=webhook_id, owner=owner)
    if hook is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id}")
    return hook


def _check_url(url: str, settings: Settings) -> None:
    """422 naming `url` unless the rules allow POSTing to it now."""
    verdict = resolve_and_check(url, policy_of(settings))
    if not verdict.allowed:
        detail = [{"loc": ["body", "url"], "msg": f"webhook URL refused: {verdict.reason}"}]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_webhook(
    request: WebhookIn, owner: Owner, store: StoreDep, settings: SettingsDep
) -> WebhookOut:
    """Register a URL; the answer shows its signing secret (this once)."""
    _check_url(request.url, settings)
    secret = request.secret or secrets.token_hex(32)
    hook = store.create_webhook(owner=owner, url=request.url, secret=secret)
    return WebhookOut.model_validate(hook).model_copy(update={"secret": secret})


@router.get("")
def list_webhooks(owner: Owner, store: StoreDep) -> list[WebhookOut]:
    """Your webhooks (without their secrets), each with its health: enabled or disabled (when
    and why), and its failed deliveries in a row."""
    return [_public(h) for h in store.list_webhooks(owner=owner)]


@router.get("/{webhook_id}")
def get_webhook(webhook_id: WebhookId, owner: Owner, store: StoreDep) -> WebhookOut:
    """One of your webhooks (without its secret)."""
    return _public(_owned(store, owner, webhook_id))


@router.patch("/{webhook_id}")
def update_webhook(
    webhook_id: WebhookId,
    change: WebhookPatch,
    owner: Owner,
    store: StoreDep,
    settings: SettingsDep,
) -> WebhookOut:
    """Disable a webhook (what it has pending is marked failed), or enable it again: its URL
    is checked as at registration and its failure count starts from 0."""
    hook = _owned(store, owner, webhook_id)
    if change.enabled:
        _check_url(hook.url, settings)
    changed = store.set_webhook_enabled(webhook_id=hook.id, enabled=change.enabled)
    if changed is None:  # removed meanwhile
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id}")
    return _public(changed)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: WebhookId, owner: Owner, store: StoreDep) -> None:
    """Stop sending to this URL (its delivery log goes with it)."""
    store.delete_webhook(webhook_id=_owned(store, owner, webhook_id).id)


@router.get("/{webhook_id}/deliveries")
def list_deliveries(webhook_id: WebhookId, owner: Owner, store: StoreDep) -> list[DeliveryOut]:
    """Every event sent (or being retried) to this webhook, newest first, with its outcome."""
    hook = _owned(store, owner, webhook_id)
    return [DeliveryOut.model_validate(d) for d in store.list_deliveries(webhook_id=hook.id)]


def _public(hook: WebhookRecord) -> WebhookOut:
    return WebhookOut.model_validate(hook).model_copy(update={"secret": None})
