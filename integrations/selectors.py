"""Reads for integrations. A sandbox hook is reached through its user, a product hook through
`products.selectors.product_get` (the scoping door), so another tenant's hook is a 404 like a missing one."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from console.errors import NotFound
from console.scoping import Principal
from integrations.models import Delivery, Integration
from products.models import Product

HOOK_ID = re.compile(r"[0-9a-f]{24}")


def integrations_of(*, product: Product | None = None, user=None) -> QuerySet[Integration]:
    """The hooks of one product, or one user's sandbox hooks, oldest first (Particle lists them so)."""
    qs = Integration.objects.filter(product=product) if product is not None else Integration.objects.filter(user=user)
    return qs.order_by("created_at", "id")


def integration_get(*, principal: Principal, integration_id: str, product: Product | None = None) -> Integration:
    """One hook of `product` (already reached through product_get) or of the principal's sandbox; 404 otherwise."""
    if not HOOK_ID.fullmatch(str(integration_id)):
        raise NotFound(f"Integration {str(integration_id)[:40]} not found")
    qs = integrations_of(product=product, user=principal.user if product is None else None)
    found = qs.select_related("product", "product__account").filter(pk=integration_id).first()
    if found is None:
        raise NotFound(f"Integration {integration_id} not found")
    return found


def dead_letters(integration: Integration, *, limit: int = 100) -> list[Delivery]:
    """The integration's deliveries whose retries ran out (or that the receiver refused for good), newest first."""
    return list(Delivery.objects.filter(integration=integration, state=Delivery.State.DEAD)
                .order_by("-finished_at", "-id")[:limit])


def dead_letter_count(integration: Integration) -> int:
    return Delivery.objects.filter(integration=integration, state=Delivery.State.DEAD).count()


def integration_days(integration: Integration, *, days: int = 30) -> list[dict]:
    """Daily success/failure/sleep counts, oldest first, the last `days` UTC days with any attempt."""
    from datetime import timedelta

    from django.utils import timezone

    since = timezone.now().date() - timedelta(days=days - 1)
    return [{"day": d.day.isoformat(), "success": d.success, "failure": d.failure, "sleep": d.sleep}
            for d in integration.days.filter(day__gte=since).order_by("day")]
