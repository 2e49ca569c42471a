"""Console pages of integrations (sandbox and product forms). Included from console/urls.py by string, so
names read `integrations:<name>` and `integrations:product-<name>`."""

from django.urls import path

from integrations.web import views

app_name = "integrations"

urlpatterns = []
for prefix, name in (("integrations/", ""), ("products/<slug:product>/integrations/", "product-")):
    urlpatterns += [
        path(prefix, views.integration_list, name=f"{name}list"),
        path(f"{prefix}new/", views.integration_new, name=f"{name}new"),
        path(f"{prefix}<str:integration_id>/", views.integration_detail, name=f"{name}detail"),
        path(f"{prefix}<str:integration_id>/edit/", views.integration_edit, name=f"{name}edit"),
        path(f"{prefix}<str:integration_id>/test/", views.integration_test, name=f"{name}test"),
        path(f"{prefix}<str:integration_id>/rotate/", views.integration_rotate, name=f"{name}rotate"),
        path(f"{prefix}<str:integration_id>/delete/", views.integration_delete, name=f"{name}delete"),
        path(f"{prefix}<str:integration_id>/replay/", views.integration_replay, name=f"{name}replay"),
    ]
