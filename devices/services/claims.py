"""Claiming: a user takes a registered device (`POST /v1/devices`), or asks its owner for it; and the claim
codes a device presents to be claimed to a user or a product's customer."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from console import validation
from console.errors import Forbidden, LimitExceeded, NotFound, ValidationFailed
from console.scoping import Principal
from devices import presence
from devices.models import ClaimCode, Customer, Device, DeviceTransfer
from devices.selectors.devices import unscoped_device_for_claim
from devices.services.audit import audit_device
from devices.services.limits import check_sandbox_room, lock_sandbox
from devices.services.transfers import transfer_request
from products.models import Product

CLAIM_CODE_LIFETIME = timedelta(hours=1)
OWNED_ELSEWHERE = "That belongs to someone else."  # particle-cli looks for this exact sentence in `error`
OFFLINE = ("The device is not connected to the cloud. Claiming by id needs it online: power it up and connect "
           "it, then try again (or claim it with a claim code, which works while it is offline).")

log = logging.getLogger("cyan.claims")


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
    if presence.device_location(device.id) is None:
        # As at Particle, a claim by id proves possession by the device being online (presence in Redis is
        # the live truth; the row's `online` can lag by the flush interval). A claim code and an import's
        # `claim_user` stay offline-friendly.
        raise ValidationFailed(OFFLINE, code="device_offline", field="id")
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


def claim_code_valid(code: str) -> ClaimCode | None:
    """The unused, unexpired claim code `code`, or None."""
    return ClaimCode.objects.filter(code=code, used_at__isnull=True, expires_at__gt=timezone.now()).first()


def claim_code_users(codes: set[str]) -> set:
    """The users behind these claim codes (unused, unexpired, naming a user): whose free limit claiming by
    them counts against, for a caller that must lock those users before device rows."""
    if not codes:
        return set()
    found = ClaimCode.objects.filter(code__in=codes, used_at__isnull=True, expires_at__gt=timezone.now(),
                                     user__isnull=False).select_related("user")
    return {claim.user for claim in found}


@transaction.atomic
def device_claim_by_code(*, code: str, device_id: str) -> bool:
    """A device presented `code` (`spark/device/claim/code`): claim it to the code's user, or to the code's
    customer when it is a device of the customer's product, by the same rules as a claim by id — the free
    limit, and never a device someone else holds. The code is used up. False (logged) when refused."""
    claim = ClaimCode.objects.select_for_update(of=("self",)).filter(
        code=code, used_at__isnull=True, expires_at__gt=timezone.now()).select_related("user", "customer").first()
    if claim is None:
        log.info("claim code for device %s: unknown, used or expired", device_id)
        return False
    if claim.user is not None:
        lock_sandbox(claim.user)  # the user before the device row, as every limit check does
    device = unscoped_device_for_claim(device_id)
    refused = ""
    if device is None or device.denied:
        refused = "unknown or denied device"
    elif claim.product_id is not None and device.product_id != claim.product_id:
        refused = "the code is for another product"
    elif claim.customer is not None:
        if device.product_id != claim.customer.product_id:
            refused = "the customer's product does not hold this device"
        elif device.owner_id is not None or device.customer_id not in (None, claim.customer_id):
            refused = "claimed by someone else"
    elif claim.user is not None:
        if device.customer_id is not None or device.owner_id not in (None, claim.user_id):
            refused = "claimed by someone else"
    else:
        refused = "the code names nobody"
    if not refused and claim.user is not None and device.owner_id is None and device.product_id is None:
        try:
            check_sandbox_room(claim.user, 1)
        except LimitExceeded as exc:
            refused = exc.description
    if refused:
        log.info("claim code for device %s refused: %s", device_id, refused)
        return False
    now = timezone.now()
    if claim.customer is not None:
        device.customer = claim.customer
        principal = Principal(kind="customer", customer_id=claim.customer_id, product_id=claim.customer.product_id)
        who = claim.customer.email
    else:
        device.owner = claim.user
        principal = Principal.for_user(claim.user)
        who = claim.user.email
    device.updated_at = now
    device.save(update_fields=["owner", "customer", "updated_at"])
    ClaimCode.objects.filter(pk=claim.pk).update(used_at=now, device_ids=[*claim.device_ids, device.id][-1000:])
    audit_device(principal, device, "claim", {"user": who, "via": "claim code"})
    return True
