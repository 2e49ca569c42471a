"""Device, SIM, group and customer output in Particle's field names (particle-api.md §6.1, §7, §8, §11)."""

from __future__ import annotations

from console.api.serializers import iso
from devices.models import Device, SimCard
from products.models import DeviceGroup


def owner_name(device: Device) -> str | None:
    if device.owner_id:
        return device.owner.email
    if device.customer_id:
        return device.customer.email
    return None


def device_body(device: Device, groups: list[str] | None = None) -> dict:
    sim = getattr(device, "_sim_cache", None)
    if sim is None:
        try:
            sim = device.sim
        except SimCard.DoesNotExist:
            sim = None
    body = {
        "id": device.id,
        "name": device.name or None,
        "owner": owner_name(device),
        "last_ip_address": device.last_ip_address,
        "last_heard": iso(device.last_heard),
        "last_handshake_at": iso(device.last_handshake_at),
        "product_id": device.product_id if device.product_id is not None else device.platform_id,
        "online": device.online,
        "connected": device.online,
        "platform_id": device.platform_id,
        "cellular": device.platform.is_cellular,
        "notes": device.notes or None,
        "functions": list(device.functions or []),
        "variables": dict(device.variables or {}),
        "status": device.status,
        "serial_number": device.serial_number,
        "iccid": sim.iccid if sim else None,
        "last_iccid": sim.iccid if sim else None,
        "imei": device.imei or None,
        "mac_wifi": device.mac_wifi or None,
        "mobile_secret": None,
        "system_firmware_version": device.system_firmware_version or None,
        "current_build_target": device.system_firmware_version or None,
        "pinned_build_target": None,
        "default_build_target": None,
        "firmware_updates_enabled": device.firmware_updates_enabled,
        "firmware_updates_forced": device.firmware_updates_forced,
        "device_protection": {"status": "disabled"},
    }
    if device.product_id is not None:
        body.update({
            "firmware_product_id": device.product_id,
            "groups": groups if groups is not None else sorted(device.groups.values_list("name", flat=True)),
            "firmware_version": device.firmware_version,
            "desired_firmware_version": device.desired_firmware_version,
            "targeted_firmware_release_version": device.desired_firmware_version,
            "development": device.development,
            "quarantined": device.quarantined,
            "denied": device.denied,
        })
    return body


def group_body(group: DeviceGroup, *, with_count: bool = True) -> dict:
    body = {"name": group.name, "description": group.description, "color": group.color, "fw_version": None}
    if with_count:
        body["device_count"] = group.device_count
    return body
