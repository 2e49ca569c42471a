"""API views that reach a connected device: variables (GET), functions (POST), ping (PUT), in both the dev form
(/v1/devices/:id/...) and the product form (/v1/products/:p/devices/:id/...). Signal rides on PUT
/v1/devices/:id (devices/api/devices.py). Each resolves the device through the caller's scope with the
route's action before the service sends anything to Redis (devices/services/remote.py)."""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.urls import register_converter
from drf_spectacular.utils import extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body
from console.api.serializers import iso
from devices.models import Device
from devices.selectors import devices as device_selectors
from devices.services import remote

# Names that are routes of their own under a device (issue 13's event stream among them), never a variable
# or function name in the URL conf: devices/api/urls.py's `particle_name` converter refuses them.
RESERVED_NAMES = ("events", "ping", "owner")


class ParticleNameConverter:
    """A function or variable name in a device path: any one segment except RESERVED_NAMES."""

    regex = r"(?!(?:%s)(?:/|$))[^/]+" % "|".join(RESERVED_NAMES)

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ParticleNameConverter, "particle_name")


class ParticleFormat(DefaultContentNegotiation):
    """`?format=raw` is Particle's (the bare value), not DRF's renderer override, which would 404 on it:
    these views always render JSON, and answer `format=raw` with a plain HttpResponse themselves."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class RemoteView(APIView):
    content_negotiation_class = ParticleFormat


def _wants_raw(request) -> bool:
    data = body(request) if request.method != "GET" else {}
    return str(data.get("format") or request.query_params.get("format") or "").lower() == "raw"


def _raw(value: object) -> HttpResponse:
    """`format=raw`: the bare value as text, a string as itself, numbers and booleans as JSON writes them."""
    text = value if isinstance(value, str) else json.dumps(value)
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


def core_info(device: Device) -> dict:
    """The `coreInfo` a variable read carries (particle-api.md §6): the device as the read found it, online."""
    return {"name": device.name or None, "deviceID": device.id, "connected": True,
            "last_handshake_at": iso(device.last_handshake_at), "last_heard": iso(device.last_heard),
            "product_id": device.product_id if device.product_id is not None else device.platform_id,
            "platform_id": device.platform_id}


def _argument(request) -> object:
    """The function argument: `arg` (Particle's docs) or `args` (what api-js sends), body first, then query."""
    data = body(request)
    for key in ("arg", "args"):
        if key in data:
            return data[key]
    for key in ("arg", "args"):
        if key in request.query_params:
            return request.query_params[key]
    return None


def _variable(request, device: Device, name: str):
    value, kind = remote.device_variable_get(principal=request.auth, device=device, name=name)
    if _wants_raw(request):
        return _raw(value)
    return Response({"cmd": "VarReturn", "name": name, "result": value, "type": kind,
                     "coreInfo": core_info(device)})


def _function(request, device: Device, name: str):
    value = remote.device_function_call(principal=request.auth, device=device, name=name, arg=_argument(request))
    if _wants_raw(request):
        return _raw(value)
    return Response({"id": device.id, "name": device.name or None, "connected": True, "return_value": value})


def _ping(request, device: Device):
    return Response({"online": remote.device_ping(principal=request.auth, device=device), "ok": True})


# What these views read of a device is its own row (id, name, flags, timestamps, variables): loading its
# owner, customer, platform and SIM besides would cost ~0.4 ms a call for nothing.
def _device(request, device_id: str, action: str) -> Device:
    return device_selectors.device_get(principal=request.auth, device_id=device_id, action=action, related=())


def _product_device(request, product: str, device_id: str, action: str) -> Device:
    return device_selectors.product_and_device_get(principal=request.auth, product=product, device_id=device_id,
                                                   action=action, related=())


class DeviceRemoteView(RemoteView):
    """GET (variable) and POST (function) /v1/devices/:id/:name."""

    @extend_schema(summary="Read a device's variable (format=raw: the bare value)", tags=["devices"])
    def get(self, request, device_id: str, name: str):
        return _variable(request, _device(request, device_id, "devices.variable:get"), name)

    @extend_schema(summary="Call a device's function with `arg` (or `args`); format=raw: the bare int",
                   tags=["devices"])
    def post(self, request, device_id: str, name: str):
        return _function(request, _device(request, device_id, "devices.function:call"), name)


class ProductDeviceRemoteView(RemoteView):
    """GET (variable) and POST (function) /v1/products/:p/devices/:id/:name."""

    @extend_schema(summary="Read a product device's variable (format=raw: the bare value)", tags=["devices"])
    def get(self, request, product: str, device_id: str, name: str):
        return _variable(request, _product_device(request, product, device_id, "devices.variable:get"), name)

    @extend_schema(summary="Call a product device's function with `arg` (or `args`)", tags=["devices"])
    def post(self, request, product: str, device_id: str, name: str):
        return _function(request, _product_device(request, product, device_id, "devices.function:call"), name)


class DevicePingView(RemoteView):
    """PUT /v1/devices/:id/ping."""

    @extend_schema(summary="Ping a device: is it connected right now? ({online, ok})", tags=["devices"])
    def put(self, request, device_id: str):
        return _ping(request, _device(request, device_id, "devices:ping"))


class ProductDevicePingView(RemoteView):
    """PUT /v1/products/:p/devices/:id/ping."""

    @extend_schema(summary="Ping a product device ({online, ok})", tags=["devices"])
    def put(self, request, product: str, device_id: str):
        return _ping(request, _product_device(request, product, device_id, "devices:ping"))
