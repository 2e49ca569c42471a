"""Small helpers shared by every API view: body access, principal checks, 204s."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

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
