from django.urls import include, path

from console.web import account, auth, mfa, orgs, sandbox_auth

app_name = "console"

urlpatterns = [
    path("", auth.home, name="home"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("login/code/", mfa.login_mfa, name="login-mfa"),
    path("logout/", auth.logout_view, name="logout"),
    path("account/mfa/", mfa.account_mfa, name="account-mfa"),
    path("signup/", auth.signup, name="signup"),
    path("password-reset/", auth.password_reset_request, name="password-reset"),
    path("password-reset/<str:token>/", auth.password_reset_confirm, name="password-reset-confirm"),
    path("switch/", auth.switch_account, name="switch-account"),
    path("account/", account.account_page, name="account"),
    path("authentication/", sandbox_auth.sandbox_auth, name="sandbox-auth"),
    path("authentication/tokens/<int:pk>/revoke/", sandbox_auth.token_revoke, name="token-revoke"),
    path("authentication/clients/<str:client_id>/delete/", sandbox_auth.client_delete, name="client-delete"),
    # Not under orgs/: "new" is a valid organization slug.
    path("organizations/new/", orgs.org_create, name="org-create"),
    path("orgs/<slug:org>/", orgs.org_home, name="org-home"),
    path("orgs/<slug:org>/team/", orgs.org_team_page, name="org-team"),
    path("orgs/<slug:org>/team/<str:username>/role/", orgs.org_team_role, name="org-team-role"),
    path("orgs/<slug:org>/team/<str:username>/remove/", orgs.org_team_remove, name="org-team-remove"),
    path("orgs/<slug:org>/settings/", orgs.org_settings, name="org-settings"),
    # Product pages (and each account's product list). By string: products imports console, not the reverse.
    path("", include("products.web.urls")),
    # Device, group, SIM and customer pages of products, and the sandbox's device list. By string: devices
    # imports console and products, never the reverse.
    path("", include("devices.web.urls")),
]
