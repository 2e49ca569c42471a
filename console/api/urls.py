from django.urls import path

from console.api import clients, orgs, tokens, users

urlpatterns = [
    path("oauth/token", tokens.OAuthTokenView.as_view(), name="oauth-token"),
    path("v1/access_tokens", tokens.AccessTokenListView.as_view(), name="token-list"),
    path("v1/access_tokens/current", tokens.CurrentTokenView.as_view(), name="token-current"),
    path("v1/access_tokens/<str:token>", tokens.TokenRevokeView.as_view(), name="token-revoke"),
    path("v1/user", users.UserView.as_view(), name="user"),
    path("v1/user/mfa-enable", users.MfaEnableView.as_view(), name="user-mfa-enable"),
    path("v1/user/mfa-disable", users.MfaDisableView.as_view(), name="user-mfa-disable"),
    path("v1/users", users.SignupView.as_view(), name="signup"),
    path("v1/user/password-reset", users.PasswordResetView.as_view(), name="password-reset"),
    path("v1/clients", clients.ClientListView.as_view(), name="client-list"),
    path("v1/clients/<str:client_id>", clients.ClientDetailView.as_view(), name="client-detail"),
    path("v1/orgs", orgs.OrgListView.as_view(), name="org-list"),
    path("v1/orgs/<str:org>", orgs.OrgDetailView.as_view(), name="org-detail"),
    path("v1/orgs/<str:org>/team", orgs.OrgTeamView.as_view(), name="org-team"),
    path("v1/orgs/<str:org>/team/<str:username>", orgs.OrgTeamMemberView.as_view(), name="org-team-member"),
    path("v1/orgs/<str:org>/team/<str:username>/token", orgs.OrgTeamTokenView.as_view(), name="org-team-token"),
]
