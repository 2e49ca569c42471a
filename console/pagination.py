"""One paginator for every list, in the API (Particle's `meta`) and in the console (page links).

A total is either exact, counted only up to a cap (a full count of a big table is slow: the page then says
"10,000+"), or the planner's estimate (the fleet list past 10,000 matches, `devices.selectors.devices`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass
class Page:
    """One page of rows and what is known of the whole list."""

    rows: list
    page: int
    per_page: int
    total: int
    capped: bool = False  # the real total is larger than `total` (counted up to a cap)
    estimated: bool = False  # `total` is the planner's estimate

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages or (self.capped and len(self.rows) == self.per_page)

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.per_page + len(self.rows)

    def meta(self) -> dict:
        """Particle's `meta` block (particle-api.md §1: `total_pages`, plus `page`, `per_page`, `total`)."""
        return {"total_pages": self.total_pages, "page": self.page, "per_page": self.per_page, "total": self.total}


COUNT_CAP = 10_000  # past this, a console list says "10,000+" instead of counting every row


def paginate(qs: QuerySet, *, page: int, per_page: int, cap: int | None = None, pk: str = "pk",
             total: int | None = None) -> Page:
    """A page of `qs` by OFFSET. The total is `total` when the caller already knows it, else counted
    exactly, or up to `cap` rows when one is given."""
    offset = (page - 1) * per_page
    rows = list(qs[offset:offset + per_page])
    if total is not None:
        return Page(rows=rows, page=page, per_page=per_page, total=total)
    if cap is None:
        return Page(rows=rows, page=page, per_page=per_page, total=qs.count())
    counted = qs.values(pk)[:cap + 1].count()
    return Page(rows=rows, page=page, per_page=per_page, total=min(counted, cap), capped=counted > cap)
