"""Product output in Particle's field names (particle-api.md §10)."""

from __future__ import annotations

from console.api.serializers import iso
from products.models import Product


def product_body(product: Product) -> dict:
    account = product.account
    body = {
        "id": product.pk,
        "platform_id": product.platform_id,
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "subscription_id": None,
        "mb_limit": None,
        "user": account.owner.email if account.is_sandbox else None,
        "groups": [],
        "settings": {
            "location": {"opt_in": product.location_opt_in},
            "known_application": {"opt_in": False},
            "quarantine": product.quarantine,
        },
        "device_protection": "disabled",
        "requires_activation_codes": False,
        "created_at": iso(product.created_at),
    }
    if not account.is_sandbox:
        body.update(org=account.slug, organization_id=str(account.pk), organization=account.name)
    return body
