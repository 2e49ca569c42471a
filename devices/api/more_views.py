"""API views for SIM cards, customers and claim codes."""

from __future__ import annotations

import math

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import services as console_services
from console.api.authentication import ParticleTokenAuthentication
from console.api.base import body, no_content, require_user
from console.api.views import _basic_credentials
from console.errors import NotFound, ValidationFailed
from console.scoping import Principal
from devices import customers, selectors, sims
from devices.api.views import _flag
from devices.identifiers import decode_upload, split_lines
from devices.models import Customer, Device, SimCard
from devices.selectors import DEFAULT_PER_PAGE, DeviceListQuery
from products.selectors import product_get


def _page(request) -> tuple[int, int]:
    q = DeviceListQuery.from_params({k: request.query_params.get(k) for k in ("page", "perPage", "per_page")})
    return q.page, q.per_page


def _paginate(qs, request) -> tuple[list, dict]:
    page, per_page = _page(request)
    total = qs.count()
    rows = list(qs[(page - 1) * per_page: page * per_page])
    return rows, {"total_pages": math.ceil(total / per_page) if total else 0, "page": page, "per_page": per_page,
                  "total": total}


# --- SIMs --------------------------------------------------------------------------------------------


class SandboxSimListView(APIView):
    """GET /v1/sims — the user's own (sandbox) SIMs. api-js sends no query here and cannot ask for a second
    page, so the list is whole unless `page`/`perPage` are given (a sandbox holds at most 100 devices)."""

    def get(self, request):
        require_user(request.auth)
        qs = SimCard.objects.filter(user=request.auth.user).select_related("device", "user").order_by("iccid")
        if not any(request.query_params.get(k) for k in ("page", "perPage", "per_page")):
            rows = list(qs)
            return Response({"sims": [sims.sim_body(s) for s in rows],
                             "meta": {"total_pages": 1 if rows else 0, "page": 1, "per_page": len(rows),
                                      "total": len(rows)}})
        rows, meta = _paginate(qs, request)
        return Response({"sims": [sims.sim_body(s) for s in rows], "meta": meta})


class ProductSimListView(APIView):
    """GET|POST /v1/products/:p/sims."""

    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims:list")
        qs = sims.product_sims(product=found, iccid=request.query_params.get("iccid", ""),
                               device_id=request.query_params.get("deviceId", ""),
                               device_name=request.query_params.get("deviceName", "")).select_related("user")
        rows, meta = _paginate(qs, request)
        return Response({"sims": [sims.sim_body(s) for s in rows], "meta": meta})

    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims:import")
        files = list(request.FILES.values())
        if files:
            try:
                values = split_lines(decode_upload(files[0].read()))
            except ValueError as exc:
                raise ValidationFailed(str(exc), field="file")
        else:
            raw = body(request).get("sims")
            if isinstance(raw, str):
                raw = [raw]
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise ValidationFailed("sims must be a list of ICCIDs", field="sims")
            values = list(enumerate(raw, start=1))
        return Response(sims.sims_import(principal=request.auth, product=found, values=values))


class SimDetailMixin:
    def sim(self, request, iccid: str, action: str, product: str | None):
        found = product_get(principal=request.auth, ident=product, action=action) if product else None
        return sims.sim_get(principal=request.auth, iccid=iccid, action=action, product=found)


class SimDetailView(SimDetailMixin, APIView):
    """GET|HEAD|PUT|DELETE /v1/sims/:iccid and /v1/products/:p/sims/:iccid."""

    def get(self, request, iccid: str, product: str | None = None):
        return Response(sims.sim_body(self.sim(request, iccid, "sims:get", product)))

    def head(self, request, iccid: str, product: str | None = None):
        self.sim(request, iccid, "sims:get", product)
        return Response(status=204)  # api-js checkSIM fails on a bodiless 200

    def put(self, request, iccid: str, product: str | None = None):
        data = body(request)
        action = data.get("action")
        if product is None and action == "activate":
            visible = sims.sims_visible(request.auth, "sims:update").filter(iccid=iccid.upper()).first()
            if visible is None or visible.product_id is None:
                sim = sims.sim_activate_sandbox(principal=request.auth, iccid=iccid)
                return Response(sims.sim_body(sim))
        sim = self.sim(request, iccid, "sims:update", product)
        sim = sims.sim_set_state(principal=request.auth, sim=sim, action=action, mb_limit=data.get("mb_limit"))
        return Response(sims.sim_body(sim))

    def delete(self, request, iccid: str, product: str | None = None):
        sims.sim_release(principal=request.auth, sim=self.sim(request, iccid, "sims:remove", product))
        return no_content()


class SimUsageView(SimDetailMixin, APIView):
    def get(self, request, iccid: str, product: str | None = None):
        return Response(sims.sim_data_usage(self.sim(request, iccid, "sims.usage:get", product)))


class FleetUsageView(APIView):
    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims.usage:get")
        return Response(sims.fleet_data_usage(found))


# --- customers ---------------------------------------------------------------------------------------


