"""Writes for devices: registry, rename/notes/flags, groups, claiming, removal, quarantine decisions.

Each service is one transaction, keyword-only, writes an audit entry, and keeps `Product.device_count`
and `DeviceGroup.device_count` current with F() updates so lists never count rows.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from console import validation
from console.errors import Conflict, Forbidden, NotFound, ValidationFailed
from console.models import User, hash_secret
from console.scoping import Principal
from console.services import audit_record
from devices.limits import check_sandbox_room, lock_sandbox
from devices.models import Device, DeviceGroupMembership, DeviceTransfer, SerialNumber, SimCard
from products.models import DeviceGroup, Platform, Product

DEVICE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
GROUP_NAME = re.compile(r"^[a-z0-9_-]{1,100}$")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_bool(value: object, field: str) -> bool:
    """Strict: true/false, 1/0, yes/no, on/off (any case), or a JSON boolean; anything else is a 400."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off", ""):
        return str(value).strip().lower() in ("true", "1", "yes", "on")
    raise ValidationFailed(f"{field} must be true or false", field=field)


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValidationFailed(f"{field} must be true or false", field=field)


def _audit_device(principal: Principal, device: Device, action: str, data: dict | None = None) -> None:
    product = device.product
    audit_record(principal=principal, action=f"device.{action}", target=device.id,
                 account=product.account if product else None, product_id=device.product_id, data=data)


# --- registry (manufacturing) ----------------------------------------------------------------------


@dataclass
class Manufactured:
    device_id: str
    serial_number: str
    iccid: str | None
    secret: str


def _iccid() -> str:
    body = "8901" + "".join(secrets.choice("0123456789") for _ in range(14))
    return body + _luhn(body)


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n -= 9 if n > 9 else 0
        total += n
    return str((10 - total % 10) % 10)


@transaction.atomic
def devices_manufacture(*, platform: Platform, count: int, serial_prefix: str | None = None) -> list[Manufactured]:
    """Register `count` new devices of `platform` (id, serial, secret; ICCID and SIM for cellular ones)."""
    if count < 1 or count > 1_000_000:
        raise ValidationFailed("count must be between 1 and 1,000,000", field="count")
    prefix = (serial_prefix or f"{platform.slug[:3].upper()}{platform.pk:02d}").upper()
    made = []
    now = timezone.now()
    for start in range(0, count, 5000):
        batch = []
        sims = []
        for _ in range(min(5000, count - start)):
            device_id = secrets.token_hex(12)
            secret = secrets.token_hex(16)
            serial = f"{prefix}{secrets.token_hex(6).upper()}"
            iccid = _iccid() if platform.is_cellular else None
            made.append(Manufactured(device_id, serial, iccid, secret))
            batch.append(Device(id=device_id, platform=platform, serial_number=serial, secret_hash=hash_secret(secret),
                                manufactured_at=now, updated_at=now))
            if iccid:
                sims.append(SimCard(iccid=iccid, device_id=device_id, updated_at=now))
        Device.objects.bulk_create(batch, batch_size=5000)
        SerialNumber.objects.bulk_create([SerialNumber(serial=d.serial_number, device_id=d.id) for d in batch],
                                         batch_size=5000)
        SimCard.objects.bulk_create(sims, batch_size=5000)
    return made


# --- per-device edits --------------------------------------------------------------------------------


def _name(value: object) -> str:
    name = validation.text(value, field="name", max_length=63, required=False)
    if name and not DEVICE_NAME.match(name):
        raise ValidationFailed("name may hold letters, digits, dashes and underscores (at most 63)", field="name")
    return name


