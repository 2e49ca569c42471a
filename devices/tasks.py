"""Celery tasks of the devices app: thin, take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from console.tasks import TASK_DEFAULTS


@shared_task(name="devices.run_import_job", **TASK_DEFAULTS)
def run_import_job(job_id: int) -> str:
    from devices.jobs import import_job_run  # noqa: PLC0415

    return import_job_run(job_id)


@shared_task(name="devices.requeue_stale_imports", **TASK_DEFAULTS)
def requeue_stale_imports() -> int:
    from devices.jobs import import_jobs_requeue_stale  # noqa: PLC0415

    return import_jobs_requeue_stale()


@shared_task(name="devices.recount_devices", **TASK_DEFAULTS)
def recount_devices() -> int:
    """Nightly: recompute stored device counts from the rows, repairing any drift."""
    from devices.services import recount  # noqa: PLC0415
    from products.models import Product  # noqa: PLC0415

    total = 0
    for product in Product.objects.all().iterator():
        recount(product)
        total += 1
    return total


@shared_task(name="devices.send_transfer_email", autoretry_for=(OSError,), **TASK_DEFAULTS)
def send_transfer_email(*, transfer_id: int) -> bool:
    """Tell the owner about a new transfer request, or the requester about the decision."""
    from django.conf import settings  # noqa: PLC0415
    from django.core.mail import send_mail  # noqa: PLC0415

    from devices.models import DeviceTransfer  # noqa: PLC0415

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
