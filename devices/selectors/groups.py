"""Reads for device groups, within a product the caller already reached."""

from __future__ import annotations

from devices.models import DeviceGroupMembership
from products.models import DeviceGroup, Product


def product_groups(product: Product, name: str = "") -> list[DeviceGroup]:
    """The product's groups by name; `name` keeps those whose name contains it."""
    qs = DeviceGroup.objects.filter(product=product)
    if name:
        qs = qs.filter(name__icontains=name)
    return list(qs.order_by("name"))


def group_get(product: Product, name: str) -> DeviceGroup | None:
    return DeviceGroup.objects.filter(product=product, name=name).select_related("product", "product__account").first()


def groups_of(device_ids: list[str]) -> dict[str, list[str]]:
    """Each device's group names, in one query."""
    out: dict[str, list[str]] = {i: [] for i in device_ids}
    if device_ids:
        for device_id, name in (DeviceGroupMembership.objects.filter(device_id__in=device_ids)
                                .order_by("group__name").values_list("device_id", "group__name")):
            out[device_id].append(name)
    return out
