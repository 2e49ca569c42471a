"""The free sandbox limit (particle-api.md "Numbers"; seed 001 "Adding product devices - free plan").

A user's sandbox counts the devices claimed to the user outside any product plus every member device of the
products the sandbox owns. Organization products never count, even when their devices are claimed to the user.
"""

from __future__ import annotations

from console.models import Account, User
from devices.models import Device
from products.models import Product

FREE_DEVICE_LIMIT = 100


def sandbox_device_count(user: User, *, personal: int | None = None) -> int:
    """The devices the user's free limit counts. Two counts, each from its own index (the owner's, the
    product's), summed: one query with an OR across the product join read the whole device table (485 ms on a
    1,100,000-device database, bench/search.py). `personal` is the first count when the caller has it."""
    if personal is None:
        personal = Device.objects.filter(product__isnull=True, owner=user).count()
    # The sandbox's products first, then their members by the list index: joined in one statement, PostgreSQL
    # could not tell how few products a sandbox has and counted in a parallel scan of the whole device table
    # (23 ms, most of it starting the workers, for a sandbox without products; bench/search.py).
    products = list(Product.objects.filter(account__kind=Account.Kind.SANDBOX, account__owner=user)
                    .values_list("pk", flat=True))
    members = Device.objects.filter(product_id__in=products, quarantined=False, denied=False).count() if products else 0
    return personal + members
