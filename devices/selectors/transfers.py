"""Reads for transfer requests."""

from __future__ import annotations

from console.models import User
from devices.models import DeviceTransfer


def transfers_for_owner(*, user: User) -> list[DeviceTransfer]:
    """Pending requests for devices claimed to `user` (the console's sandbox device page)."""
    return list(DeviceTransfer.objects.filter(owner=user, state=DeviceTransfer.State.PENDING, device__owner=user)
                .select_related("device", "requested_by").order_by("created_at"))
