"""Small helpers shared by every API view: body access, credentials in headers, principal checks, 204s."""

from __future__ import annotations

import base64
import binascii

from rest_framework.request import Request
from rest_framework.response import Response

from console.clientaddr import client_address
from console.errors import ServiceError, ValidationFailed
from console.scoping import Principal


class NotForThisToken(ServiceError):
    """particle-api.md §1: API users (and other non-user tokens) on a user-only route."""

    status = 400
    code = "unauthorized"


def body(request: Request) -> dict:
    data = request.data
    if hasattr(data, "dict") and not isinstance(data, dict):
        data = data.dict()
    if data in (None, ""):
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return data


def param(request: Request, name: str, default=None):
    """A field from the body, else from the query string (Particle accepts several fields in both)."""
    data = body(request)
    if name in data:
        return data[name]
    return request.query_params.get(name, default)


def require_user(principal: Principal) -> None:
    if not principal.is_user or principal.user is None:
        kind = "API users" if principal.kind == "api_user" else f"{principal.kind.capitalize()} tokens"
        raise NotForThisToken(f"{kind} are not allowed to call this endpoint")


def no_content() -> Response:
    return Response(status=204)


def client_ip(request) -> str:
    return client_address(request)


def basic_credentials(request) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header, or None when there is none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("The Basic authorization header is malformed", code="invalid_client")
    user, _, password = decoded.partition(":")
    return user, password


def client_credentials(request, data: dict) -> tuple[str, str]:
    """An OAuth client's id and secret: form fields (api-js, the CLI) or HTTP Basic (curl `-u id:secret`)."""
    basic = basic_credentials(request)
    client_id = data.get("client_id") or (basic[0] if basic else "")
    client_secret = data.get("client_secret") or (basic[1] if basic else "")
    return str(client_id or ""), str(client_secret or "")
