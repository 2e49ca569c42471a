"""Writes for device groups: a device's groups, batch membership changes, and the groups themselves.
`DeviceGroup.device_count` moves with every membership change (F() updates in the same transaction)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from console import validation
from console.errors import Conflict, NotFound, ValidationFailed
from console.models import AuditEntry
from console.scoping import Principal
from console.services.audit import audit_record
from console.validation import UNSET, given
from devices.identifiers import COLOR, GROUP_NAME
from devices.models import Device, DeviceGroupMembership
from devices.services.audit import audit_device
from devices.services.liveness import lock_devices_in_order
from products.models import DeviceGroup, Product

MAX_BATCH = 10_000


def _group_names(names: list[str]) -> list[str]:
    cleaned = sorted({n.strip() for n in names})
    for name in cleaned:
        if not GROUP_NAME.fullmatch(name):
            raise ValidationFailed(f"Group name {name!r} may hold only lowercase letters, digits, - and _",
                                   field="groups")
    return cleaned


def _ensure_groups(product: Product, names: list[str]) -> list[DeviceGroup]:
    existing = {g.name: g for g in DeviceGroup.objects.filter(product=product, name__in=names)}
    for name in names:
        if name not in existing:
            existing[name] = DeviceGroup.objects.create(product=product, name=name)
    return [existing[n] for n in names]


def device_set_groups(*, principal: Principal, device: Device, names: list[str], audit: bool = True) -> list[str]:
    """Replace a product device's groups; unknown names are created (Particle's rule)."""
    if device.product_id is None:
        raise ValidationFailed("Only product devices have groups", field="groups")
    if device.denied:
        raise ValidationFailed("A denied device cannot join groups; approve it first", field="groups")
    wanted = _ensure_groups(device.product, _group_names(names))
    with transaction.atomic():
        current = set(DeviceGroupMembership.objects.filter(device=device).values_list("group_id", flat=True))
        target = {g.pk for g in wanted}
        removed, added = current - target, target - current
        if removed:
            DeviceGroupMembership.objects.filter(device=device, group_id__in=removed).delete()
            DeviceGroup.objects.filter(pk__in=removed).update(device_count=F("device_count") - 1)
        if added:
            DeviceGroupMembership.objects.bulk_create([DeviceGroupMembership(device=device, group_id=g) for g in added])
            DeviceGroup.objects.filter(pk__in=added).update(device_count=F("device_count") + 1)
        if audit:
            audit_device(principal, device, "groups", {"groups": [g.name for g in wanted]})
    return [g.name for g in wanted]


@transaction.atomic
def devices_batch_groups(*, principal: Principal, product: Product, device_ids: list[str],
                         add: list[str] = (), remove: list[str] = ()) -> int:
    """PUT /v1/products/:p/devices {"action":"groups", "devices":[...], "metadata":{"add":[...],"remove":[...]}}."""
    if not device_ids:
        raise ValidationFailed("devices must be a non-empty list of device ids", field="devices")
    if len(device_ids) > MAX_BATCH:
        raise ValidationFailed(f"At most {MAX_BATCH:,} devices per batch", field="devices")
    ids = sorted({d.strip().lower() for d in device_ids})
    found = set(Device.objects.filter(product=product, denied=False, id__in=ids).values_list("id", flat=True))
    missing = [d for d in ids if d not in found]
    if missing:
        raise NotFound(f"Not devices of this product: {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else ""))
    to_add = _ensure_groups(product, _group_names(list(add)))
    to_remove = list(DeviceGroup.objects.filter(product=product, name__in=_group_names(list(remove))))
    # The membership triggers rewrite each device's group_ids (migration 0017): all the rows locked at once, in
    # id order like every other writer of many devices, rather than statement by statement.
    lock_devices_in_order(ids)
    for group in to_add:
        have = set(DeviceGroupMembership.objects.filter(group=group, device_id__in=ids).values_list("device_id", flat=True))
        fresh = [DeviceGroupMembership(device_id=d, group=group) for d in ids if d not in have]
        DeviceGroupMembership.objects.bulk_create(fresh, batch_size=2000)
        DeviceGroup.objects.filter(pk=group.pk).update(device_count=F("device_count") + len(fresh))
    for group in to_remove:
        deleted, _ = DeviceGroupMembership.objects.filter(group=group, device_id__in=ids).delete()
        DeviceGroup.objects.filter(pk=group.pk).update(device_count=F("device_count") - deleted)
    # One history row per device, so each device page shows the change (bulk-inserted, not one by one).
    data = {"add": [g.name for g in to_add], "remove": [g.name for g in to_remove], "batch": len(ids)}
    AuditEntry.objects.bulk_create([
        AuditEntry(actor=principal.user, actor_label=principal.label, action="device.groups", target=device_id,
                   account=product.account, product_id=product.pk, data=data) for device_id in ids
    ], batch_size=2000)
    return len(ids)


def _group_fields(*, name: str, color: str, description: str, partial: bool) -> dict:
    out = {}
    if given(name) or not partial:
        name = validation.text(name if given(name) else None, field="name", max_length=100)
        if not GROUP_NAME.fullmatch(name):
            raise ValidationFailed("name may hold only lowercase letters, digits, - and _", field="name")
        out["name"] = name
    if given(color) and color not in (None, ""):
        color = validation.text(color, field="color", max_length=7)
        if not COLOR.fullmatch(color):
            raise ValidationFailed("color must be a hex colour like #34495e", field="color")
        out["color"] = color.lower()
    if given(description):
        out["description"] = validation.text(description, field="description", max_length=500, required=False)
    if partial and not out:
        raise ValidationFailed("Send at least one of name, color, description")
    return out


def group_create(*, principal: Principal, product: Product, name: str = UNSET, color: str = UNSET,
                 description: str = UNSET) -> DeviceGroup:
    fields = _group_fields(name=name, color=color, description=description, partial=False)
    try:
        with transaction.atomic():
            group = DeviceGroup.objects.create(product=product, **fields)
            audit_record(principal=principal, action="group.create", target=group.name, account=product.account,
                         product_id=product.pk)
    except IntegrityError:
        raise Conflict(f"A group named {fields['name']!r} already exists in this product", field="name")
    return group


def group_update(*, principal: Principal, group: DeviceGroup, name: str = UNSET, color: str = UNSET,
                 description: str = UNSET) -> DeviceGroup:
    fields = _group_fields(name=name, color=color, description=description, partial=True)
    for key, value in fields.items():
        setattr(group, key, value)
    try:
        with transaction.atomic():
            group.save()
            audit_record(principal=principal, action="group.update", target=group.name,
                         account=group.product.account, product_id=group.product_id, data=fields)
    except IntegrityError:
        raise Conflict(f"A group named {fields.get('name')!r} already exists in this product", field="name")
    return group


@transaction.atomic
def group_delete(*, principal: Principal, group: DeviceGroup) -> None:
    audit_record(principal=principal, action="group.delete", target=group.name, account=group.product.account,
                 product_id=group.product_id)
    # Its members' rows are rewritten by the membership triggers (group_ids): locked first, in id order, since
    # the cascade deletes the memberships in batches of its own order.
    lock_devices_in_order(DeviceGroupMembership.objects.filter(group=group).values_list("device_id", flat=True))
    group.delete()  # memberships cascade; devices simply lose the group
