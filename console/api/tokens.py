"""API views for signing in and for tokens: `/oauth/token`, `/v1/access_tokens...`."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.authentication import ParticleTokenAuthentication
from console.api.base import basic_credentials, body, client_credentials, client_ip, param, require_user
from console.api.serializers import iso, issued_token_body, token_body
from console.errors import NotFound
from console.models import AccessToken, Account
from console.scoping import Principal
from console.services import tokens as token_services


class OAuthTokenView(APIView):
    """POST /oauth/token — Particle's token endpoint (grant types password, urn:custom:mfa-otp,
    client_credentials, refresh_token)."""

    authentication_classes: list = []  # api-js and the CLI send stray Bearer headers here; ignore them
    permission_classes = [AllowAny]

    @extend_schema(operation_id="oauth_token", summary="Create an access token", tags=["auth"],
                   responses={200: OpenApiResponse(description="{token_type, access_token, expires_in, refresh_token}")})
    def post(self, request):
        data = body(request)
        client_id, client_secret = client_credentials(request, data)
        issued = token_services.token_grant(
            grant_type=data.get("grant_type"), client_id=client_id, client_secret=client_secret,
            username=data.get("username"), password=data.get("password"), refresh_token=data.get("refresh_token"),
            scope=data.get("scope"), expires_in=data.get("expires_in"), expires_at=data.get("expires_at"),
            mfa_token=data.get("mfa_token"), otp=data.get("otp"), ip=client_ip(request))
        return Response(issued_token_body(issued))


class AccessTokenListView(APIView):
    """GET /v1/access_tokens (Basic username:password, or a user token); DELETE revokes all of the caller's."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def _user(self, request):
        basic = basic_credentials(request)
        if basic:
            return token_services.basic_user(username=basic[0], password=basic[1], otp=param(request, "otp"),
                                             ip=client_ip(request))
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
        token_services.tokens_revoke_all(user=user)
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
        token_services.token_revoke(token=request.auth.token)
        return Response({"ok": True})


class TokenRevokeView(APIView):
    """DELETE /v1/access_tokens/:token — the token in the path is its own credential (CLI sends no header)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def delete(self, request, token: str):
        if not token_services.token_revoke_raw(raw=token):
            raise NotFound("Token not found")
        return Response({"ok": True})
