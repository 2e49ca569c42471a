"""Background imports (the console's import page): the job row is the durable state, the broker only says
"work on job N" (DESIGN.md, "Durable work"). A task claims its job with a conditional UPDATE, so a
redelivered message is harmless; the import and the job's final state commit in one transaction, so a
worker killed mid-import leaves nothing half-written and the job is simply run again by the requeuer."""

from __future__ import annotations

from datetime import timedelta

from celery import current_app
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from console.errors import ServiceError, ValidationFailed
from console.queue import enqueue_on_commit
from console.scoping import Principal
from devices.identifiers import split_lines
from devices.models import ImportJob
from devices.selectors.jobs import progress_key
from devices.services.importing import MAX_LINES, claim_user_for, device_import
from products.models import Product

RUN_TASK = "devices.run_import_job"

STALE_AFTER = timedelta(minutes=10)


@transaction.atomic
def import_job_create(*, principal: Principal, product: Product, text: str, import_sims: bool = True,
                      claim_user: str = "") -> ImportJob:
    claim_user_for(product, claim_user or None)  # refuse a bad claim_user now, not when the job runs
    values = split_lines(text)
    if not values:
        raise ValidationFailed("The file has no device ids in it", field="file")
    if len(values) > MAX_LINES:
        raise ValidationFailed(f"At most {MAX_LINES:,} lines per import; split the file", field="file")
    job = ImportJob.objects.create(product=product, created_by=principal.user, lines=text, total=len(values),
                                   options={"import_sims": import_sims, "claim_user": claim_user})
    enqueue_on_commit(RUN_TASK, job_id=job.pk)
    return job


def import_job_run(job_id: int) -> str:
    """Claim and run one job; returns its final state (or "skipped" when another worker has it)."""
    claimed = ImportJob.objects.filter(pk=job_id, state=ImportJob.State.PENDING).update(
        state=ImportJob.State.RUNNING, claimed_at=timezone.now())
    if not claimed:
        return "skipped"
    job = ImportJob.objects.select_related("product", "product__account", "created_by").get(pk=job_id)
    principal = Principal.for_user(job.created_by) if job.created_by else None

    def progress(done: int, total: int) -> None:
        cache.set(progress_key(job.pk), (done, total), timeout=3600)

    try:
        with transaction.atomic():
            report = device_import(principal=principal, product=job.product, values=split_lines(job.lines),
                                   import_sims=job.options.get("import_sims", True),
                                   claim_user=job.options.get("claim_user") or None, progress=progress)
            ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.DONE, report=report.as_dict(),
                                                       processed=job.total, finished_at=timezone.now())
    except ServiceError as exc:  # the import as a whole was refused (free limit, bad claim_user): nothing written
        ImportJob.objects.filter(pk=job.pk).update(state=ImportJob.State.FAILED, error=exc.description,
                                                   finished_at=timezone.now())
        return ImportJob.State.FAILED
    return ImportJob.State.DONE


def import_jobs_requeue_stale() -> int:
    """Put back jobs whose worker died (claimed long ago, never finished) and re-send pending ones."""
    cutoff = timezone.now() - STALE_AFTER
    stale = list(ImportJob.objects.filter(state=ImportJob.State.RUNNING, claimed_at__lt=cutoff)
                 .values_list("pk", flat=True))
    ImportJob.objects.filter(pk__in=stale, state=ImportJob.State.RUNNING).update(state=ImportJob.State.PENDING)
    waiting = list(ImportJob.objects.filter(state=ImportJob.State.PENDING, created_at__lt=timezone.now() -
                                            timedelta(minutes=1)).values_list("pk", flat=True))
    for job_id in set(stale) | set(waiting):
        current_app.send_task(RUN_TASK, kwargs={"job_id": job_id})
    return len(set(stale) | set(waiting))