@transaction.atomic
def device_update(*, principal: Principal, device: Device, data: dict, product_form: bool) -> dict:
    """PUT /v1/devices/:id and /v1/products/:p/devices/:id: the fields given, and only those, change."""
    changed: dict = {}
    now = timezone.now()
    if "name" in data:
        device.name = changed["name"] = _name(data["name"])
    if "notes" in data:
        device.notes = changed["notes"] = validation.text(data["notes"], field="notes", max_length=750,
                                                          required=False, multiline=True)
    if "firmware_updates_forced" in data:
        device.firmware_updates_forced = changed["firmware_updates_forced"] = _bool(
            data["firmware_updates_forced"], "firmware_updates_forced")
    product_fields = {"development", "desired_firmware_version", "groups", "flash"} & set(data)
    if product_fields:
        if not product_form and device.product_id is None:
            raise ValidationFailed(f"{sorted(product_fields)[0]} applies to product devices only",
                                   field=sorted(product_fields)[0])
    if "development" in data:
        device.development = changed["development"] = _bool(data["development"], "development")
    if "desired_firmware_version" in data:
        value = data["desired_firmware_version"]
        if value in (None, "", "null"):
            device.desired_firmware_version = None
        else:
            try:
                version = int(str(value))
            except ValueError:
                raise ValidationFailed("desired_firmware_version must be a whole number or null",
                                       field="desired_firmware_version")
            if not 1 <= version <= 65535:
                raise ValidationFailed("desired_firmware_version must be 1 to 65535", field="desired_firmware_version")
            device.desired_firmware_version = version
        changed["desired_firmware_version"] = device.desired_firmware_version
    if "groups" in data:
        changed["groups"] = device_set_groups(principal=principal, device=device, names=data["groups"], audit=False)
    if not changed and "signal" not in data:
        raise ValidationFailed("Nothing to update: send name, notes, development, desired_firmware_version, "
                               "groups, firmware_updates_forced or signal")
    device.updated_at = now
    device.save()
    if changed:
        _audit_device(principal, device, "update", {"fields": sorted(changed)})
    return changed


def _group_names(names: object) -> list[str]:
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationFailed("groups must be a list of group names", field="groups")
    cleaned = sorted({n.strip() for n in names})
    for name in cleaned:
        if not GROUP_NAME.match(name):
            raise ValidationFailed(f"Group name {name!r} may hold only lowercase letters, digits, - and _",
                                   field="groups")
    return cleaned


def _ensure_groups(product: Product, names: list[str]) -> list[DeviceGroup]:
    existing = {g.name: g for g in DeviceGroup.objects.filter(product=product, name__in=names)}
    for name in names:
        if name not in existing:
            existing[name] = DeviceGroup.objects.create(product=product, name=name)
    return [existing[n] for n in names]


def device_set_groups(*, principal: Principal, device: Device, names: object, audit: bool = True) -> list[str]:
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
            _audit_device(principal, device, "groups", {"groups": [g.name for g in wanted]})
    return [g.name for g in wanted]


