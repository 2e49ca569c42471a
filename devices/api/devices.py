"""API views for devices: the product form (/v1/products/:p/devices...) and the dev form (/v1/devices...)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console import validation
from console.api.base import body, no_content, require_user
from console.api.serializers import iso
from devices.api import inputs
from devices.api.serializers import DEVICE_BODY_FIELDS, customer_usernames_body, device_body
from devices.models import Device
from devices.selectors import devices as device_selectors
from devices.selectors.groups import groups_of
from devices.services import claims, importing, registry
from devices.services import devices as device_services
from devices.services import groups as group_services
from devices.services import remote as remote_services
from products.selectors import product_get


class ProductDeviceListView(APIView):
    """GET (list), POST (import / approve), PUT (batch groups) /v1/products/:p/devices."""

    @extend_schema(summary="List a product's devices", tags=["devices"])
    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:list")
        query = device_selectors.DeviceListQuery.from_params(request.query_params)
        page = device_selectors.product_device_page(product=found, query=query, shown=DEVICE_BODY_FIELDS)
        return Response({
            "devices": [device_body(d, page.groups.get(d.id, [])) for d in page.devices],
            "customers": customer_usernames_body(page.devices),
            "meta": {**page.meta(), "total_is_estimate": page.estimated},
        })

    @extend_schema(summary="Import devices into a product, or approve a quarantined one", tags=["devices"])
    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:import")
        values = inputs.import_values(request)
        report = importing.device_import(principal=request.auth, product=found, values=values,
                                         **inputs.import_options(request))
        return Response(report.as_dict())

    @extend_schema(summary="Batch actions on product devices (action=groups)", tags=["devices"])
    def put(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:update")
        group_services.devices_batch_groups(principal=request.auth, product=found, **inputs.batch_groups(body(request)))
        return Response({"ok": True})


def _update_action(fields: dict) -> str:
    """A PUT that only says `signal` talks to the device, like ping (Support and up); anything else edits it."""
    return "devices:ping" if set(fields) == {"signal"} else "devices:update"


def _update(request, device: Device, fields: dict, *, product_form: bool) -> dict:
    """PUT /v1/devices/:id and the product form: the edits through device_update, then `signal=1|0` to the
    device itself (devices/services/remote.py). A signal alone answers Particle's `{id, connected, signaling}`."""
    signal = fields.pop("signal", None)
    out = {"id": device.id}
    if fields:
        changed = device_services.device_update(principal=request.auth, device=device, product_form=product_form,
                                                **fields)
        out.update(changed, updated_at=iso(device.updated_at))
    elif signal is None:
        device_services.device_update(principal=request.auth, device=device, product_form=product_form)
    if signal is not None:
        reached = remote_services.device_signal(principal=request.auth, device=device, on=signal)
        out.update(connected=reached, signaling=bool(signal and reached))
    return out


class ProductDeviceDetailView(APIView):
    """GET, PUT, DELETE /v1/products/:p/devices/:id."""

    def get(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:get")
        return Response(device_body(device_selectors.product_device_get(product=found, device_id=device_id)))

    def put(self, request, product: str, device_id: str):
        fields = inputs.device_update_fields(body(request))
        found = product_get(principal=request.auth, ident=product, action=_update_action(fields))
        device = device_selectors.product_device_get(product=found, device_id=device_id)
        return Response(_update(request, device, fields, product_form=True))

    def delete(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:remove")
        device = device_selectors.product_device_get(product=found, device_id=device_id)
        if validation.boolean(body(request).get("deny"), field="deny", default=False):
            device_services.device_deny(principal=request.auth, device=device)
        else:
            device_services.device_remove(principal=request.auth, device=device)
        return no_content()


class ProductDeviceOwnerView(APIView):
    """DELETE /v1/products/:p/devices/:id/owner — unclaim."""

    def delete(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:release")
        device = device_selectors.product_device_get(product=found, device_id=device_id)
        device_services.device_unclaim(principal=request.auth, device=device)
        return Response({"ok": True})


class DeviceListView(APIView):
    """GET /v1/devices (bare array) and POST /v1/devices (claim)."""

    def get(self, request):
        p = request.auth
        if p.kind == "customer":
            devices = Device.objects.restrict(p, "devices:list").select_related("owner", "customer", "platform", "sim")
        else:
            require_user(p)
            only = validation.boolean(request.query_params.get("sandbox_only"), field="sandbox_only", default=False)
            devices = device_selectors.sandbox_devices(user=p.user, sandbox_only=only)
        devices = list(devices)
        groups = groups_of([d.id for d in devices if d.product_id])
        return Response([device_body(d, groups.get(d.id)) for d in devices])

    def post(self, request):
        data = body(request)
        if data.get("product_id") not in (None, "") and not data.get("id"):
            # Self-provision (particle-api-js provisionDevice): a new device id in the product.
            found = product_get(principal=request.auth, ident=data["product_id"], action="devices:import")
            return Response(device_body(registry.device_self_provision(principal=request.auth, product=found), []))
        require_user(request.auth)
        outcome = claims.device_claim(
            principal=request.auth, device_id=data.get("id"),
            request_transfer=validation.boolean(data.get("request_transfer"), field="request_transfer",
                                                default=False))
        if outcome.transfer is not None:
            # Particle: the owner is asked (by email); the device is not claimed yet.
            return Response({"ok": True, "deviceID": outcome.device.id, "claimed": False,
                             "transfer_id": str(outcome.transfer.pk)})
        return Response({"ok": True, "deviceID": outcome.device.id, "claimed": True,
                         "user_id": request.auth.user.email})


class DeviceDetailView(APIView):
    """GET, PUT, DELETE (unclaim) /v1/devices/:id."""

    def get(self, request, device_id: str):
        device = device_selectors.device_get(principal=request.auth, device_id=device_id, action="devices:get")
        return Response(device_body(device))

    def put(self, request, device_id: str):
        fields = inputs.device_update_fields(body(request))
        device = device_selectors.device_get(principal=request.auth, device_id=device_id,
                                             action=_update_action(fields))
        return Response(_update(request, device, fields, product_form=False))

    def delete(self, request, device_id: str):
        device = device_selectors.device_get(principal=request.auth, device_id=device_id, action="devices:release")
        device_services.device_unclaim(principal=request.auth, device=device)
        return Response({"ok": True})
