"""Reading what billing counted."""

from __future__ import annotations

from datetime import date

from billing.models import DataOperationDay


def data_operations_daily(scope: str, ref: str | int, start: date, end: date) -> dict[date, int]:
    """Data operations of one account, product or device per UTC day, `start` to `end` inclusive (days with
    none are left out). Counts still in Redis, not yet folded (at most ~30 s of them), are not included."""
    return dict(DataOperationDay.objects.filter(scope=scope, ref=str(ref), day__gte=start, day__lte=end)
                .order_by("day").values_list("day", "count"))


def data_operations_total(scope: str, ref: str | int, start: date, end: date) -> int:
    return sum(data_operations_daily(scope, ref, start, end).values())
