"""Reads the console pages need that `devices.selectors` does not offer (yet). Each starts from a product the
view already resolved through `product_get`, so the caller's access is settled; each runs a fixed number of
queries. Candidates to move into `devices/selectors.py` (see the report on this change)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from console.models import AuditEntry
from devices.identifiers import classify, split_lines
from devices.importing import REASONS, resolve_aliases
from devices.models import Customer, Device, ImportJob
from products.models import DeviceGroup, Product

COUNT_CAP = 10_000  # past this, a list says "10,000+" instead of counting every row


@dataclass
class CappedPage:
    """One page of a queryset whose total is counted only up to `cap` (a full count of a big table is slow)."""

    rows: list
    page: int
    per_page: int
    total: int
    capped: bool  # the real total is larger than `total`

    @property
    def total_pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages or (self.capped and len(self.rows) == self.per_page)

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.per_page + len(self.rows)


def capped_page(qs: QuerySet, *, page: int, per_page: int, cap: int | None = None, pk: str = "pk") -> CappedPage:
    cap = COUNT_CAP if cap is None else cap
    total = qs.values(pk)[:cap + 1].count()
    offset = (page - 1) * per_page
    rows = list(qs[offset:offset + per_page])
    return CappedPage(rows=rows, page=page, per_page=per_page, total=min(total, cap), capped=total > cap)


def quarantine_count(product: Product, cap: int = 1000) -> tuple[int, bool]:
    """How many devices wait in quarantine, counted up to `cap` over the partial index dev_prod_quar."""
    n = Device.objects.filter(product=product, quarantined=True).values("id")[:cap + 1].count()
    return min(n, cap), n > cap


def product_groups(product: Product) -> list[DeviceGroup]:
    return list(DeviceGroup.objects.filter(product=product).order_by("name"))


def group_get(product: Product, name: str) -> DeviceGroup | None:
    return DeviceGroup.objects.filter(product=product, name=name).select_related("product", "product__account").first()


def product_customers(product: Product, q: str = "") -> QuerySet[Customer]:
    qs = Customer.objects.filter(product=product).order_by("email")
    return qs.filter(email__icontains=q) if q else qs


def visible_product_ids(principal, product_ids: set[int]) -> set[int]:
    """Which of these products the caller can open (the sandbox list links only those)."""
    if not product_ids:
        return set()
    return set(Product.objects.restrict(principal).filter(pk__in=product_ids).values_list("pk", flat=True))


def device_history(product: Product, device_id: str, limit: int = 50) -> list[AuditEntry]:
    """The audit trail of one device in this product, newest first."""
    return list(AuditEntry.objects.filter(target=device_id, product_id=product.pk).order_by("-created_at", "-pk")[:limit])


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
        if key == "busy" and not count:
            continue  # a rare race: shown only when it happened
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


def customers_devices(customers: list[Customer]) -> dict[int, list[Device]]:
    """The devices of each customer on a page, in one query."""
    out: dict[int, list[Device]] = {c.pk: [] for c in customers}
    if customers:
        for d in Device.objects.filter(customer__in=customers).only("id", "name", "customer_id", "online").order_by("name", "id"):
            out[d.customer_id].append(d)
    return out
