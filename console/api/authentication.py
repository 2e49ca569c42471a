"""Particle's three ways to present a token: `Authorization: Bearer`, `?access_token=`, and a form field."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from console.scoping import Principal
from console.services.tokens import token_lookup

# api-js and the CLI send these when they hold no token (particle-api.md Part B §0.2).
PLACEHOLDERS = {"", "null", "undefined"}


def bearer_from_header(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("bearer"):
        return None
    value = header[6:].strip()
    return None if value in PLACEHOLDERS else value


class ParticleTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = bearer_from_header(request)
        header_present = request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer")
        if raw is None:
            raw = request.query_params.get("access_token") or None
        if raw is None and request.method in ("POST", "PUT") and request.content_type and (
            request.content_type.startswith("application/x-www-form-urlencoded")
            or request.content_type.startswith("multipart/form-data")
        ):
            value = request.data.get("access_token")
            raw = value if isinstance(value, str) and value else None
        if raw is None:
            if header_present:
                raise exceptions.AuthenticationFailed("The access token provided is invalid.")
            return None
        token = token_lookup(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("The access token provided is invalid.")
        principal = Principal.from_token(token)
        return (token.user or AnonymousUser(), principal)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="Cyan"'
