"""Helpers for device tests: manufacture registered devices and import them the way the API does."""

from __future__ import annotations

from devices.services.registry import devices_manufacture
from products.models import Platform


def manufacture(platform_id: int, count: int):
    return devices_manufacture(platform=Platform.objects.get(pk=platform_id), count=count)


def ids(made) -> list[str]:
    return [m.device_id for m in made]
