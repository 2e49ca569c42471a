"""The audit row every device write leaves, in the device's product (the device page shows its history)."""

from __future__ import annotations

from console.scoping import Principal
from console.services.audit import audit_record
from devices.models import Device


def audit_device(principal: Principal | None, device: Device, action: str, data: dict | None = None) -> None:
    product = device.product
    audit_record(principal=principal, action=f"device.{action}", target=device.id,
                 account=product.account if product else None, product_id=device.product_id, data=data)
