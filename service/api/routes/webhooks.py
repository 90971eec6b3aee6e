"""/v1/webhooks: register URLs that get every status change of your jobs and evaluations."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from service.api.deps import Owner, StoreDep
from service.api.routes.jobs import ERRORS
from service.schemas import DeliveryOut, WebhookIn, WebhookOut
from service.store import WebhookRecord

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=ERRORS)
WebhookId = Annotated[str, Path(max_length=64)]


def _owned(store: StoreDep, owner: str, webhook_id: str) -> WebhookRecord:
    hook = store.get_webhook(webhook_id=webhook_id, owner=owner)
    if hook is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id}")
    return hook


@router.post("", status_code=status.HTTP_201_CREATED)
def create_webhook(request: WebhookIn, owner: Owner, store: StoreDep) -> WebhookOut:
    """Register a URL; the answer shows its signing secret (this once)."""
    secret = request.secret or secrets.token_hex(32)
    hook = store.create_webhook(owner=owner, url=request.url, secret=secret)
    return WebhookOut(id=hook.id, url=hook.url, secret=secret, created_at=hook.created_at)


@router.get("")
def list_webhooks(owner: Owner, store: StoreDep) -> list[WebhookOut]:
    """Your webhooks (without their secrets)."""
    return [
        WebhookOut(id=h.id, url=h.url, created_at=h.created_at)
        for h in store.list_webhooks(owner=owner)
    ]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: WebhookId, owner: Owner, store: StoreDep) -> None:
    """Stop sending to this URL (its delivery log goes with it)."""
    store.delete_webhook(webhook_id=_owned(store, owner, webhook_id).id)


@router.get("/{webhook_id}/deliveries")
def list_deliveries(webhook_id: WebhookId, owner: Owner, store: StoreDep) -> list[DeliveryOut]:
    """Every event sent (or being retried) to this webhook, newest first, with its outcome."""
    hook = _owned(store, owner, webhook_id)
    return [DeliveryOut.model_validate(d) for d in store.list_deliveries(webhook_id=hook.id)]
