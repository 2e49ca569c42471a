"""Console pages of devices: a product's devices, imports, groups, SIM cards and customers, and the sandbox's
device list. Included from console/web/urls.py (by string), so names read `console:devices:<name>`."""

from django.urls import path

from devices.web import customers, devices, events, groups, imports, sandbox, sims
from devices.web import remote

app_name = "devices"

P = "products/<slug:product>/"

urlpatterns = [
    path("devices/", sandbox.sandbox_device_list, name="sandbox-list"),
    path("events/", events.sandbox_events, name="sandbox-events"),
    path("events/stream", events.sandbox_event_stream, name="sandbox-event-stream"),
    path(P + "events/", events.product_events, name="events"),
    path(P + "events/stream", events.product_event_stream, name="event-stream"),
    path("devices/transfers/<int:transfer_id>/", sandbox.transfer_decide, name="transfer-decide"),
    path(P + "devices/", devices.device_list, name="list"),
    # Fixed words before <device_id>: "import" and "export.csv" are not device ids.
    path(P + "devices/export.csv", devices.device_export, name="export"),
    path(P + "devices/bulk/", devices.device_bulk, name="bulk"),
    path(P + "devices/import/", imports.device_import, name="import"),
    path(P + "devices/import/<int:job_id>/", imports.import_job, name="import-job"),
    path(P + "devices/import/<int:job_id>/status/", imports.import_job_status, name="import-status"),
    path(P + "devices/import/<int:job_id>/report.csv", imports.import_job_report, name="import-report"),
    path(P + "devices/<str:device_id>/", devices.device_detail, name="detail"),
    path(P + "devices/<str:device_id>/approve/", devices.device_approve, name="approve"),
    path(P + "devices/<str:device_id>/deny/", devices.device_deny, name="deny"),
    path(P + "devices/<str:device_id>/remote/", remote.device_remote, name="remote"),
    path(P + "devices/<str:device_id>/live/", remote.device_live, name="live"),
    path(P + "groups/", groups.group_list, name="groups"),
    path(P + "groups/<str:name>/edit/", groups.group_edit, name="group-edit"),
    path(P + "groups/<str:name>/delete/", groups.group_delete, name="group-delete"),
    path(P + "sims/", sims.sim_list, name="sims"),
    path(P + "sims/<str:iccid>/state/", sims.sim_state, name="sim-state"),
    path(P + "sims/<str:iccid>/release/", sims.sim_release, name="sim-release"),
    path(P + "customers/", customers.customer_list, name="customers"),
]
