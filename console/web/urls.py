from django.urls import include, path

from console.web import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("switch/", views.switch_account, name="switch-account"),
    path("authentication/", views.sandbox_auth, name="sandbox-auth"),
    path("authentication/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("authentication/clients/<str:client_id>/delete/", views.client_delete, name="client-delete"),
    # Not under orgs/: "new" is a valid organization slug.
    path("organizations/new/", views.org_create, name="org-create"),
    path("orgs/<slug:org>/", views.org_home, name="org-home"),
    path("orgs/<slug:org>/team/", views.org_team_page, name="org-team"),
    path("orgs/<slug:org>/team/<str:username>/role/", views.org_team_role, name="org-team-role"),
    path("orgs/<slug:org>/team/<str:username>/remove/", views.org_team_remove, name="org-team-remove"),
    path("orgs/<slug:org>/settings/", views.org_settings, name="org-settings"),
    # Product pages (and each account's product list). By string: products imports console, not the reverse.
    path("", include("products.web.urls")),
    # Device, group, SIM and customer pages of products, and the sandbox's device list. By string: devices
    # imports console and products, never the reverse.
    path("", include("devices.web.urls")),
]