@transaction.atomic
def devices_batch_groups(*, principal: Principal, product: Product, device_ids: object, add: object = None,
                         remove: object = None) -> int:
    """PUT /v1/products/:p/devices {"action":"groups", "devices":[...], "metadata":{"add":[...],"remove":[...]}}."""
    if not isinstance(device_ids, list) or not device_ids or not all(isinstance(d, str) for d in device_ids):
        raise ValidationFailed("devices must be a non-empty list of device ids", field="devices")
    if len(device_ids) > 10_000:
        raise ValidationFailed("At most 10,000 devices per batch", field="devices")
    ids = sorted({d.strip().lower() for d in device_ids})
    found = set(Device.objects.filter(product=product, denied=False, id__in=ids).values_list("id", flat=True))
    missing = [d for d in ids if d not in found]
    if missing:
        raise NotFound(f"Not devices of this product: {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else ""))
    to_add = _ensure_groups(product, _group_names(add or []))
    to_remove = list(DeviceGroup.objects.filter(product=product, name__in=_group_names(remove or [])))
    for group in to_add:
        have = set(DeviceGroupMembership.objects.filter(group=group, device_id__in=ids).values_list("device_id", flat=True))
        fresh = [DeviceGroupMembership(device_id=d, group=group) for d in ids if d not in have]
        DeviceGroupMembership.objects.bulk_create(fresh, batch_size=2000)
        DeviceGroup.objects.filter(pk=group.pk).update(device_count=F("device_count") + len(fresh))
    for group in to_remove:
        deleted, _ = DeviceGroupMembership.objects.filter(group=group, device_id__in=ids).delete()
        DeviceGroup.objects.filter(pk=group.pk).update(device_count=F("device_count") - deleted)
    # One history row per device, so each device page shows the change (bulk-inserted, not one by one).
    from console.models import AuditEntry  # noqa: PLC0415

    data = {"add": [g.name for g in to_add], "remove": [g.name for g in to_remove], "batch": len(ids)}
    AuditEntry.objects.bulk_create([
        AuditEntry(actor=principal.user, actor_label=principal.label, action="device.groups", target=device_id,
                   account=product.account, product_id=product.pk, data=data) for device_id in ids
    ], batch_size=2000)
    return len(ids)


# --- claiming ---------------------------------------------------------------------------------------


@dataclass
class ClaimOutcome:
    device: Device
    transfer: DeviceTransfer | None = None  # set when the device belongs to someone else and a transfer was asked


OWNED_ELSEWHERE = "That belongs to someone else."  # particle-cli looks for this exact sentence in `error`


@transaction.atomic
def device_claim(*, principal: Principal, device_id: object, request_transfer: object = False) -> ClaimOutcome:
    """POST /v1/devices {id}: claim a registered device to the calling user, or, with `request_transfer`,
    ask its current owner to hand it over."""
    transfer_wanted = parse_bool(request_transfer if request_transfer is not None else False, "request_transfer")
    if principal.is_user:
        lock_sandbox(principal.user)  # before the device row: the lock order every limit check keeps
    if not principal.is_user:
        raise Forbidden("Only users can claim devices")
    raw = validation.text(device_id, field="id", max_length=64).lower()
    device = (Device.objects.select_for_update(of=("self",)).select_related("product", "product__account")
              .filter(pk=raw).first())
    if device is None:
        raise NotFound(f"No device with id {raw}")
    user = principal.user
    if device.product_id is not None:
        # An unclaimed product device is the product team's to hand out: Developers may claim it (the
        # test device on their desk); readers are refused; strangers cannot tell it from an unknown id.
        if not Product.objects.restrict(principal).filter(pk=device.product_id).exists():
            raise NotFound(f"No device with id {raw}")
        if not Product.objects.restrict(principal, "devices:update").filter(pk=device.product_id).exists():
            raise Forbidden("Your role on this device's product does not allow claiming it")
    if device.owner_id == user.pk:
        return ClaimOutcome(device)
    if device.owner_id is not None and device.customer_id is None and transfer_wanted:
        return ClaimOutcome(device, _transfer_request(principal, device))
    if device.owner_id is not None or device.customer_id is not None:
        # particle-cli offers a transfer request when it sees this code; a customer's device cannot be asked for.
        raise Forbidden("That device is claimed by someone else", code=OWNED_ELSEWHERE)
    if device.denied:
        raise Forbidden("That device was denied by its product", code="device_denied")
    if device.product_id is None:
        check_sandbox_room(user, 1)
    device.owner = user
    device.updated_at = timezone.now()
    device.save(update_fields=["owner", "updated_at"])
    _audit_device(principal, device, "claim", {"user": user.email})
    return ClaimOutcome(device)


def _transfer_request(principal: Principal, device: Device) -> DeviceTransfer:
    """One pending request per requester and device: asking again returns the same one."""
    transfer, created = DeviceTransfer.objects.get_or_create(
        device=device, requested_by=principal.user, state=DeviceTransfer.State.PENDING,
        defaults={"owner_id": device.owner_id})
    if created:
        _audit_device(principal, device, "transfer.request", {"from": device.owner.email, "to": principal.user.email})
        from devices.tasks import send_transfer_email  # noqa: PLC0415

        transaction.on_commit(lambda: send_transfer_email.delay(transfer_id=transfer.pk))
    return transfer


def transfers_for_owner(*, user: User) -> list[DeviceTransfer]:
    """Pending requests for devices claimed to `user` (the console's sandbox device page)."""
    return list(DeviceTransfer.objects.filter(owner=user, state=DeviceTransfer.State.PENDING, device__owner=user)
                .select_related("device", "requested_by").order_by("created_at"))


@transaction.atomic
def device_transfer_decide(*, principal: Principal, transfer_id: object, approve: bool) -> DeviceTransfer:
    """The device's owner approves (the device is claimed to the requester) or denies a transfer request.
    Anyone else gets 404; a request the device has outgrown (released, or claimed by someone else since)
    comes back lapsed instead."""
    if not principal.is_user:
        raise NotFound("No such transfer request")
    try:
        pk = int(str(transfer_id))
    except ValueError:
        raise NotFound("No such transfer request")
    transfer = (DeviceTransfer.objects.select_for_update(of=("self",)).select_related("device", "requested_by")
                .filter(pk=pk, owner=principal.user).first())
    if transfer is None:
        raise NotFound("No such transfer request")
    if transfer.state != DeviceTransfer.State.PENDING:
        raise Conflict(f"This transfer request was already {transfer.state}")
    lock_sandbox(transfer.requested_by)  # user before device, as everywhere
    device = Device.objects.select_for_update(of=("self",)).get(pk=transfer.device_id)
    now = timezone.now()
    if device.owner_id != principal.user.pk or device.customer_id is not None:
        transfer.state, transfer.decided_at = DeviceTransfer.State.LAPSED, now
        transfer.save(update_fields=["state", "decided_at"])
        return transfer  # the caller tells the person; raising here would roll the lapse back
    if approve:
        if device.product_id is None:
            check_sandbox_room(transfer.requested_by, 1)
        device.owner = transfer.requested_by
        device.updated_at = now
        device.save(update_fields=["owner", "updated_at"])
        transfer.state = DeviceTransfer.State.APPROVED
        # Other requests for this device were made to the old owner: they lapse.
        DeviceTransfer.objects.filter(device=device, state=DeviceTransfer.State.PENDING).exclude(pk=transfer.pk).update(
            state=DeviceTransfer.State.LAPSED, decided_at=now)
    else:
        transfer.state = DeviceTransfer.State.DENIED
    transfer.decided_at = now
    transfer.save(update_fields=["state", "decided_at"])
    _audit_device(principal, device, f"transfer.{transfer.state}", {"to": transfer.requested_by.email})
    from devices.tasks import send_transfer_email  # noqa: PLC0415

    transaction.on_commit(lambda: send_transfer_email.delay(transfer_id=transfer.pk))
    return transfer


@transaction.atomic
def device_unclaim(*, principal: Principal, device: Device) -> Device:
    """Release the device's user or customer owner (it stays in its product)."""
    before = device.owner.email if device.owner_id else (device.customer.email if device.customer_id else None)
    device.owner = None
    device.customer = None
    device.updated_at = timezone.now()
    device.save(update_fields=["owner", "customer", "updated_at"])
    _audit_device(principal, device, "unclaim", {"was": before})
    return device


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


@transaction.atomic
def device_deny(*, principal: Principal, device: Device) -> None:
    """Deny a device (normally one in quarantine): it stays known to the product, blocked, out of every list."""
    _leave_product(device)
    device.quarantined = False
    device.denied = True
    device.updated_at = timezone.now()
    device.save(update_fields=["quarantined", "denied", "updated_at"])
    _audit_device(principal, device, "deny")


# --- groups ------------------------------------------------------------------------------------------


def _group_fields(data: dict, *, partial: bool) -> dict:
    out = {}
    if "name" in data or not partial:
        name = validation.text(data.get("name"), field="name", max_length=100)
        if not GROUP_NAME.match(name):
            raise ValidationFailed("name may hold only lowercase letters, digits, - and _", field="name")
        out["name"] = name
    if data.get("color") not in (None, ""):
        color = validation.text(data["color"], field="color", max_length=7)
        if not COLOR.match(color):
            raise ValidationFailed("color must be a hex colour like #34495e", field="color")
        out["color"] = color.lower()
    if "description" in data:
        out["description"] = validation.text(data["description"], field="description", max_length=500,
                                             required=False)
    if partial and not out:
        raise ValidationFailed("Send at least one of name, color, description")
    return out


def group_create(*, principal: Principal, product: Product, data: dict) -> DeviceGroup:
    fields = _group_fields(data, partial=False)
    try:
        with transaction.atomic():
            group = DeviceGroup.objects.create(product=product, **fields)
            audit_record(principal=principal, action="group.create", target=group.name, account=product.account,
                         product_id=product.pk)
    except IntegrityError:
        raise Conflict(f"A group named {fields['name']!r} already exists in this product", field="name")
    return group


def group_update(*, principal: Principal, group: DeviceGroup, data: dict) -> DeviceGroup:
    fields = _group_fields(data, partial=True)
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
    group.delete()  # memberships cascade; devices simply lose the group


# --- maintenance ------------------------------------------------------------------------------------


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


def user_of(email: str) -> User | None:
    return User.objects.filter(email=(email or "").strip().lower(), kind=User.Kind.HUMAN).first()
