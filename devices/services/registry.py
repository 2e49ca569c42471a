"""The manufacturing registry: devices are registered (id, platform, serial, secret; a SIM for cellular ones)
before they can be imported, claimed or onboarded anywhere. Reached from `manage.py manufacture` and from
the admin's device form."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from console.errors import Conflict, ValidationFailed
from console.models import hash_secret
from devices.identifiers import ICCID, is_device_id
from console.scoping import Principal
from devices.models import Device, DeviceKey, SerialNumber, SimCard
from devices.services.importing import device_import
from products.models import Platform, Product


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
def devices_manufacture(*, platform: Platform, count: int, serial_prefix: str | None = None,
                        public_keys: Sequence[bytes] | None = None, with_sims: bool = True) -> list[Manufactured]:
    """Register `count` new devices of `platform` (id, serial, secret; ICCID and SIM for cellular ones), and
    the i-th device's public key (SPKI DER) from `public_keys[i]` when given (devices/keys.py makes them).
    `with_sims=False`: no SIM even for a cellular platform (a self-provisioned device brings its own)."""
    if count < 1 or count > 1_000_000:
        raise ValidationFailed("count must be between 1 and 1,000,000", field="count")
    if public_keys is not None and len(public_keys) != count:
        raise ValidationFailed(f"{len(public_keys)} public keys for {count} devices", field="public_keys")
    prefix = (serial_prefix or f"{platform.slug[:3].upper()}{platform.pk:02d}").upper()
    made = []
    now = timezone.now()
    for start in range(0, count, 5000):
        batch = []
        sims = []
        keys = []
        for _ in range(min(5000, count - start)):
            device_id = secrets.token_hex(12)
            secret = secrets.token_hex(16)
            serial = f"{prefix}{secrets.token_hex(6).upper()}"
            iccid = _iccid() if platform.is_cellular and with_sims else None
            made.append(Manufactured(device_id, serial, iccid, secret))
            batch.append(Device(id=device_id, platform=platform, serial_number=serial, secret_hash=hash_secret(secret),
                                manufactured_at=now, updated_at=now))
            if iccid:
                sims.append(SimCard(iccid=iccid, device_id=device_id, updated_at=now))
            if public_keys is not None:
                keys.append(DeviceKey(device_id=device_id, public_key=public_keys[len(made) - 1], created_at=now,
                                      updated_at=now))
        Device.objects.bulk_create(batch, batch_size=5000)
        SerialNumber.objects.bulk_create([SerialNumber(serial=d.serial_number, device_id=d.id) for d in batch],
                                         batch_size=5000)
        SimCard.objects.bulk_create(sims, batch_size=5000)
        DeviceKey.objects.bulk_create(keys, batch_size=5000)
    return made


def device_self_provision(*, principal: Principal, product: Product) -> Device:
    """`POST /v1/devices` with `product_id` (particle-api-js `provisionDevice`): a new device id of the product's
    platform, registered and imported into `product` exactly as an import would (limits, audit), claimed to
    nobody. The caller must be allowed to import into the product; the device then connects with a key it
    uploads (`POST /v1/provisioning/:id`). A refused import (the free limit) leaves no registry row behind."""
    with transaction.atomic():
        made = devices_manufacture(platform=product.platform, count=1, with_sims=False)[0]
        report = device_import(principal=principal, product=product, values=[(1, made.device_id)],
                               import_sims=False)
        if report.updated_ids != [made.device_id]:  # a fresh registry row always moves; anything else is a bug
            raise RuntimeError(f"self-provisioned device {made.device_id} was not imported: {report.rejected}")
    return Device.objects.select_related("owner", "customer", "platform", "product", "product__account").get(
        pk=made.device_id)


def registry_device_id(value: str) -> str:
    """A device id as support staff type it: 24 hex characters, stored lower-case."""
    value = (value or "").strip().lower()
    if not is_device_id(value):
        raise ValidationFailed("A device id is 24 hexadecimal characters.", field="id")
    return value


def registry_serial(value: str | None, *, device_id: str | None) -> str | None:
    """A serial number as support staff type it (upper-case), refused when another device has it."""
    serial = (value or "").strip().upper() or None
    if serial is None:
        return None
    taken = SerialNumber.objects.filter(serial=serial)
    if device_id:
        taken = taken.exclude(device_id=device_id)
    if taken.exists():
        raise Conflict("Another device already has this serial number.", field="serial_number")
    return serial


def registry_iccid(value: str | None) -> str:
    iccid = (value or "").strip().upper()
    if iccid and not ICCID.fullmatch(iccid):
        raise ValidationFailed("An ICCID is 89 followed by 16 to 20 digits.", field="iccid")
    return iccid


@transaction.atomic
def device_register(*, device: Device, secret: str = "", iccid: str = "") -> Device:
    """Save a registry row as support staff edited it (the admin's device form): a new secret is stored
    hashed, the serial map follows the serial (a typo corrected included), and an ICCID links its SIM."""
    if secret:
        device.secret_hash = hash_secret(secret)
    device.save()
    SerialNumber.objects.filter(device=device).exclude(serial=device.serial_number or "").delete()
    if device.serial_number and not SerialNumber.objects.filter(device=device).exists():
        SerialNumber.objects.create(serial=device.serial_number, device=device)  # a clash raises
    if iccid:
        SimCard.objects.update_or_create(iccid=iccid, defaults={"device": device})
    return device
