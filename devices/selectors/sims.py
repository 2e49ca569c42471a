"""Reads for SIM cards: which SIMs a caller may reach, one SIM, a product's list, and data usage."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from console.errors import Forbidden, NotFound
from console.scoping import Principal
from devices.models import SimCard, SimUsage
from products.models import Product


def sims_visible(principal: Principal, action: str | None) -> QuerySet[SimCard]:
    """SIMs of the products the caller may `action`, plus (users) their sandbox SIMs."""
    q = Q(product__in=Product.objects.restrict(principal, action))
    if principal.is_user and principal.user is not None:
        q |= Q(user=principal.user)
    return SimCard.objects.filter(q)


def sim_get(*, principal: Principal, iccid: str, action: str, product: Product | None = None) -> SimCard:
    """A SIM of `product`, or (dev form) one the caller can see: 404 if not, 403 if it may not `action` it."""
    code = (iccid or "").strip().upper()
    qs = SimCard.objects.filter(product=product) if product is not None else sims_visible(principal, None)
    sim = qs.select_related("device", "product", "user").filter(iccid=code).first()
    if sim is None:
        raise NotFound(f"SIM {iccid} not found")
    if product is None and not sims_visible(principal, action).filter(iccid=code).exists():
        raise Forbidden("Your access to this SIM does not allow this action")
    return sim


def product_sims(*, product: Product, iccid: str = "", device_id: str = "", device_name: str = "") -> QuerySet[SimCard]:
    qs = SimCard.objects.filter(product=product).select_related("device")
    if iccid:
        qs = qs.filter(iccid__icontains=iccid.strip())
    if device_id:
        qs = qs.filter(device__id__icontains=device_id.strip().lower())
    if device_name:
        qs = qs.filter(device__name__icontains=device_name.strip())
    return qs.order_by("iccid")


def usage_by_day(usage_rows, start: date, end: date) -> list[dict]:
    per_day = {}
    for day, mbs in usage_rows:
        per_day[day] = per_day.get(day, Decimal(0)) + (mbs or Decimal(0))
    out, cumulative, day = [], Decimal(0), start
    while day <= end:
        used = per_day.get(day, Decimal(0))
        cumulative += used
        out.append({"date": day.isoformat(), "mbs_used": float(used), "mbs_used_cumulative": float(cumulative)})
        day += timedelta(days=1)
    return out


def _period() -> tuple[date, date]:
    today = timezone.now().date()
    return today.replace(day=1), today


def sim_data_usage(sim: SimCard) -> dict:
    start, end = _period()
    rows = SimUsage.objects.filter(sim=sim, date__range=(start, end)).values_list("date", "mbs_used")
    return {"iccid": sim.iccid, "usage_by_day": usage_by_day(rows, start, end)}


def fleet_data_usage(product: Product) -> dict:
    start, end = _period()
    rows = (SimUsage.objects.filter(sim__product=product, date__range=(start, end))
            .values("date").annotate(total=Sum("mbs_used")).values_list("date", "total"))
    days = usage_by_day(rows, start, end)
    return {"total_mbs_used": days[-1]["mbs_used_cumulative"] if days else 0.0,
            "total_active_sim_cards": SimCard.objects.filter(product=product, status=SimCard.Status.ACTIVE).count(),
            "usage_by_day": days}


def unscoped_sim_for_activation(iccid: str) -> SimCard | None:
    """Any registered SIM by ICCID, locked: activating a SIM into a sandbox must find registry SIMs nobody
    owns yet. The activation service decides what the caller learns about it."""
    return (SimCard.objects.select_for_update(of=("self",)).select_related("device")
            .filter(iccid=(iccid or "").strip().upper()).first())
