from django.urls import path

from console.api import views

urlpatterns = [
    path("oauth/token", views.OAuthTokenView.as_view(), name="oauth-token"),
    path("v1/access_tokens", views.AccessTokenListView.as_view(), name="token-list"),
    path("v1/access_tokens/current", views.CurrentTokenView.as_view(), name="token-current"),
    path("v1/access_tokens/<str:token>", views.TokenRevokeView.as_view(), name="token-revoke"),
    path("v1/user", views.UserView.as_view(), name="user"),
    path("v1/clients", views.ClientListView.as_view(), name="client-list"),
    path("v1/clients/<str:client_id>", views.ClientDetailView.as_view(), name="client-detail"),
    path("v1/orgs", views.OrgListView.as_view(), name="org-list"),
    path("v1/orgs/<str:org>", views.OrgDetailView.as_view(), name="org-detail"),
    path("v1/orgs/<str:org>/team", views.OrgTeamView.as_view(), name="org-team"),
    path("v1/orgs/<str:org>/team/<str:username>", views.OrgTeamMemberView.as_view(), name="org-team-member"),
    path("v1/orgs/<str:org>/team/<str:username>/token", views.OrgTeamTokenView.as_view(), name="org-team-token"),
]
