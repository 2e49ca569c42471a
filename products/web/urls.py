"""Product pages, and each account's product list. Included from console/web/urls.py (by string)."""

from django.urls import path

from products.web import views

app_name = "products"

urlpatterns = [
    path("products/", views.sandbox_products, name="list"),
    path("orgs/<slug:org>/products/", views.org_products, name="org-list"),
    path("products/<slug:product>/", views.overview, name="detail"),
    path("products/<slug:product>/settings/", views.settings, name="settings"),
    path("products/<slug:product>/team/", views.team, name="team"),
    path("products/<slug:product>/team/<str:username>/role/", views.team_role, name="team-role"),
    path("products/<slug:product>/team/<str:username>/remove/", views.team_remove, name="team-remove"),
    path("products/<slug:product>/authentication/", views.authentication, name="auth"),
    path("products/<slug:product>/authentication/clients/<str:client_id>/delete/", views.client_delete,
         name="client-delete"),
]
