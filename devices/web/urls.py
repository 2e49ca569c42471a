"""Console pages of devices: a product's devices, imports, groups, SIM cards and customers, and the sandbox's
device list. Included from console/web/urls.py (by string), so names read `console:devices:<name>`."""

from django.urls import path

from devices.web import views

app_name = "devices"

P = "products/<slug:product>/"

urlpatterns = [
    path("devices/", views.sandbox_device_list, name="sandbox-list"),
    path("devices/transfers/<int:transfer_id>/", views.transfer_decide, name="transfer-decide"),
    path(P + "devices/", views.device_list, name="list"),
    # Fixed words before <device_id>: "import" and "export.csv" are not device ids.
    path(P + "devices/export.csv", views.device_export, name="export"),
    path(P + "devices/bulk/", views.device_bulk, name="bulk"),
    path(P + "devices/import/", views.device_import, name="import"),
    path(P + "devices/import/<int:job_id>/", views.import_job, name="import-job"),
    path(P + "devices/import/<int:job_id>/status/", views.import_job_status, name="import-status"),
    path(P + "devices/import/<int:job_id>/report.csv", views.import_job_report, name="import-report"),
    path(P + "devices/<str:device_id>/", views.device_detail, name="detail"),
    path(P + "devices/<str:device_id>/approve/", views.device_approve, name="approve"),
    path(P + "devices/<str:device_id>/deny/", views.device_deny, name="deny"),
    path(P + "groups/", views.group_list, name="groups"),
    path(P + "groups/<str:name>/edit/", views.group_edit, name="group-edit"),
    path(P + "groups/<str:name>/delete/", views.group_delete, name="group-delete"),
    path(P + "sims/", views.sim_list, name="sims"),
    path(P + "sims/<str:iccid>/state/", views.sim_state, name="sim-state"),
    path(P + "sims/<str:iccid>/release/", views.sim_release, name="sim-release"),
    path(P + "customers/", views.customer_list, name="customers"),
]
