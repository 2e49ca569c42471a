"""Holding the free sandbox limit (`devices.selectors.limits`) against concurrent claims, imports and
approved transfers."""

from __future__ import annotations

from console.errors import LimitExceeded
from console.models import User
from devices.selectors.limits import FREE_DEVICE_LIMIT, sandbox_device_count


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
