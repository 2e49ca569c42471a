"""Device keys as the API changes them: `POST /v1/provisioning/:id` (`particle keys send`) replaces the public
key the gateway's next handshake checks (devices/keys.py reads it per handshake, uncached)."""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from console.errors import Forbidden, ValidationFailed
from console.scoping import Principal
from devices.keys import public_key_der
from devices.models import Device, DeviceKey
from devices.services.audit import audit_device


def key_fingerprint(der: bytes) -> str:
    """The SHA-256 of a public key's SPKI DER, hex: what the audit log and the admin show of a key."""
    return hashlib.sha256(der).hexdigest()


@transaction.atomic
def device_key_upload(*, principal: Principal, device: Device, public_key: str | bytes,
                      algorithm: str = "rsa") -> DeviceKey:
    """Store `public_key` (PEM) as the device's key, replacing the old one. Its owner or a product member who
    may update devices reaches here (the caller looks the device up with `devices:update`); a customer may
    rename its device but not re-key it."""
    if principal.kind == "customer":
        raise Forbidden("Customers cannot change a device's key; ask the product's team")
    if (algorithm or "rsa").lower() != "rsa":
        raise ValidationFailed("Only RSA device keys are supported (Gen 2 devices use RSA-1024)", field="algorithm")
    der = public_key_der(public_key)
    now = timezone.now()
    # Lock the device row, not the key row: with no key yet there is no row to lock, and two first uploads
    # would both insert.
    Device.objects.select_for_update(no_key=True).filter(pk=device.pk).values_list("pk", flat=True).first()
    key = DeviceKey.objects.filter(device=device).first()
    replaced = key_fingerprint(bytes(key.public_key)) if key is not None else None
    if key is None:
        key = DeviceKey.objects.create(device=device, algorithm="rsa", public_key=der, created_at=now, updated_at=now)
    else:
        key.public_key, key.algorithm, key.updated_at = der, "rsa", now
        key.save(update_fields=["public_key", "algorithm", "updated_at"])
    audit_device(principal, device, "key.upload", {"fingerprint": key_fingerprint(der), "replaced": replaced})
    return key