class CustomerListView(APIView):
    """GET /v1/products/:p/customers; POST creates a customer with a team token or the product's client."""

    authentication_classes: list = []  # POST accepts client credentials instead of a token
    permission_classes = [AllowAny]

    def _principal(self, request) -> Principal:
        found = ParticleTokenAuthentication().authenticate(request)
        if not found:
            from rest_framework.exceptions import NotAuthenticated  # noqa: PLC0415

            raise NotAuthenticated()
        return found[1]

    def get(self, request, product: str):
        principal = self._principal(request)
        found = product_get(principal=principal, ident=product, action="customers:list")
        qs = Customer.objects.filter(product=found).order_by("email")
        rows, meta = _paginate(qs, request)
        devices = list(Device.objects.filter(customer__in=rows).select_related("customer"))
        by_customer: dict[int, list[str]] = {}
        for d in devices:
            by_customer.setdefault(d.customer_id, []).append(d.id)
        return Response({
            "customers": [{"id": str(c.pk), "username": c.email, "full_name": c.full_name or None,
                           "devices": by_customer.get(c.pk, [])} for c in rows],
            "devices": [{"id": d.id, "product_id": d.product_id, "last_ip_address": d.last_ip_address,
                         "firmware_version": d.firmware_version, "online": d.online} for d in devices],
            "meta": meta,
        })

    def post(self, request, product: str):
        data = body(request)
        basic = _basic_credentials(request)
        client_id = data.get("client_id") or (basic[0] if basic else None)
        client = None
        if client_id:
            client = console_services.client_authenticate(client_id=str(client_id),
                                                          client_secret=str(data.get("client_secret") or
                                                                            (basic[1] if basic else "")))
        if client is not None:
            if client.product_id is None:
                raise ValidationFailed("Only a product's OAuth client can create its customers", code="unauthorized_client")
            if client.scope and "customers:create" not in client.scope.split() and client.scope != "*:*":
                raise ValidationFailed("This client may not create customers", code="unauthorized_client")
            found = product_get(principal=Principal(kind="product", product_id=client.product_id),
                                ident=product, action="customers:create")
            principal = None
        else:
            principal = self._principal(request)
            found = product_get(principal=principal, ident=product, action="customers:create")
        customer, issued = customers.customer_create(principal=principal, product=found, email=data.get("email"),
                                                     password=data.get("password"),
                                                     no_password=data.get("no_password", False), client=client)
        return Response(issued.body(), status=201)


class CustomerDetailView(APIView):
    """PUT|DELETE /v1/products/:p/customers/:email."""

    def put(self, request, product: str, email: str):
        found = product_get(principal=request.auth, ident=product, action="customers:update")
        customer = customers.customer_get(product=found, email=email)
        customers.customer_set_password(principal=request.auth, customer=customer, password=body(request).get("password"))
        return Response({"ok": True})

    def delete(self, request, product: str, email: str):
        found = product_get(principal=request.auth, ident=product, action="customers:remove")
        customers.customer_delete(principal=request.auth, customer=customers.customer_get(product=found, email=email))
        return Response({"ok": True})


# --- claim codes ------------------------------------------------------------------------------------


class ClaimCodeView(APIView):
    """POST /v1/device_claims (user) and /v1/products/:p/device_claims (a customer of that product)."""

    def post(self, request, product: str | None = None):
        body(request)  # a malformed body is a 400 here as everywhere, even though no field is needed
        p = request.auth
        found = None
        if product is not None:
            if p.kind == "customer":
                found = product_get(principal=Principal(kind="product", product_id=p.product_id), ident=product,
                                    action="devices:list")
                if found.pk != p.product_id:
                    raise NotFound(f"Product {product} not found")
            else:
                found = product_get(principal=p, ident=product, action="devices:import")
        elif p.kind != "customer":
            require_user(p)
        code = customers.claim_code_create(principal=p, product=found)
        return Response({"claim_code": code.code, "device_ids": code.device_ids})


# --- serial numbers ------------------------------------------------------------------------------------

SERIAL_LOOKUPS_PER_HOUR = 50


class SerialNumberView(APIView):
    """GET /v1/serial_numbers/:sn — the device behind a serial number the caller can reach (50 per hour)."""

    def get(self, request, serial: str):
        from console.services import LockedOut, count_hit  # noqa: PLC0415

        p = request.auth
        caller = p.customer_id if p.kind == "customer" else (p.user.pk if p.user else p.product_id)
        if count_hit(f"serial-lookups:{p.kind}:{caller}", 3600) > SERIAL_LOOKUPS_PER_HOUR:
            raise LockedOut(f"At most {SERIAL_LOOKUPS_PER_HOUR} serial number lookups per hour", code="rate_limited",
                            retry_after=3600)
        device = selectors.device_by_serial(principal=p, serial=serial)
        sim = selectors.sim_of(device)
        iccid = sim.iccid if sim else None
        return Response({"ok": True, "serial_number": device.serial_number, "device_id": device.id,
                         "deviceID": device.id, "platform_id": device.platform_id, "iccid": iccid})
