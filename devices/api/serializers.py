"""Device, SIM, group and customer output in Particle's field names (particle-api.md §6.1, §7, §8, §11)."""

from __future__ import annotations

from console.api.serializers import iso
from devices.models import ClaimCode, Customer, Device, SimCard
from products.models import DeviceGroup


def owner_name(device: Device) -> str | None:
    if device.owner_id:
        return device.owner.email
    if device.customer_id:
        return device.customer.email
    return None


# What device_body reads of a device, for a list that loads only that (product_device_page's `shown`): the
# other timestamps of the device, its owner's, customer's and SIM's were most of a 100-row page's decoding.
# tests/test_device_search.py holds a list page's statements to as many for 100 rows as for 3.
DEVICE_BODY_FIELDS = (
    "id", "name", "owner__email", "customer__email", "last_ip_address", "last_heard", "last_handshake_at",
    "product", "online", "platform__connectivity", "notes", "functions", "variables", "status", "serial_number",
    "sim__iccid", "imei", "mac_wifi", "system_firmware_version", "firmware_updates_enabled",
    "firmware_updates_forced", "firmware_version", "desired_firmware_version", "development", "quarantined",
    "denied",
)


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


def sim_body(sim: SimCard) -> dict:
    device: Device | None = sim.device if sim.device_id else None
    status = "inactive" if sim.status == SimCard.Status.NEVER_ACTIVATED else sim.status
    return {
        "_id": sim.iccid,
        "iccid": sim.iccid,
        "activations_count": sim.activations_count,
        "deactivations_count": sim.deactivations_count,
        "base_country_code": sim.base_country_code,
        "base_monthly_rate": 0,
        "overage_monthly_rate": 0,
        "first_activated_on": iso(sim.first_activated_on),
        "last_activated_on": iso(sim.last_activated_on),
        "last_activated_via": sim.last_activated_via or None,
        "last_status_change_action": sim.last_status_change_action or None,
        "last_status_change_action_error": "yes" if sim.last_status_change_action_error else "no",
        "mb_limit": sim.mb_limit,
        "msisdn": sim.msisdn or None,
        "status": status,
        "stripe_plan_slug": None,
        "updated_at": iso(sim.updated_at),
        "user_id": sim.user.email if sim.user_id else None,
        "product_id": str(sim.product_id) if sim.product_id else None,
        "carrier": sim.carrier,
        "last_device_id": sim.device_id,
        "last_device_name": (device.name if device else "") or sim.last_device_name or None,
        "owner": sim.user.email if sim.user_id else None,
    }


def customer_usernames_body(devices: list[Device]) -> list[dict]:
    seen = {}
    for d in devices:
        if d.customer_id and d.customer_id not in seen:
            seen[d.customer_id] = {"id": str(d.customer_id), "username": d.customer.email}
    return list(seen.values())


def customer_list_body(customers: list[Customer], devices: list[Device]) -> dict:
    """GET /v1/products/:p/customers without `meta`: the customers with their device ids, and those devices."""
    by_customer: dict[int, list[str]] = {}
    for d in devices:
        by_customer.setdefault(d.customer_id, []).append(d.id)
    return {
        "customers": [{"id": str(c.pk), "username": c.email, "full_name": c.full_name or None,
                       "devices": by_customer.get(c.pk, [])} for c in customers],
        "devices": [{"id": d.id, "product_id": d.product_id, "last_ip_address": d.last_ip_address,
                     "firmware_version": d.firmware_version, "online": d.online} for d in devices],
    }


def claim_code_body(code: ClaimCode) -> dict:
    return {"claim_code": code.code, "device_ids": code.device_ids}


def serial_number_body(device: Device, sim: SimCard | None) -> dict:
    return {"ok": True, "serial_number": device.serial_number, "device_id": device.id, "deviceID": device.id,
            "platform_id": device.platform_id, "iccid": sim.iccid if sim else None}
