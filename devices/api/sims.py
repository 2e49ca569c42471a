"""API views for SIM cards: the sandbox's (/v1/sims...) and a product's (/v1/products/:p/sims...)."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from console import validation
from console.api.base import body, no_content, require_user
from console.pagination import Page, paginate
from devices.api import inputs
from devices.api.serializers import sim_body
from devices.models import SimCard
from devices.selectors import sims as sim_selectors
from devices.services import sims as sim_services
from products.selectors import product_get


def _page_of(qs, request) -> Page:
    page, per_page = validation.page_params(request.query_params)
    return paginate(qs, page=page, per_page=per_page)


def _sims_response(page: Page) -> Response:
    return Response({"sims": [sim_body(s) for s in page.rows], "meta": page.meta()})


class SandboxSimListView(APIView):
    """GET /v1/sims — the user's own (sandbox) SIMs. api-js sends no query here and cannot ask for a second
    page, so the list is whole unless `page`/`perPage` are given (a sandbox holds at most 100 devices)."""

    def get(self, request):
        require_user(request.auth)
        qs = SimCard.objects.filter(user=request.auth.user).select_related("device", "user").order_by("iccid")
        if not validation.asks_for_page(request.query_params):
            rows = list(qs)
            return _sims_response(Page(rows=rows, page=1, per_page=len(rows), total=len(rows)))
        return _sims_response(_page_of(qs, request))


class ProductSimListView(APIView):
    """GET|POST /v1/products/:p/sims."""

    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims:list")
        q = request.query_params
        qs = sim_selectors.product_sims(product=found, iccid=q.get("iccid", ""), device_id=q.get("deviceId", ""),
                                        device_name=q.get("deviceName", "")).select_related("user")
        return _sims_response(_page_of(qs, request))

    def post(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims:import")
        return Response(sim_services.sims_import(principal=request.auth, product=found,
                                                 values=inputs.sim_lines(request)))


def _sim(request, iccid: str, action: str, product: str | None) -> SimCard:
    found = product_get(principal=request.auth, ident=product, action=action) if product else None
    return sim_selectors.sim_get(principal=request.auth, iccid=iccid, action=action, product=found)


class SimDetailView(APIView):
    """GET|HEAD|PUT|DELETE /v1/sims/:iccid and /v1/products/:p/sims/:iccid."""

    def get(self, request, iccid: str, product: str | None = None):
        return Response(sim_body(_sim(request, iccid, "sims:get", product)))

    def head(self, request, iccid: str, product: str | None = None):
        _sim(request, iccid, "sims:get", product)
        return Response(status=204)  # api-js checkSIM fails on a bodiless 200

    def put(self, request, iccid: str, product: str | None = None):
        data = body(request)
        action = data.get("action")
        if product is None and action == "activate":
            # Activating a SIM nobody owns takes it into the caller's sandbox; a SIM of a product the
            # caller may update is activated in place, below.
            visible = sim_selectors.sims_visible(request.auth, "sims:update").filter(iccid=iccid.upper()).first()
            if visible is None or visible.product_id is None:
                return Response(sim_body(sim_services.sim_activate_sandbox(principal=request.auth, iccid=iccid)))
        sim = _sim(request, iccid, "sims:update", product)
        sim = sim_services.sim_set_state(principal=request.auth, sim=sim, action=action,
                                         mb_limit=inputs.mb_limit(data.get("mb_limit")))
        return Response(sim_body(sim))

    def delete(self, request, iccid: str, product: str | None = None):
        sim_services.sim_release(principal=request.auth, sim=_sim(request, iccid, "sims:remove", product))
        return no_content()


class SimUsageView(APIView):
    def get(self, request, iccid: str, product: str | None = None):
        return Response(sim_selectors.sim_data_usage(_sim(request, iccid, "sims.usage:get", product)))


class FleetUsageView(APIView):
    def get(self, request, product: str):
        found = product_get(principal=request.auth, ident=product, action="sims.usage:get")
        return Response(sim_selectors.fleet_data_usage(found))
