"""API views for sign-in, tokens, the user, sandbox OAuth clients, organizations and org teams.

Views stay thin: read the body, call one service or selector, render Particle's shape.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import services, validation
from console.api.authentication import ParticleTokenAuthentication
from console.api.base import basic_credentials, body, client_credentials, client_ip, no_content, require_user
from console.hooks import user_device_counts
from console.api.serializers import client_body, iso, issued_token_body, org_body, token_body, user_body
from console.errors import NotFound, ValidationFailed
from console.models import AccessToken, Account, OAuthClient
from console.roles import ROLE_IDS, Role
from console.scoping import Principal
from console.selectors import org_get
from console.teams import (
    Team,
    api_user_create,
    api_user_regenerate,
    api_user_update,
    ensure_not_owner,
    org_team,
    team_entries,
    team_invite,
    team_remove,
    team_set_role,
)


class OAuthTokenView(APIView):
    """POST /oauth/token — Particle's token endpoint (grant types password, client_credentials, refresh_token)."""

    authentication_classes: list = []  # api-js and the CLI send stray Bearer headers here; ignore them
    permission_classes = [AllowAny]

    @extend_schema(operation_id="oauth_token", summary="Create an access token", tags=["auth"],
                   responses={200: OpenApiResponse(description="{token_type, access_token, expires_in, refresh_token}")})
    def post(self, request):
        data = body(request)
        client_id, client_secret = client_credentials(request, data)
        issued = services.token_grant(
            grant_type=data.get("grant_type"), client_id=client_id, client_secret=client_secret,
            username=data.get("username"), password=data.get("password"), refresh_token=data.get("refresh_token"),
            scope=data.get("scope"), expires_in=data.get("expires_in"), expires_at=data.get("expires_at"),
            ip=client_ip(request))
        return Response(issued_token_body(issued))


class AccessTokenListView(APIView):
    """GET /v1/access_tokens (Basic username:password, or a user token); DELETE revokes all of the caller's."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def _user(self, request):
        basic = basic_credentials(request)
        if basic:
            return services.authenticate_password(username=basic[0], password=basic[1], ip=client_ip(request))
        found = ParticleTokenAuthentication().authenticate(request)
        if not found:
            raise NotAuthenticated()
        require_user(found[1])
        return found[1].user

    def get(self, request):
        user = self._user(request)
        tokens = AccessToken.objects.filter(user=user, kind=AccessToken.Kind.USER).select_related("client")
        return Response([token_body(t) for t in tokens])

    def delete(self, request):
        user = self._user(request)
        services.tokens_revoke_all(user=user)
        return Response({"ok": True})


class CurrentTokenView(APIView):
    """GET|DELETE /v1/access_tokens/current."""

    def get(self, request):
        p: Principal = request.auth
        token = p.token
        orgs = []
        if p.is_user:
            orgs = [{"id": str(o.pk), "slug": o.slug}
                    for o in Account.objects.restrict(p).filter(kind=Account.Kind.ORGANIZATION)]
        return Response({"expires_at": iso(token.expires_at), "client": token.client_label,
                         "scopes": list(token.scopes), "orgs": orgs})

    def delete(self, request):
        services.token_revoke(token=request.auth.token)
        return Response({"ok": True})


class TokenRevokeView(APIView):
    """DELETE /v1/access_tokens/:token — the token in the path is its own credential (CLI sends no header)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def delete(self, request, token: str):
        if not services.token_revoke_raw(raw=token):
            raise NotFound("Token not found")
        return Response({"ok": True})


class UserView(APIView):
    """GET|PUT /v1/user."""

    def get(self, request):
        require_user(request.auth)
        wifi, cellular = user_device_counts(request.auth.user)
        return Response(user_body(request.auth.user, wifi_devices=wifi, cellular_devices=cellular))

    def put(self, request):
        require_user(request.auth)
        return Response(services.user_update(user=request.auth.user, **_user_fields(body(request))))


def _user_fields(data: dict) -> dict:
    """PUT /v1/user's body (api-js `changeUsername`, `changeUserPassword`; `account_info` as an object or in
    bracket form) as `user_update`'s arguments."""
    out: dict = {}
    info = data.get("account_info")
    if info is not None:
        if not isinstance(info, dict):
            raise ValidationFailed("account_info must be an object", field="account_info")
        out.update({k: info[k] for k in ("first_name", "last_name", "company_name") if k in info})
        if "business_account" in info:
            out["business_account"] = validation.boolean(info["business_account"],
                                                         field="account_info.business_account", default=False)
    for key in ("password", "username"):
        if key in data:
            out[key] = data[key]
    out["current_password"] = data.get("current_password")
    out["invalidate_tokens"] = validation.boolean(data.get("invalidate_tokens"), field="invalidate_tokens",
                                                  default=False)
    return out


# --- sandbox OAuth clients ------------------------------------------------------------------------


class ClientListView(APIView):
    """GET|POST /v1/clients — the caller's own (sandbox) OAuth clients."""

    def get(self, request):
        require_user(request.auth)
        clients = OAuthClient.objects.filter(owner=request.auth.user, product_id__isnull=True)
        return Response({"ok": True, "clients": [client_body(c) for c in clients]})

    def post(self, request):
        require_user(request.auth)
        data = body(request)
        client, secret = services.client_create(principal=request.auth, owner=request.auth.user, name=data.get("name"),
                                                type=data.get("type"), redirect_uri=data.get("redirect_uri"),
                                                scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client, secret)}, status=201)


