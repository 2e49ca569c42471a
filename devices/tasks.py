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
