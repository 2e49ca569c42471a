"""Claiming: a user takes a registered device (`POST /v1/devices`), or asks its owner for it; and the claim
codes a device presents to be claimed to a user or a product's customer."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from console import validation
from console.errors import Forbidden, NotFound
from console.scoping import Principal
from devices.models import ClaimCode, Customer, Device, DeviceTransfer
from devices.selectors.devices import unscoped_device_for_claim
from devices.services.audit import audit_device
from devices.services.limits import check_sandbox_room, lock_sandbox
from devices.services.transfers import transfer_request
from products.models import Product

CLAIM_CODE_LIFETIME = timedelta(hours=1)
OWNED_ELSEWHERE = "That belongs to someone else."  # particle-cli looks for this exact sentence in `error`


@dataclass
class ClaimOutcome:
    device: Device
    transfer: DeviceTransfer | None = None  # set when the device belongs to someone else and a transfer was asked


@transaction.atomic
def device_claim(*, principal: Principal, device_id: str, request_transfer: bool = False) -> ClaimOutcome:
    """POST /v1/devices {id}: claim a registered device to the calling user, or, with `request_transfer`,
    ask its current owner to hand it over."""
    if not principal.is_user:
        raise Forbidden("Only users can claim devices")
    lock_sandbox(principal.user)  # before the device row: the lock order every limit check keeps
    raw = validation.text(device_id, field="id", max_length=64).lower()
    device = unscoped_device_for_claim(raw)
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
    if device.owner_id is not None and device.customer_id is None and request_transfer:
        return ClaimOutcome(device, transfer_request(principal=principal, device=device))
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
    audit_device(principal, device, "claim", {"user": user.email})
    return ClaimOutcome(device)


@transaction.atomic
def claim_code_create(*, principal: Principal, product: Product | None = None) -> ClaimCode:
    """A one-hour claim code for the calling user (sandbox) or customer (product form)."""
    code = secrets.token_urlsafe(36)[:48]
    customer = None
    if principal.kind == "customer":
        customer = Customer.objects.get(pk=principal.customer_id)
    if customer is not None:
        owned = Device.objects.filter(customer=customer)
    elif principal.user is not None:
        owned = Device.objects.filter(owner=principal.user)
    else:  # a product token has no devices of its own
        owned = Device.objects.none()
    return ClaimCode.objects.create(
        code=code, user=principal.user if customer is None else None, customer=customer, product=product,
        device_ids=list(owned.values_list("id", flat=True)[:1000]),
        expires_at=timezone.now() + CLAIM_CODE_LIFETIME)
