"""Writes for integrations: create, replace (PUT), delete, rotate the signing secret, replay dead letters.

Each is one transaction with an audit row. Delivery work (integrations/delivery.py) is enqueued after commit.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from console.errors import ValidationFailed
from console.queue import enqueue_on_commit
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.users import sandbox_of
from integrations import logs, owners
from integrations.models import Delivery, Integration, new_signing_secret
from integrations.validation import WebhookFields
from products.models import Product

REPLAY_MAX = 10_000
BATCH = 100  # deliveries per task


def _refresh_owner_after_commit(hook: Integration) -> None:
    """Keep integrations/owners.py's set true: a live hook's owner joins it at once (a member too many only
    costs the consumer a query, even if this transaction rolls back); whether it stays is decided after
    commit, from the database."""
    product_id, user_id = hook.product_id, hook.user_id
    if not hook.disabled:
        owners.owner_add(product_id=product_id, user_id=user_id)
    transaction.on_commit(lambda: owners.owner_refresh(product_id=product_id, user_id=user_id))


def _audit(principal: Principal, action: str, hook: Integration, data: dict | None = None) -> None:
    if hook.product_id is not None:
        audit_record(principal=principal, action=action, target=hook.id, account=hook.product.account,
                     product_id=hook.product_id, data=data)
    else:
        audit_record(principal=principal, action=action, target=hook.id, account=sandbox_of(hook.user), data=data)


@transaction.atomic
def integration_create(*, principal: Principal, fields: WebhookFields, product: Product | None = None,
                       user=None) -> Integration:
    """A new webhook of `product`, or of `user`'s sandbox. The same body twice makes two hooks (Particle)."""
    if (product is None) == (user is None):
        raise ValueError("an integration belongs to a product or to a user")
    hook = Integration.objects.create(product=product, user=user, name=fields.name, event=fields.event,
                                      device_id=fields.device_id, disabled=fields.disabled, config=fields.config)
    _audit(principal, "integration.create", hook, {"event": hook.event, "url": hook.url})
    _refresh_owner_after_commit(hook)
    return hook


@transaction.atomic
def integration_replace(*, principal: Principal, integration: Integration, fields: WebhookFields) -> Integration:
    """PUT: the whole config is replaced, not merged (particle-api.md §14); the signing secret stays."""
    integration.name, integration.event = fields.name, fields.event
    integration.device_id, integration.disabled, integration.config = fields.device_id, fields.disabled, fields.config
    integration.save()
    _audit(principal, "integration.update", integration, {"event": integration.event, "url": integration.url})
    _refresh_owner_after_commit(integration)
    return integration


@transaction.atomic
def integration_delete(*, principal: Principal, integration: Integration) -> None:
    """Remove the hook; what it still owed (pending and dead deliveries) goes with it, and after commit its
    recent-requests lists in Redis."""
    _audit(principal, "integration.delete", integration, {"event": integration.event})
    _refresh_owner_after_commit(integration)
    hook_id = integration.pk
    integration.delete()
    transaction.on_commit(lambda: logs.logs_forget(hook_id))


@transaction.atomic
def integration_rotate_secret(*, principal: Principal, integration: Integration) -> str:
    """A new signing secret, returned once; deliveries signed from now on use it."""
    integration.signing_secret = new_signing_secret()
    integration.save(update_fields=["signing_secret", "updated_at"])
    _audit(principal, "integration.rotate_secret", integration)
    return integration.signing_secret


def enqueue_batches(ids: list[int]) -> None:
    for start in range(0, len(ids), BATCH):
        enqueue_on_commit("integrations.deliver", ids=ids[start:start + BATCH])


@transaction.atomic
def dead_letters_replay(*, principal: Principal, integration: Integration, ids: list[int] | None = None) -> int:
    """Send dead-lettered deliveries again, with the same event id (so a receiver can tell a replay of what it
    already has): all of the hook's, or the ones named. Returns how many were queued."""
    qs = Delivery.objects.filter(integration=integration, state=Delivery.State.DEAD)
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationFailed("ids must be a list of dead-letter ids", field="ids")
        qs = qs.filter(pk__in=ids)
    chosen = list(qs.order_by("id").values_list("id", flat=True)[:REPLAY_MAX])
    if chosen:
        Delivery.objects.filter(pk__in=chosen, state=Delivery.State.DEAD).update(
            state=Delivery.State.PENDING, attempts=0, sleeps=0, next_attempt_at=timezone.now(), claimed_at=None,
            finished_at=None)
        enqueue_batches(chosen)
    _audit(principal, "integration.replay", integration, {"count": len(chosen)})
    return len(chosen)
