"""Console pages of a product's SIM cards: the list with the month's data usage, state changes, release."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.pagination import COUNT_CAP, paginate
from console.validation import whole_number
from console.web.access import console_view
from devices.selectors import sims as sim_selectors
from devices.services import sims as sim_services
from devices.web import common
from devices.web.forms import SimStateForm


def _chart(days: list[dict]) -> dict:
    """Bars for the month's usage_by_day, as percentages of the busiest day (an inline SVG, no chart library)."""
    peak = max((d["mbs_used"] for d in days), default=0)
    n = len(days) or 1
    bars = []
    for i, d in enumerate(days):
        height = (d["mbs_used"] / peak * 100) if peak else 0
        bars.append({"x": i * 100 / n, "w": 100 / n * 0.72, "h": max(height, 0.6 if d["mbs_used"] else 0),
                     "y": 100 - max(height, 0.6 if d["mbs_used"] else 0), "date": d["date"], "mb": d["mbs_used"]})
    return {"bars": bars, "peak": peak, "first": days[0]["date"] if days else "", "last": days[-1]["date"] if days else ""}


@console_view
def sim_list(request, product: str):
    found = common.product_for(request, product, "sims:list")
    g = request.GET
    filters = {"iccid": g.get("iccid", "").strip()[:22], "device_id": g.get("device_id", "").strip()[:24],
               "device_name": g.get("device_name", "").strip()[:63]}
    page_no = whole_number(g.get("page"), field="page", default=1, low=1, high=999_999, lenient=True)
    qs = sim_selectors.product_sims(product=found, **filters)
    page = paginate(qs, page=page_no, per_page=25, cap=COUNT_CAP, pk="iccid")
    usage = sim_selectors.fleet_data_usage(found)
    rights = common.rights(request, found)
    base = common.url("sims", found)
    kept = {k: v for k, v in filters.items() if v}

    def page_url(n: int) -> str:
        return f"{base}?{urlencode({**kept, **({'page': n} if n > 1 else {})})}" if kept or n > 1 else base

    return render(request, "devices/sims.html", {
        "place": common.place(request, found, "sims", ("SIM cards", None)), "product": found, "page": page,
        "filters": filters, "filtered": bool(kept), "usage": usage, "chart": _chart(usage["usage_by_day"]),
        "total_mb": Decimal(str(usage["total_mbs_used"])).quantize(Decimal("0.01")),
        "prev_url": page_url(page.page - 1) if page.page > 1 else "", "next_url": page_url(page.page + 1) if page.has_next else "",
        "here": request.get_full_path(), "state_form": SimStateForm(),
        "can": rights.as_dict("sims:update", "sims:remove"),
    })


@console_view
@require_POST
def sim_state(request, product: str, iccid: str):
    found = common.product_for(request, product, "sims:update")
    sim = sim_selectors.sim_get(principal=request.principal, iccid=iccid, action="sims:update", product=found)
    form = SimStateForm(request.POST)
    back = common.back(request, common.url("sims", found))
    if not form.is_valid():
        messages.error(request, "Choose activate, deactivate or reactivate.")
        return redirect(back)
    try:
        sim = sim_services.sim_set_state(principal=request.principal, sim=sim, action=form.cleaned_data["action"])
    except ServiceError as exc:
        messages.error(request, exc.description)
    else:
        messages.success(request, f"SIM {sim.iccid} is {sim.get_status_display().lower()}.")
    return redirect(back)


@console_view
@require_POST
def sim_release(request, product: str, iccid: str):
    found = common.product_for(request, product, "sims:remove")
    sim = sim_selectors.sim_get(principal=request.principal, iccid=iccid, action="sims:remove", product=found)
    sim_services.sim_release(principal=request.principal, sim=sim)
    messages.success(request, f"SIM {sim.iccid} was released: it left {found.name} and no longer counts.")
    return redirect(common.back(request, common.url("sims", found)))
