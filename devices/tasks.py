"""Celery tasks of the devices app: thin, take ids, call one service. Services enqueue them by name
(`console.queue.enqueue_on_commit`), so this module is the only one that imports both."""

from __future__ import annotations

import logging

from celery import shared_task

from devices.services import devices, jobs, listmarks, liveness, onboarding, transfers
from products.models import Product

log = logging.getLogger("devices.tasks")


@shared_task(name="devices.run_import_job")
def run_import_job(job_id: int) -> str:
    return jobs.import_job_run(job_id)


@shared_task(name="devices.requeue_stale_imports")
def requeue_stale_imports() -> int:
    return jobs.import_jobs_requeue_stale()


@shared_task(name="devices.onboard")
def onboard(ids: list[int]) -> int:
    """Decide a batch of connections waiting for onboarding (devices.services.onboarding)."""
    return onboarding.onboardings_run(ids)


@shared_task(name="devices.requeue_stale_onboardings")
def requeue_stale_onboardings() -> int:
    return onboarding.onboardings_requeue_stale()


@shared_task(name="devices.recount_devices")
def recount_devices() -> int:
    """Nightly: recompute stored device counts from the rows, repairing any drift."""
    total = 0
    for product in Product.objects.all().iterator():
        devices.recount(product)
        total += 1
    return total


@shared_task(name="devices.send_transfer_email", autoretry_for=(OSError,))
def send_transfer_email(*, transfer_id: int) -> bool:
    """Tell the owner about a new transfer request, or the requester about the decision."""
    return transfers.transfer_email_send(transfer_id=transfer_id)


@shared_task(name="devices.reap_gateways")
def reap_gateways() -> int:
    """Devices of a gateway process that died (its heartbeat expired) go offline, even when no other gateway
    is running to notice."""
    return liveness.gateways_reap()


@shared_task(name="devices.keep_list_marks")
def keep_list_marks() -> int:
    """Every minute: the marks of big products' device lists folded, built or rebuilt (devices.services.listmarks)."""
    done = 0
    listmarks.drop_orphans()
    marked = listmarks.marked_products()
    big = Product.objects.filter(device_count__gte=listmarks.MARK_MIN_MEMBERS // 2).values_list("pk", flat=True)
    for product in Product.objects.filter(pk__in=set(big) | marked).iterator():
        try:
            listmarks.keep(product)
        except Exception:  # one product's marks must not hold up the others'
            log.exception("list marks of product %s not kept", product.pk)
            continue
        done += 1
    return done
