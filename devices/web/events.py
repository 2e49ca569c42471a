"""Console pages of live events: a product's (all its devices, or one) and the sandbox's (the signed-in user's
own events). The page draws the log; the browser's EventSource reads a stream served by the same code as the
API's (devices/streams.py), signed in by the console session instead of a token, and resumes by itself with
Last-Event-ID after a dropped connection."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse

from console import validation
from console.api.errors import error_body
from console.errors import ServiceError, ValidationFailed
from console.services.users import sandbox_of
from console.web.access import console_view, enter_account
from console.web.nav import sandbox_place
from devices import streams
from devices.identifiers import is_device_id
from devices.selectors.events import stream_scope
from devices.web import common

MAX_PREFIX = 64


def _filters(params) -> tuple[str, str | None]:
    prefix = validation.text(params.get("prefix"), field="prefix", max_length=MAX_PREFIX, required=False)
    device = (params.get("device") or "").strip().lower() or None
    if device is not None and not is_device_id(device):
        raise ValidationFailed("device: a device id is 24 hexadecimal characters", field="device")
    return prefix, device


@console_view
def product_events(request, product: str):
    found = common.product_for(request, product, "events:get")
    prefix, device = _page_filters(request)
    return render(request, "devices/events.html", {
        "place": common.place(request, found, "events", ("Events", None)), "product": found,
        "stream_url": reverse("console:devices:event-stream", args=[found.slug]),
        "prefix": prefix, "device": device or "", "error": getattr(request, "_filter_error", ""),
        "scope_words": f"devices of {found.name}, its integrations' responses and events published to it",
    })


@console_view
def sandbox_events(request):
    sandbox = sandbox_of(request.user)
    enter_account(request, sandbox)
    prefix, device = _page_filters(request)
    place = sandbox_place(sandbox, "events")
    place.crumbs.append(("Events", None))
    return render(request, "devices/events.html", {
        "place": place, "product": None, "stream_url": reverse("console:devices:sandbox-event-stream"),
        "prefix": prefix, "device": device or "", "error": getattr(request, "_filter_error", ""),
        "scope_words": "devices claimed to you and events published with your tokens",
    })


def _page_filters(request) -> tuple[str, str | None]:
    try:
        return _filters(request.GET)
    except ServiceError as exc:
        request._filter_error = exc.description
        return "", None


def _refused(status: int, error: str, description: str) -> JsonResponse:
    return JsonResponse(error_body(error, description), status=status)


def _scope(principal, params, product: str | None) -> streams.StreamScope:
    close_old_connections()
    try:
        prefix, device = _filters(params)
        if product is not None:
            return stream_scope(principal, product=product, device=device, prefix=prefix)
        return stream_scope(principal, device=device, prefix=prefix) if device else \
            stream_scope(principal, prefix=prefix, mine=True)
    finally:
        close_old_connections()


async def _console_stream(request, product: str | None):
    principal = getattr(request, "principal", None)
    if principal is None:
        return _refused(401, "unauthorized", "Sign in to the console to follow events")
    try:
        scope = await sync_to_async(_scope, thread_sensitive=False)(principal, request.GET, product)
    except ServiceError as exc:
        return _refused(exc.status, exc.code, exc.description)
    last = (request.headers.get("Last-Event-ID") or "").strip()
    if last and not streams.valid_event_id(last):
        last = ""
    return await streams.stream_response(request, scope, last_event_id=last or None, format="unnamed")


async def product_event_stream(request, product: str):
    return await _console_stream(request, product)


async def sandbox_event_stream(request):
    return await _console_stream(request, None)


product_event_stream.streams = True
sandbox_event_stream.streams = True
