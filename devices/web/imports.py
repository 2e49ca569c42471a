"""Console pages of device imports: the import form (file or pasted ids), a background job's progress
(polled by htmx) and its report, on screen and as CSV."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import Http404
from django.shortcuts import redirect, render

from console.errors import ServiceError
from console.services.teams import org_team, team_entries
from console.web.access import console_view, form_error
from devices.models import ImportJob
from devices.selectors import jobs as job_selectors
from devices.services import importing, jobs
from devices.web import common
from devices.web.forms import ImportForm
from products.models import Product
from products.services import product_team


def _team_emails(product: Product) -> list[str]:
    """People who may own the imported devices: the product's team and, for an org product, the org's."""
    entries = team_entries(product_team(product))
    if not product.account.is_sandbox:
        entries += team_entries(org_team(product.account))
    return sorted({e["username"] for e in entries if not e.get("is_programmatic")})


@console_view
def device_import(request, product: str):
    found = common.product_for(request, product, "devices:import")
    emails = _team_emails(found)
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, team_emails=emails, cellular=found.platform.is_cellular)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # import_job_create refuses a bad claim_user itself, before any job exists.
                job = jobs.import_job_create(principal=request.principal, product=found, text=data["text"],
                                             import_sims=data.get("import_sims", False), claim_user=data["claim_user"])
            except ServiceError as exc:
                form_error(form, exc, {"id": "ids"})
            else:
                return redirect(common.url("import-job", found, job.pk))
        status = 400
    else:
        form = ImportForm(team_emails=emails, cellular=found.platform.is_cellular)
    return render(request, "devices/import.html", {
        "place": common.place(request, found, "devices", ("Devices", common.url("list", found)), ("Import", None)),
        "product": found, "form": form, "jobs": job_selectors.import_jobs(found), "max_lines": importing.MAX_LINES,
    }, status=status)


def _job_context(found: Product, job: ImportJob) -> dict:
    processed, total = job_selectors.import_job_progress(job)
    report = job.report or {}
    rejected = report.get("rejected", [])
    return {
        "product": found, "job": job, "processed": processed, "total": total,
        "percent": int(processed * 100 / total) if total else (100 if job.state == ImportJob.State.DONE else 0),
        "finished": job.state in (ImportJob.State.DONE, ImportJob.State.FAILED),
        "summary": job_selectors.import_report_summary(report) if job.state == ImportJob.State.DONE else [],
        "rejected": rejected[:500], "rejected_count": len(rejected),
        "sims_activated": report.get("simsActivated", 0),
        "status_url": common.url("import-status", found, job.pk), "report_url": common.url("import-report", found, job.pk),
    }


def _job(request, product: str, job_id: int, *, with_lines: bool = False) -> tuple[Product, ImportJob]:
    found = common.product_for(request, product, "devices:import")
    job = job_selectors.import_job_get(found, job_id, with_lines=with_lines)
    if job is None:
        raise Http404("No such import in this product")
    return found, job


@console_view
def import_job(request, product: str, job_id: int):
    found, job = _job(request, product, job_id)
    return render(request, "devices/import_job.html", {
        "place": common.place(request, found, "devices", ("Devices", common.url("list", found)),
                        ("Import", common.url("import", found)), (f"#{job.pk}", None)),
        **_job_context(found, job),
    })


@console_view
def import_job_status(request, product: str, job_id: int):
    """The progress box, polled every second by htmx while the job runs; the report once it is done."""
    found, job = _job(request, product, job_id)
    return render(request, "devices/_import_status.html", _job_context(found, job))


@console_view
def import_job_report(request, product: str, job_id: int):
    found, job = _job(request, product, job_id, with_lines=True)
    if job.state != ImportJob.State.DONE:
        raise Http404("The import has not finished")

    def batches() -> Iterator[list[list]]:
        yield [["line", "value", "device_id", "verdict", "reason"]]
        batch: list[list] = []
        for row in job_selectors.import_report_lines(job):
            batch.append(list(row))
            if len(batch) == 1000:
                yield batch
                batch = []
        yield batch

    return common.csv_response(request, batches(), f"{found.slug}-import-{job.pk}.csv")
