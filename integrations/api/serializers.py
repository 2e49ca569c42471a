"""Integration output in Particle's field names (particle-api.md §14)."""

from __future__ import annotations

from django.conf import settings

from console.api.serializers import iso
from integrations.models import Delivery, Integration

# Config keys copied to the output as stored (Particle's names).
CONFIG_KEYS = ("json", "form", "body", "query", "headers", "auth", "responseTopic", "errorResponseTopic",
               "responseTemplate", "noDefaults", "rejectUnauthorized", "unchunked", "dataUrlResponseEvent")


def hook_url(hook: Integration) -> str:
    return f"{settings.PUBLIC_URL}/v1/webhooks/{hook.id}"


def integration_body(hook: Integration) -> dict:
    """One hook as a list item (every item carries integration_type: CLI ≥3.47 drops those without)."""
    out = {
        "id": hook.id,
        "integration_type": hook.integration_type,
        "event": hook.event,
        "name": hook.name or None,
        "url": hook.url,
        "requestType": hook.config.get("requestType", "POST"),
        "created_at": iso(hook.created_at),
        "updated_at": iso(hook.updated_at),
        "disabled": hook.disabled,
    }
    if hook.device_id:
        out["deviceID"] = hook.device_id
    if hook.product_id is not None:
        out["product_id"] = hook.product_id
    out.update({k: hook.config[k] for k in CONFIG_KEYS if k in hook.config})
    return out


def created_body(hook: Integration, secret: str) -> dict:
    """The 201 of a create: Particle's fields, plus the signing secret, shown this once."""
    return {"ok": True, **integration_body(hook), "hookUrl": hook_url(hook), "signing_secret": secret}


def delivery_body(row: Delivery) -> dict:
    return {
        "id": row.pk,
        "event_id": row.event_id,
        "event": {k: row.event.get(k) for k in ("name", "data", "coreid", "published_at")},
        "state": row.state,
        "attempts": row.attempts,
        "sleeps": row.sleeps,
        "last_status": row.last_status,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "failed_at": iso(row.finished_at),
    }
