"""Reads for background imports: a product's jobs, one job, its live progress, and its report line by line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from django.core.cache import cache

from devices.identifiers import classify, split_lines
from devices.models import ImportJob
from devices.services.importing import REASONS, resolve_aliases
from products.models import Product


def progress_key(job_id: int) -> str:
    return f"import-progress:{job_id}"


def import_job_progress(job: ImportJob) -> tuple[int, int]:
    """(processed, total) — live from the cache while running, from the row once finished."""
    if job.state in (ImportJob.State.DONE, ImportJob.State.FAILED):
        return job.total, job.total
    live = cache.get(progress_key(job.pk))
    return tuple(live) if live else (0, job.total)


def import_jobs(product: Product, limit: int = 10) -> list[ImportJob]:
    return list(ImportJob.objects.filter(product=product).select_related("created_by").defer("lines")
                .order_by("-created_at")[:limit])


def import_job_get(product: Product, job_id: int, *, with_lines: bool = False) -> ImportJob | None:
    qs = ImportJob.objects.filter(product=product, pk=job_id).select_related("created_by")
    if not with_lines:
        qs = qs.defer("lines")
    return qs.first()


VERDICTS = [
    # (key, label, where in the report) — Particle's response fields, then Cyan's per-line reasons.
    ("added", "Added", "updatedDeviceIds"),
    ("existing", "Already in the product", "existingDeviceIds"),
    ("other_product", "In another product", "nonmemberDeviceIds"),
    ("wrong_platform", "Wrong device type", "wrongPlatformDeviceIds"),
    ("claimed", "Claimed by someone else", "claimedDeviceIds"),
    ("unknown", "Not manufactured", None),
    ("invalid", "Not an ID, serial or ICCID", None),
    ("duplicate", "Duplicate line", None),
    ("busy", "Changed during the import", None),
]


def import_report_summary(report: dict) -> list[dict]:
    """Counts per verdict of a finished job, in a fixed order, zeros included."""
    reasons = Counter(r["reason"] for r in report.get("rejected", []))
    out = []
    for key, label, _ in VERDICTS:
        if key == "added":
            count = len(report.get("updatedDeviceIds", []))
        elif key == "existing":
            count = len(report.get("existingDeviceIds", []))
        else:
            count = reasons.get(key, 0)
        if key in ("busy", "claimed") and not count:
            continue  # rare: shown only when it happened
        out.append({"key": key, "label": label, "count": count, "rejected": key not in ("added", "existing")})
    return out


def import_report_lines(job: ImportJob) -> Iterator[tuple[int, str, str, str, str]]:
    """(line, value, device id, verdict, reason) for every value of a finished job, in file order.

    The report lists added and existing devices by id, so lines given as serial numbers or ICCIDs are mapped
    back to their device (that mapping never changes after manufacture)."""
    report = job.report or {}
    rejected: dict[tuple[int, str], list[dict]] = {}
    for r in report.get("rejected", []):
        rejected.setdefault((r["line"], r["value"]), []).append(r)
    added, existing = set(report.get("updatedDeviceIds", [])), set(report.get("existingDeviceIds", []))
    values = split_lines(job.lines)
    wanted: dict[str, set[str]] = {}
    for line, raw in values:
        if (line, raw[:64]) not in rejected:
            kind, norm = classify(raw)
            if kind != "id":
                wanted.setdefault(kind, set()).add(norm)
    resolved = resolve_aliases(wanted)
    for line, raw in values:
        hits = rejected.get((line, raw[:64]))
        if hits:
            r = hits.pop(0) if len(hits) > 1 else hits[0]
            yield line, raw, "", "rejected", f"{r['reason']}: {r.get('message') or REASONS.get(r['reason'], '')}"
            continue
        kind, norm = classify(raw)
        device_id = norm if kind == "id" else resolved.get((kind, norm), "")
        verdict = "added" if device_id in added else "existing" if device_id in existing else "unknown"
        yield line, raw, device_id, verdict, ""
