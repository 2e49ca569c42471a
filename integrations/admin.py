"""Admin for integrations: support staff look hooks, deliveries and daily counts up here. Read-only: a hook is
changed through its owner's API or console (integrations.services keeps the bus consumer's owners set true,
which an admin save would bypass), and a delivery's state belongs to the worker."""

from __future__ import annotations

from django.contrib import admin

from console.admin import ReadOnlyAdmin as ReadOnly
from integrations.models import Delivery, DeliveryDay, Integration


@admin.register(Integration)
class IntegrationAdmin(ReadOnly):
    list_display = ("id", "event", "product", "user", "integration_type", "disabled", "created_at")
    list_filter = ("integration_type", "disabled")
    search_fields = ("id", "event", "name", "product__slug", "user__email", "device_id")
    exclude = ("signing_secret",)  # shown once to its owner, never here


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = ("id", "integration", "event_id", "state", "attempts", "last_status", "next_attempt_at",
                    "finished_at")
    list_filter = ("state", "test")
    search_fields = ("event_id", "integration__id", "last_error")
    list_select_related = ("integration",)


@admin.register(DeliveryDay)
class DeliveryDayAdmin(ReadOnly):
    list_display = ("integration", "day", "success", "failure", "sleep")
    list_filter = ("day",)
    search_fields = ("integration__id",)