class ClientDetailView(APIView):
    """PUT|DELETE /v1/clients/:clientId."""

    def _client(self, request, client_id):
        require_user(request.auth)
        return services.client_get_for_owner(client_id=client_id, owner=request.auth.user)

    def put(self, request, client_id: str):
        data = body(request)
        client = services.client_update(principal=request.auth, client=self._client(request, client_id),
                                        name=data.get("name"), scope=data.get("scope"))
        return Response({"ok": True, "client": client_body(client)})

    def delete(self, request, client_id: str):
        services.client_delete(principal=request.auth, client=self._client(request, client_id))
        return no_content()


# --- organizations --------------------------------------------------------------------------------


class OrgListView(APIView):
    """GET /v1/orgs (Particle) and POST /v1/orgs (ours: create an organization)."""

    @extend_schema(summary="List the organizations you belong to", tags=["orgs"])
    def get(self, request):
        orgs = Account.objects.restrict(request.auth).filter(kind=Account.Kind.ORGANIZATION).order_by("name")
        return Response({"organizations": [org_body(o) for o in orgs]})

    @extend_schema(summary="Create an organization (Cyan extension; Particle has no such route)", tags=["orgs"],
                   description="Body: `name` (required), `slug` (optional). The caller becomes Administrator (Owner).")
    def post(self, request):
        require_user(request.auth)
        data = body(request)
        org = services.org_create(creator=request.auth.user, name=data.get("name"), slug=data.get("slug"))
        return Response({"ok": True, "organization": org_body(org)}, status=201)


class OrgDetailView(APIView):
    """GET /v1/orgs/:org (Cyan extension)."""

    def get(self, request, org: str):
        account = org_get(principal=request.auth, ident=org, action="orgs:get")
        return Response({"organization": {**org_body(account), "owner": account.owner.email,
                                          "created_at": iso(account.created_at)}})


# --- teams (shared by orgs and products) ------------------------------------------------------------


class TeamViewBase(APIView):
    """Particle's team routes; subclasses say how to find the team from the URL."""

    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def get(self, request, **kwargs):
        team = self.team(request, "teams.users:list", **kwargs)
        return Response({"ok": True, "team": team_entries(team)})

    def post(self, request, **kwargs):
        data = body(request)
        team = self.team(request, "teams.users:invite", **kwargs)
        if "friendly_name" in data or "scopes" in data:
            user, token = api_user_create(principal=request.auth, team=team, friendly_name=data.get("friendly_name"),
                                          scopes=data.get("scopes"))
            return Response({"ok": True, "created": {"username": user.email, "friendly_name": user.friendly_name,
                                                     "is_programmatic": True, "tokens": [{"token": token}]}})
        seat = team_invite(principal=request.auth, team=team, username=data.get("username"), role=data.get("role"))
        return Response({"ok": True, "invited": {"username": seat.user.email, "role": seat.role_label}})


class TeamMemberViewBase(APIView):
    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def put(self, request, username: str, **kwargs):
        data = body(request)
        team = self.team(request, "teams.users:update", **kwargs)
        ensure_not_owner(team, username, "keeps the Administrator (Owner) role")
        seat = team.seat(username)
        if seat.user.is_programmatic and "role" in data:
            raise ValidationFailed("API users have scopes, not roles", field="role")
        if seat.user.is_programmatic:
            user, token = api_user_update(principal=request.auth, team=team, username=username,
                                          friendly_name=data.get("friendly_name"), scopes=data.get("scopes"))
            updated = {"username": user.email, "friendly_name": user.friendly_name,
                       "scopes": list(team.seat(username).scopes)}
            if token:
                updated["tokens"] = [{"token": token}]
            return Response({"ok": True, "updated": updated})
        seat = team_set_role(principal=request.auth, team=team, username=username, role=data.get("role"))
        return Response({"ok": True, "updated": {"username": seat.user.email,
                                                 "role": {"id": ROLE_IDS[Role(seat.role)], "name": seat.role_label}}})

    post = put  # the apidoc says POST, the API answers PUT: accept both

    def delete(self, request, username: str, **kwargs):
        team = self.team(request, "teams.users:remove", **kwargs)
        team_remove(principal=request.auth, team=team, username=username)
        return Response({"ok": True})


class TeamTokenViewBase(APIView):
    def team(self, request, action: str, **kwargs) -> Team:
        raise NotImplementedError

    def put(self, request, username: str, **kwargs):
        team = self.team(request, "teams.users:update", **kwargs)
        user, token = api_user_regenerate(principal=request.auth, team=team, username=username)
        return Response({"ok": True, "updated": {"username": user.email, "tokens": [{"token": token}]}})

    post = put


class OrgTeamMixin:
    def team(self, request, action: str, org: str, **kwargs) -> Team:
        return org_team(org_get(principal=request.auth, ident=org, action=action))


class OrgTeamView(OrgTeamMixin, TeamViewBase):
    pass


class OrgTeamMemberView(OrgTeamMixin, TeamMemberViewBase):
    pass


class OrgTeamTokenView(OrgTeamMixin, TeamTokenViewBase):
    pass
