"""The free sandbox limit (particle-api.md "Numbers"; seed 001 "Adding product devices - free plan").

A user's sandbox counts the devices claimed to the user outside any product plus every member device of the
products the sandbox owns. Organization products never count, even when their devices are claimed to the user.
"""

from __future__ import annotations

from django.db.models import Q

from console.models import Account, User
from devices.models import Device

FREE_DEVICE_LIMIT = 100


def sandbox_device_count(user: User) -> int:
    return Device.objects.filter(
        Q(product__isnull=True, owner=user)
        | Q(product__account__kind=Account.Kind.SANDBOX, product__account__owner=user,
            quarantined=False, denied=False)
    ).count()
