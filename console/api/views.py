"""API views for sign-in, tokens, the user, sandbox OAuth clients, organizations and org teams.

Views stay thin: read the body, call one service or selector, render Particle's shape.
"""

from __future__ import annotations

import base64
import re
import binascii

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import services
from console.hooks import customer_password_login, customer_token, user_device_counts
from console.api.base import body, no_content, param, require_user
from console.api.serializers import client_body, iso, org_body, token_body, user_body
from console.errors import Forbidden, NotFound, ValidationFailed
from console.models import AccessToken, Account, OAuthClient
from console.roles import ROLE_IDS, Role
from console.scoping import Principal
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


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _basic_credentials(request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("The Basic authorization header is malformed", code="invalid_client")
    user, _, password = decoded.partition(":")
    return user, password


class OAuthTokenView(APIView):
    """POST /oauth/token — Particle's token endpoint (grant types password, client_credentials, refresh_token)."""

    authentication_classes: list = []  # api-js and the CLI send stray Bearer headers here; ignore them
    permission_classes = [AllowAny]

    @extend_schema(operation_id="oauth_token", summary="Create an access token", tags=["auth"],
                   responses={200: OpenApiResponse(description="{token_type, access_token, expires_in, refresh_token}")})
    def post(self, request):
        data = body(request)
        basic = _basic_credentials(request)
        client_id = data.get("client_id") or (basic[0] if basic else "")
        client_secret = data.get("client_secret") or (basic[1] if basic else "")
        grant = data.get("grant_type")
        if not grant:
            raise ValidationFailed("grant_type is required", field="grant_type")
        if grant == "password":
            return self._password(request, data, client_id, client_secret)
        if grant == "client_credentials":
            return self._client_credentials(data, client_id, client_secret)
        if grant == "refresh_token":
            client = services.client_authenticate(client_id=client_id, client_secret=client_secret) if client_id else None
            issued = services.token_refresh(refresh_token=str(data.get("refresh_token") or ""), client=client)
            return Response(issued.body())
        raise ValidationFailed(f"The grant type {grant!r} is not supported", code="unsupported_grant_type")

    def _password(self, request, data, client_id, client_secret):
        username, password = data.get("username"), data.get("password")
        if not username or not password:
            raise ValidationFailed("username and password are required", field="username")
        services.login_check_lockout(ip=client_ip(request))
        client = None
        if client_id and OAuthClient.objects.filter(client_id=client_id).exists():
            client = services.client_authenticate(client_id=client_id, client_secret=client_secret)
        if client is not None and client.product_id is not None:
            # A product client's password grant signs in that product's customers (simple auth).
            issued = customer_password_login(client=client, username=str(username), password=str(password),
                                             expires_in=data.get("expires_in"))
            if issued is not None:
                return Response(issued.body())
        user = services.authenticate_password(username=str(username), password=str(password), ip=client_ip(request))
        with transaction.atomic():
            issued = services.token_issue(kind=AccessToken.Kind.USER, user=user, client=client,
                                          client_name=str(client_id or "")[:120],
                                          expires_in=data.get("expires_in"), expires_at=data.get("expires_at"))
        return Response(issued.body())

    def _client_credentials(self, data, client_id, client_secret):
        if not client_id:
            raise ValidationFailed("client_id and client_secret are required", code="invalid_client")
        if client_id in services.BUILTIN_CLIENTS:
            raise services.InvalidClient("Built-in clients cannot use client_credentials; create an OAuth client")
        client = services.client_authenticate(client_id=client_id, client_secret=client_secret)
        if client.product_id is None:
            raise ValidationFailed("Only product OAuth clients may use client_credentials", code="unauthorized_client")
        scope = str(data.get("scope") or "")
        if scope.startswith("customer="):
            issued = customer_token(client=client, email=scope.removeprefix("customer="),
                                    expires_in=data.get("expires_in"), expires_at=data.get("expires_at"))
            return Response(issued.body())
        if scope:
            raise ValidationFailed(f"The scope {scope!r} is not supported", code="invalid_scope")
        restricted = client.scope.split() if client.scope and client.scope != "*:*" else []
        with transaction.atomic():
            issued = services.token_issue(kind=AccessToken.Kind.PRODUCT, client=client, product_id=client.product_id,
                                          scopes=restricted, expires_in=data.get("expires_in"),
                                          expires_at=data.get("expires_at"))
        return Response(issued.body())


class AccessTokenListView(APIView):
    """GET /v1/access_tokens (Basic username:password, or a user token); DELETE revokes all of the caller's."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def _user(self, request):
        basic = _basic_credentials(request)
        if basic:
            return services.authenticate_password(username=basic[0], password=basic[1], ip=client_ip(request))
        from console.api.authentication import ParticleTokenAuthentication  # noqa: PLC0415

        found = ParticleTokenAuthentication().authenticate(request)
        if not found:
            from rest_framework.exceptions import NotAuthenticated  # noqa: PLC0415

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
        return Response(services.user_update(user=request.auth.user, data=body(request)))


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


def org_get(principal: Principal, ident: str, action: str | None) -> Account:
    """The org by id or slug: 404 when the caller has no seat, 403 when its role may not `action`."""
    visible = Account.objects.restrict(principal).filter(kind=Account.Kind.ORGANIZATION).select_related("owner")
    if ident.isascii() and ident.isdigit() and len(ident) <= 18:
        org = visible.filter(pk=int(ident)).first()
    elif re.fullmatch(r"[a-z0-9][a-z0-9-]{0,99}", ident):
        org = visible.filter(slug=ident).first()
    else:
        org = None
    if org is None:
        raise NotFound(f"Organization {ident} not found")
    if action and not Account.objects.restrict(principal, action).filter(pk=org.pk).exists():
        raise Forbidden("Your role in this organization does not allow this action")
    return org


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
        account = org_get(request.auth, org, "orgs:get")
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
        return org_team(org_get(request.auth, org, action))


class OrgTeamView(OrgTeamMixin, TeamViewBase):
    pass


class OrgTeamMemberView(OrgTeamMixin, TeamMemberViewBase):
    pass


class OrgTeamTokenView(OrgTeamMixin, TeamTokenViewBase):
    pass
