"""Admin for what billing counted: support staff look up an account's, a product's or a device's data
operations per day. Read-only: the counts come from the bus (billing/metering.py)."""

from __future__ import annotations

from django.contrib import admin

from billing.models import DataOperationDay, FoldedCounters
from console.admin import ReadOnlyAdmin


@admin.register(DataOperationDay)
class DataOperationDayAdmin(ReadOnlyAdmin):
    list_display = ("day", "scope", "ref", "count")
    list_filter = ("scope", "day")
    search_fields = ("ref",)


@admin.register(FoldedCounters)
class FoldedCountersAdmin(DataOperationDayAdmin):
    list_display = ("batch", "folded_at")
    list_filter = ("folded_at",)
    search_fields = ("batch",)
