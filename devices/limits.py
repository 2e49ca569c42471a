"""The free sandbox limit (particle-api.md "Numbers"; seed 001 "Adding product devices - free plan").

A user's sandbox counts the devices claimed to the user outside any product plus every member device of the
products the sandbox owns. Organization products never count, even when their devices are claimed to the user.
"""

from __future__ import annotations

from django.db.models import Q

from console.errors import LimitExceeded
from console.models import Account, User

FREE_DEVICE_LIMIT = 100


def sandbox_device_count(user: User) -> int:
    from devices.models import Device  # noqa: PLC0415 - models import this module's constant

    return Device.objects.filter(
        Q(product__isnull=True, owner=user)
        | Q(product__account__kind=Account.Kind.SANDBOX, product__account__owner=user,
            quarantined=False, denied=False)
    ).count()


def lock_sandbox(user: User) -> None:
    """Serialize the writes that count against `user`'s free limit (claims, sandbox imports, approved
    transfers) until the caller's transaction ends, so two of them cannot both see room for the last device.
    Take it before locking any device row: every path locks the user first, then devices."""
    list(User.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk", flat=True))


def check_sandbox_room(user: User, adding: int) -> None:
    """Refuse (LimitExceeded) when `adding` more devices would take the sandbox past the free limit."""
    if adding <= 0:
        return
    lock_sandbox(user)
    used = sandbox_device_count(user)
    if used + adding > FREE_DEVICE_LIMIT:
        raise LimitExceeded(
            f"The free plan allows {FREE_DEVICE_LIMIT} devices per sandbox (devices claimed to "
            f"{user.email} plus devices in the free products it owns); it has {used}, and this would add "
            f"{adding}. Move the product into an organization to go past the limit.",
            code="device_limit_reached", limit=FREE_DEVICE_LIMIT, used=used, adding=adding,
        )
