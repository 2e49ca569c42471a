"""Transfer requests: a user asks the owner of a claimed device to hand it over (`POST /v1/devices` with
`request_transfer=true`); the owner approves or denies in the console; a request lapses when the device
changes hands meanwhile. Both sides are told by email (Celery)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from console.errors import Conflict, NotFound
from console.queue import enqueue_on_commit
from console.scoping import Principal
from devices.models import Device, DeviceTransfer
from devices.services.audit import audit_device
from devices.services.limits import check_sandbox_room, lock_sandbox

EMAIL_TASK = "devices.send_transfer_email"


def transfer_request(*, principal: Principal, device: Device) -> DeviceTransfer:
    """One pending request per requester and device: asking again returns the same one. The caller holds
    the device row (`device_claim`)."""
    transfer, created = DeviceTransfer.objects.get_or_create(
        device=device, requested_by=principal.user, state=DeviceTransfer.State.PENDING,
        defaults={"owner_id": device.owner_id})
    if created:
        audit_device(principal, device, "transfer.request", {"from": device.owner.email, "to": principal.user.email})
        enqueue_on_commit(EMAIL_TASK, transfer_id=transfer.pk)
    return transfer


@transaction.atomic
def device_transfer_decide(*, principal: Principal, transfer_id: int, approve: bool) -> DeviceTransfer:
    """The device's owner approves (the device is claimed to the requester) or denies a transfer request.
    Anyone else gets 404; a request the device has outgrown (released, or claimed by someone else since)
    comes back lapsed instead."""
    if not principal.is_user:
        raise NotFound("No such transfer request")
    transfer = (DeviceTransfer.objects.select_for_update(of=("self",)).select_related("device", "requested_by")
                .filter(pk=transfer_id, owner=principal.user).first())
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
    audit_device(principal, device, f"transfer.{transfer.state}", {"to": transfer.requested_by.email})
    enqueue_on_commit(EMAIL_TASK, transfer_id=transfer.pk)
    return transfer


def transfer_email_send(*, transfer_id: int) -> bool:
    """Mail the owner about a pending request, or the requester about the decision. False when the request
    is gone (a redelivered task for a deleted device)."""
    transfer = DeviceTransfer.objects.select_related("device", "owner", "requested_by").filter(pk=transfer_id).first()
    if transfer is None:
        return False
    label = transfer.device.name or transfer.device_id
    if transfer.state == DeviceTransfer.State.PENDING:
        send_mail(subject=f"{transfer.requested_by.email} asks for your device {label}",
                  message=(f"{transfer.requested_by.email} asked to take over the device {label} "
                           f"({transfer.device_id}), which is claimed to you.\n\nApprove or deny it on your "
                           f"devices page: {settings.PUBLIC_URL}/devices/\n"),
                  from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[transfer.owner.email])
    elif transfer.state in (DeviceTransfer.State.APPROVED, DeviceTransfer.State.DENIED):
        send_mail(subject=f"Your transfer request for {transfer.device_id} was {transfer.state}",
                  message=(f"{transfer.owner.email} {transfer.state} your request to take over the device "
                           f"{transfer.device_id}.\n"),
                  from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[transfer.requested_by.email])
    return True
