"""API views for devices: the product form (/v1/products/:p/devices...) and the dev form (/v1/devices...)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import body, no_content, require_user
from console.api.serializers import iso
from console.errors import ValidationFailed
from devices import importing, selectors, services
from devices.api.serializers import device_body, group_body
from devices.identifiers import decode_upload, split_lines
from devices.models import Device
from products.models import DeviceGroup
from products.selectors import product_get


def _import_values(request) -> list[tuple[int, str]]:
    """`id`, `ids[]` / `ids`, or a multipart file (any part name and filename) — one value per line."""
    data = body(request)
    files = list(request.FILES.values())
    if files:
        upload = files[0]
        if upload.size > importing.MAX_FILE_BYTES:
            raise ValidationFailed(f"The file is larger than {importing.MAX_FILE_BYTES // 1_000_000} MB", field="file")
        try:
            text = decode_upload(upload.read())
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="file")
        return split_lines(text)
    ids = data.get("ids")
    if ids is not None:
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationFailed("ids must be a list of device ids", field="ids")
        return [(n, i) for n, i in enumerate(ids, start=1)]
    single = data.get("id") or request.query_params.get("id")
    if isinstance(single, str) and single.strip():
        return [(1, single.strip())]
    raise ValidationFailed("Send a device `id`, a list `ids`, or a file (one id per line)", field="id")


def _flag(value, default: bool) -> bool:
    if value in (None, ""):
        return default
    return str(value).lower() in ("true", "1", "yes")


class ProductDeviceListView(APIView):
    """GET (list), POST (import / approve), PUT (batch groups) /v1/products/:p/devices."""

    @extend_schema(summary="List a product's devices", tags=["devices"])
    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:list")
        query = selectors.DeviceListQuery.from_params(request.query_params)
        page = selectors.product_device_page(product=found, query=query)
        return Response({
            "devices": [device_body(d, page.groups.get(d.id, [])) for d in page.devices],
            "customers": selectors.customer_usernames(page.devices),
            "meta": {"total_pages": page.total_pages, "page": page.page, "per_page": page.per_page,
                     "total": page.total, "total_is_estimate": page.estimated},
        })

    @extend_schema(summary="Import devices into a product, or approve a quarantined one", tags=["devices"])
    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:import")
        values = _import_values(request)
        data = body(request)
        report = importing.device_import(
            principal=request.auth, product=found, values=values,
            import_sims=_flag(data.get("import_sims", request.query_params.get("import_sims")), True),
            claim_user=data.get("claim_user") or request.query_params.get("claim_user"))
        return Response(report.body())

    @extend_schema(summary="Batch actions on product devices (action=groups)", tags=["devices"])
    def put(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="devices:update")
        data = body(request)
        if data.get("action") != "groups":
            raise ValidationFailed("action must be 'groups'", field="action")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValidationFailed("metadata must be an object with add and/or remove lists", field="metadata")
        services.devices_batch_groups(principal=request.auth, product=found, device_ids=data.get("devices"),
                                      add=metadata.get("add"), remove=metadata.get("remove"))
        return Response({"ok": True})


def _update_response(device: Device, changed: dict, data: dict) -> dict:
    out = {"id": device.id, **changed, "updated_at": iso(device.updated_at)}
    if "signal" in data:
        out.update(connected=device.online, signaling=str(data["signal"]) in ("1", "true", "True"))
    return out


class ProductDeviceDetailView(APIView):
    """GET, PUT, DELETE /v1/products/:p/devices/:id."""

    def get(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:get")
        return Response(device_body(selectors.product_device_get(product=found, device_id=device_id)))

    def put(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:update")
        device = selectors.product_device_get(product=found, device_id=device_id)
        data = body(request)
        changed = services.device_update(principal=request.auth, device=device, data=data, product_form=True)
        return Response(_update_response(device, changed, data))

    def delete(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:remove")
        device = selectors.product_device_get(product=found, device_id=device_id)
        if services.parse_bool(body(request).get("deny", False), "deny"):
            services.device_deny(principal=request.auth, device=device)
        else:
            services.device_remove(principal=request.auth, device=device)
        return no_content()


class ProductDeviceOwnerView(APIView):
    """DELETE /v1/products/:p/devices/:id/owner — unclaim."""

    def delete(self, request, product: str, device_id: str):
        found = product_get(principal=request.auth, ident=product, action="devices:release")
        device = selectors.product_device_get(product=found, device_id=device_id)
        services.device_unclaim(principal=request.auth, device=device)
        return Response({"ok": True})


class DeviceListView(APIView):
    """GET /v1/devices (bare array) and POST /v1/devices (claim)."""

    def get(self, request):
        p = request.auth
        if p.kind == "customer":
            devices = Device.objects.restrict(p, "devices:list").select_related("owner", "customer", "platform", "sim")
        else:
            require_user(p)
            only = _flag(request.query_params.get("sandbox_only"), False)
            devices = selectors.sandbox_devices(user=p.user, sandbox_only=only)
        devices = list(devices)
        groups = selectors.groups_of([d.id for d in devices if d.product_id])
        return Response([device_body(d, groups.get(d.id)) for d in devices])

    def post(self, request):
        require_user(request.auth)
        data = body(request)
        if data.get("product_id") not in (None, "") and not data.get("id"):
            raise ValidationFailed("Self-provisioning is not available: import the device into the product",
                                   field="product_id")
        outcome = services.device_claim(principal=request.auth, device_id=data.get("id"),
                                        request_transfer=data.get("request_transfer"))
        if outcome.transfer is not None:
            # Particle: the owner is asked (by email); the device is not claimed yet.
            return Response({"ok": True, "deviceID": outcome.device.id, "claimed": False,
                             "transfer_id": str(outcome.transfer.pk)})
        return Response({"ok": True, "deviceID": outcome.device.id, "claimed": True,
                         "user_id": request.auth.user.email})


class DeviceDetailView(APIView):
    """GET, PUT, DELETE (unclaim) /v1/devices/:id."""

    def get(self, request, device_id: str):
        device = selectors.device_get(principal=request.auth, device_id=device_id, action="devices:get")
        return Response(device_body(device))

    def put(self, request, device_id: str):
        device = selectors.device_get(principal=request.auth, device_id=device_id, action="devices:update")
        data = body(request)
        changed = services.device_update(principal=request.auth, device=device, data=data, product_form=False)
        return Response(_update_response(device, changed, data))

    def delete(self, request, device_id: str):
        device = selectors.device_get(principal=request.auth, device_id=device_id, action="devices:release")
        services.device_unclaim(principal=request.auth, device=device)
        return Response({"ok": True})


class GroupListView(APIView):
    """GET|POST /v1/products/:p/groups."""

    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="groups:list")
        groups = DeviceGroup.objects.filter(product=found)
        name = request.query_params.get("name")
        if name:
            groups = groups.filter(name__icontains=name)
        return Response({"groups": [group_body(g) for g in groups]})

    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="groups:create")
        group = services.group_create(principal=request.auth, product=found, data=body(request))
        return Response({"group": group_body(group)}, status=201)


class GroupDetailView(APIView):
    """GET|PUT|DELETE /v1/products/:p/groups/:name."""

    def _group(self, request, product: str, name: str, action: str) -> DeviceGroup:
        found = product_get(principal=request.auth, ident=product, action=action)
        group = DeviceGroup.objects.filter(product=found, name=name).select_related("product", "product__account").first()
        if group is None:
            from console.errors import NotFound  # noqa: PLC0415

            raise NotFound(f"Group {name} not found")
        return group

    def get(self, request, product: str, name: str):
        return Response({"group": group_body(self._group(request, product, name, "groups:get"))})

    def put(self, request, product: str, name: str):
        group = services.group_update(principal=request.auth, group=self._group(request, product, name, "groups:update"),
                                      data=body(request))
        return Response({"group": group_body(group)})

    def delete(self, request, product: str, name: str):
        services.group_delete(principal=request.auth, group=self._group(request, product, name, "groups:remove"))
        return no_content()
