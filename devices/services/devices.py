"""Writes on one device or a selection: rename, notes, flags and the firmware lock; unclaim; remove from the
product; deny. Each keeps `Product.device_count` and `DeviceGroup.device_count` current with F() updates in
the same transaction, so lists never count rows."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console import validation
from console.errors import Forbidden, NotFound, ValidationFailed
from console.scoping import Principal
from console.services.audit import audit_record
from console.validation import UNSET, given
from devices.identifiers import DEVICE_NAME
from devices.models import Device, DeviceGroupMembership, SimCard
from devices.services.audit import audit_device
from devices.services.groups import device_set_groups
from devices.services.sessions import device_disconnect_on_commit
from products.models import DeviceGroup, Product

MAX_FIRMWARE_VERSION = 65535


def _name(value: object) -> str:
    name = validation.text(value, field="name", max_length=63, required=False)
    if name and not DEVICE_NAME.fullmatch(name):
        raise ValidationFailed("name may hold letters, digits, dashes and underscores (at most 63)", field="name")
    return name


@transaction.atomic
def device_update(*, principal: Principal, device: Device, product_form: bool, name: str = UNSET,
                  notes: str = UNSET, development: bool = UNSET, desired_firmware_version: int | None = UNSET,
                  firmware_updates_forced: bool = UNSET, groups: list[str] = UNSET, flash: bool = UNSET,
                  signal: bool = UNSET) -> dict:
    """PUT /v1/devices/:id and /v1/products/:p/devices/:id: the fields given, and only those, change.
    Returns the changed fields (Particle's response echoes them)."""
    changed: dict = {}
    if given(name):
        device.name = changed["name"] = _name(name)
    if given(notes):
        device.notes = changed["notes"] = validation.text(notes, field="notes", max_length=750, required=False,
                                                          multiline=True)
    if given(firmware_updates_forced):
        device.firmware_updates_forced = changed["firmware_updates_forced"] = firmware_updates_forced
    product_fields = [f for f, v in (("desired_firmware_version", desired_firmware_version),
                                     ("development", development), ("flash", flash), ("groups", groups)) if given(v)]
    if product_fields and not product_form and device.product_id is None:
        raise ValidationFailed(f"{product_fields[0]} applies to product devices only", field=product_fields[0])
    if device.product_id is not None:
        _check_product_fields(principal, device, product_fields + (
            ["firmware_updates_forced"] if given(firmware_updates_forced) else []))
    if given(development):
        device.development = changed["development"] = development
    if given(desired_firmware_version):
        if desired_firmware_version is not None and not 1 <= desired_firmware_version <= MAX_FIRMWARE_VERSION:
            raise ValidationFailed(f"desired_firmware_version must be 1 to {MAX_FIRMWARE_VERSION}",
                                   field="desired_firmware_version")
        device.desired_firmware_version = changed["desired_firmware_version"] = desired_firmware_version
    if given(groups):
        changed["groups"] = device_set_groups(principal=principal, device=device, names=groups, audit=False)
    if not changed and not given(signal):
        raise ValidationFailed("Nothing to update: send name, notes, development, desired_firmware_version, "
                               "groups, firmware_updates_forced or signal")
    device.updated_at = timezone.now()
    device.save()
    if changed:
        audit_device(principal, device, "update", {"fields": sorted(changed)})
    return changed


def _check_product_fields(principal: Principal | None, device: Device, fields: list[str]) -> None:
    """A product device's product settings (groups, development, the firmware lock, forced updates) are the
    product team's: a customer may rename its device and add notes, nothing more; a person who claimed a
    product device keeps only what their current role on the product allows (an ex-member, nothing)."""
    if not fields or principal is None:
        return
    if principal.kind == "customer":
        raise Forbidden(f"Customers may rename their devices and add notes; {fields[0]} is the product team's",
                        field=fields[0])
    if not Product.objects.restrict(principal, "devices:update").filter(pk=device.product_id).exists():
        raise Forbidden(f"Changing {fields[0]} needs a role on the device's product that may update devices",
                        field=fields[0])


@transaction.atomic
def device_unclaim(*, principal: Principal, device: Device) -> Device:
    """Release the device's user or customer owner (it stays in its product)."""
    before = device.owner.email if device.owner_id else (device.customer.email if device.customer_id else None)
    device.owner = None
    device.customer = None
    device.updated_at = timezone.now()
    device.save(update_fields=["owner", "customer", "updated_at"])
    audit_device(principal, device, "unclaim", {"was": before})
    return device


def user_devices_release(user) -> None:
    """The user's account is being deleted: every device claimed to them is unclaimed (a sandbox device also
    loses the name and notes they gave it; a product device keeps the product's), and their sandbox SIMs are
    released (deactivated, owned by nobody), so the next owner can claim them."""
    now = timezone.now()
    Device.objects.filter(owner=user, product__isnull=True).update(owner=None, name="", notes="", updated_at=now)
    Device.objects.filter(owner=user).update(owner=None, updated_at=now)
    sandbox_sims = SimCard.objects.filter(user=user, product__isnull=True)
    sandbox_sims.filter(status=SimCard.Status.ACTIVE).update(deactivations_count=F("deactivations_count") + 1)
    sandbox_sims.update(user=None, status=SimCard.Status.INACTIVE, last_status_change_action="release",
                        updated_at=now)
    SimCard.objects.filter(user=user).update(user=None, updated_at=now)


def _leave_product(device: Device) -> None:
    memberships = list(DeviceGroupMembership.objects.filter(device=device).values_list("group_id", flat=True))
    if memberships:
        DeviceGroupMembership.objects.filter(device=device).delete()
        DeviceGroup.objects.filter(pk__in=memberships).update(device_count=F("device_count") - 1)
    if not device.quarantined and not device.denied:
        Product.objects.filter(pk=device.product_id).update(device_count=F("device_count") - 1)


@transaction.atomic
def device_remove(*, principal: Principal, device: Device) -> None:
    """DELETE /v1/products/:p/devices/:id: out of the product; a customer owner is released too."""
    product = device.product
    _leave_product(device)
    device.product = None
    device.customer = None
    device.quarantined = device.denied = device.development = False
    device.desired_firmware_version = None
    device.updated_at = timezone.now()
    device.save()
    audit_record(principal=principal, action="device.remove", target=device.id, account=product.account,
                 product_id=product.pk)
    # A connected device is let go: it was admitted as the product's, and its next connect is decided afresh
    # (onboarding again, which may quarantine it in the product whose firmware it runs).
    device_disconnect_on_commit(device.id, "removed from its product")


@transaction.atomic
def devices_remove(*, principal: Principal, product: Product, device_ids: list[str]) -> int:
    """Remove a selection of the product's devices (the console's bulk action): all of them or, if one is not
    a device of the product, none."""
    removed = 0
    for device_id in device_ids:
        device = (Device.objects.filter(product=product, pk=device_id)
                  .select_related("owner", "customer", "product", "product__account").first())
        if device is None:
            raise NotFound(f"Device {device_id} not found in this product")
        device_remove(principal=principal, device=device)
        removed += 1
    return removed


@transaction.atomic
def device_deny(*, principal: Principal, device: Device) -> None:
    """Deny a device (normally one in quarantine): it stays known to the product, blocked, out of every list."""
    _leave_product(device)
    device.quarantined = False
    device.denied = True
    device.updated_at = timezone.now()
    device.save(update_fields=["quarantined", "denied", "updated_at"])
    audit_device(principal, device, "deny")
    device_disconnect_on_commit(device.id, "denied")


def recount(product: Product) -> tuple[int, int]:
    """Recompute the stored counters of one product from the rows (repairs drift)."""
    members = Device.objects.filter(product=product, quarantined=False, denied=False).count()
    Product.objects.filter(pk=product.pk).update(device_count=members)
    groups = 0
    for group in DeviceGroup.objects.filter(product=product):
        DeviceGroup.objects.filter(pk=group.pk).update(
            device_count=DeviceGroupMembership.objects.filter(group=group).count())
        groups += 1
    return members, groups
