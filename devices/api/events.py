"""Events through the API (particle-api.md §13): publishing (DRF views) and the server-sent event streams.

A stream is a plain Django coroutine view, not DRF: particle-api-js sends no Accept header and reads the body
as it comes, and a coroutine view holds no thread while it waits (console/asgi.py gives it Django's async
path). The caller and the stream's scope are settled before the first byte, so a bad token is a JSON 401 and
another tenant's product a JSON 404; then `:ok` goes out at once (api-js resolves on the response headers,
which Django sends with the first chunk) and devices/streams.py does the rest.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import JsonResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.authentication import PLACEHOLDERS, bearer_from_header
from console.api.base import body
from console.api.errors import error_body
from console.errors import ServiceError
from console.scoping import Principal
from console.services.tokens import token_lookup
from devices import streams
from devices.selectors.events import stream_scope
from devices.services.publishing import event_publish_api
from products.selectors import product_get


class DeviceEventPublishView(APIView):
    """POST /v1/devices/events: an event to the caller's own stream."""

    def post(self, request):
        data = body(request)
        event_publish_api(principal=request.auth, name=data.get("name"), data=data.get("data"),
                          ttl=data.get("ttl"), as_device_id=data.get("as_device_id"))
        return Response({"ok": True})


class ProductEventPublishView(APIView):
    """POST /v1/products/:p/events: an event to the product's stream, optionally as one of its devices."""

    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="events:send")
        data = body(request)
        event_publish_api(principal=request.auth, name=data.get("name"), data=data.get("data"),
                          ttl=data.get("ttl"), product=found, as_device_id=data.get("as_device_id"))
        return Response({"ok": True})


# --- streams --------------------------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict | None = None):
        super().__init__(description)
        self.status, self.error, self.description, self.headers = status, error, description, headers or {}


def _principal(request) -> Principal:
    raw = bearer_from_header(request)
    if raw is None:
        value = request.GET.get("access_token", "")
        raw = None if value in PLACEHOLDERS else value
    if raw is None:
        raise _Refused(401, "invalid_token", "The access token was not found",
                       {"WWW-Authenticate": 'Bearer realm="Cyan"'})
    token = token_lookup(raw)
    if token is None:
        raise _Refused(401, "invalid_token", "The access token provided is invalid.",
                       {"WWW-Authenticate": 'Bearer realm="Cyan"'})
    return Principal.from_token(token)


def _settle(request, route: dict) -> streams.StreamScope:
    """The caller and the stream's scope, in a worker thread (they read the database)."""
    close_old_connections()
    try:
        principal = _principal(request)
        return stream_scope(principal, **route)
    except ServiceError as exc:
        raise _Refused(exc.status, exc.code, exc.description)
    finally:
        close_old_connections()


def _last_event_id(request) -> str | None:
    value = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or ""
    value = value.strip()
    if not value:
        return None
    if not streams.valid_event_id(value):
        raise _Refused(400, "invalid_request", "Last-Event-ID: an event id such as 1733100000000-0 is required")
    return value


def _refusal(exc: _Refused) -> JsonResponse:
    response = JsonResponse(error_body(exc.error, exc.description), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


async def open_stream(request, route: dict):
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", f"Method {request.method} not allowed"), status=405)
    try:
        last_event_id = _last_event_id(request)
        scope = await sync_to_async(_settle, thread_sensitive=False)(request, route)
    except _Refused as exc:
        return _refusal(exc)
    return await streams.stream_response(request, scope, last_event_id=last_event_id)


def _route(*, publish=None, **fixed):
    """The stream view of one route shape. Where the same path also publishes (POST), the ASGI handler
    sends POSTs through the ordinary sync chain to `publish` (console/asgi.py reads `sync_methods`)."""
    async def view(request, prefix: str = "", **kwargs):
        sync_view = view.sync_methods.get(request.method)
        if sync_view is not None:  # only where the ASGI handler did not already route it (WSGI, test clients)
            return await sync_to_async(sync_view)(request, **kwargs)
        return await open_stream(request, {**fixed, **kwargs, "prefix": prefix})
    view.streams = True
    view.sync_methods = {"POST": publish} if publish is not None else {}
    return view


mine_stream = _route(mine=True, publish=DeviceEventPublishView.as_view())  # /v1/devices/events
mine_prefix_stream = _route(mine=True)
events_stream = _route()
product_stream = _route(publish=ProductEventPublishView.as_view())  # /v1/products/:p/events
scoped_stream = _route()
