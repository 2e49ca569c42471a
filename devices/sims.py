"""SIM cards: import into a product, activate / deactivate / reactivate, release, and data usage.

Ownership: a SIM belongs to a product (`product`) or to a user's sandbox (`user`), never both; a released
SIM goes back to the registry (owned by nobody, inactive).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from console.errors import Conflict, Forbidden, NotFound, ValidationFailed
from console.scoping import Principal
from console.services import audit_record
from devices.identifiers import ICCID
from devices.models import Device, SimCard, SimUsage
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


def _activate(sim: SimCard, via: str) -> None:
    now = timezone.now()
    sim.status = SimCard.Status.ACTIVE
    sim.activations_count += 1
    sim.first_activated_on = sim.first_activated_on or now
    sim.last_activated_on = now
    sim.last_activated_via = via
    sim.last_status_change_action = "activate"
    sim.last_status_change_action_error = False
    sim.updated_at = now


@transaction.atomic
def sims_import(*, principal: Principal, product: Product, values: list[tuple[int, str]]) -> dict:
    """Import ICCIDs into a product (activating them); a SIM's linked device is imported too."""
    if not values:
        raise ValidationFailed("Send `sims` (a list of ICCIDs) or a file with one ICCID per line", field="sims")
    if len(values) > 50_000:
        raise ValidationFailed("At most 50,000 SIMs per import", field="sims")
    report = {"imported": [], "existing": [], "invalid": [], "rejected": []}
    wanted = {}
    for line, raw in values:
        iccid = raw.strip().upper()
        if not ICCID.fullmatch(iccid):
            report["invalid"].append(raw[:64])
            report["rejected"].append({"line": line, "value": raw[:64], "reason": "invalid",
                                       "message": "not an ICCID (89 followed by 16 to 20 digits)"})
            continue
        wanted.setdefault(iccid, line)
    found = {s.iccid: s for s in SimCard.objects.select_for_update(of=("self",)).select_related("device")
             .filter(iccid__in=list(wanted))}
    device_ids = []
    for iccid, line in wanted.items():
        sim = found.get(iccid)
        if sim is None:
            report["rejected"].append({"line": line, "value": iccid, "reason": "unknown",
                                       "message": "no SIM with this ICCID was manufactured"})
            report["invalid"].append(iccid)
            continue
        if sim.product_id == product.pk:
            report["existing"].append(iccid)
            continue
        if sim.product_id is not None or sim.user_id is not None:
            report["rejected"].append({"line": line, "value": iccid, "reason": "owned",
                                       "message": "the SIM belongs to another product or account"})
            continue
        if sim.device_id and sim.device.product_id not in (None, product.pk):
            report["rejected"].append({"line": line, "value": iccid, "reason": "owned",
                                       "message": "the SIM's device belongs to another product"})
            continue
        if sim.device_id and sim.device.platform_id != product.platform_id:
            report["rejected"].append({"line": line, "value": iccid, "reason": "wrong_platform",
                                       "message": "the SIM's device does not match the product's platform"})
            continue
        sim.product = product
        _activate(sim, "sim import")
        sim.save()
        report["imported"].append(iccid)
        if sim.device_id:
            device_ids.append(sim.device_id)
    devices_added = []
    if device_ids:
        from devices.importing import device_import  # noqa: PLC0415

        result = device_import(principal=principal, product=product, values=list(enumerate(device_ids, 1)),
                               import_sims=False)
        devices_added = result.updated_ids
    audit_record(principal=principal, action="sims.import", target=product.slug, account=product.account,
                 product_id=product.pk, data={"imported": len(report["imported"])})
    return {"ok": True, **report, "devices_imported": devices_added}


@transaction.atomic
def sim_set_state(*, principal: Principal, sim: SimCard, action: object, mb_limit: object = None) -> SimCard:
    """PUT /sims/:iccid: action=activate (sandbox; takes an unowned SIM) | deactivate | reactivate."""
    if mb_limit not in (None, ""):
        try:
            limit = int(str(mb_limit))
        except ValueError:
            raise ValidationFailed("mb_limit must be a whole number of MB", field="mb_limit")
        if not 1 <= limit <= 500:
            raise ValidationFailed("mb_limit must be between 1 and 500", field="mb_limit")
        sim.mb_limit = limit
    if action in (None, "") and mb_limit not in (None, ""):
        sim.save(update_fields=["mb_limit"])
        return sim
    now = timezone.now()
    if action == "activate":
        if sim.status == SimCard.Status.ACTIVE:
            raise Conflict("The SIM is already active", field="action")
        _activate(sim, "api")
    elif action == "deactivate":
        if sim.status != SimCard.Status.ACTIVE:
            raise Conflict("Only an active SIM can be deactivated", field="action")
        sim.status = SimCard.Status.INACTIVE
        sim.deactivations_count += 1
        sim.last_status_change_action = "deactivate"
    elif action == "reactivate":
        if sim.status != SimCard.Status.INACTIVE:
            raise Conflict("Only a deactivated SIM can be reactivated", field="action")
        _activate(sim, "api")
        sim.last_status_change_action = "reactivate"
    else:
        raise ValidationFailed("action must be activate, deactivate or reactivate", field="action")
    sim.updated_at = now
    sim.save()
    audit_record(principal=principal, action=f"sim.{action}", target=sim.iccid, product_id=sim.product_id)
    return sim


@transaction.atomic
def sim_activate_sandbox(*, principal: Principal, iccid: str) -> SimCard:
    """Sandbox activation (PUT /v1/sims/:iccid action=activate): an unowned registered SIM becomes the user's."""
    if not principal.is_user:
        raise Forbidden("Only users can activate SIMs into a sandbox")
    sim = (SimCard.objects.select_for_update(of=("self",)).select_related("device")
           .filter(iccid=(iccid or "").strip().upper()).first())
    if (sim is None or sim.user_id not in (None, principal.user.pk) or sim.product_id is not None
            or (sim.device_id and sim.device.product_id is not None)):
        raise NotFound(f"SIM {iccid} not found")  # a SIM inside a product's device is that product's
    sim.user = principal.user
    if sim.status != SimCard.Status.ACTIVE:
        _activate(sim, "api")
    sim.save()
    audit_record(principal=principal, action="sim.activate", target=sim.iccid)
    return sim


@transaction.atomic
def sim_release(*, principal: Principal, sim: SimCard) -> None:
    """Release ownership (also deactivates): the SIM returns to the registry and stops counting."""
    was_product = sim.product_id
    if sim.status == SimCard.Status.ACTIVE:
        sim.deactivations_count += 1
    sim.status = SimCard.Status.INACTIVE
    sim.product = None
    sim.user = None
    sim.last_status_change_action = "release"
    sim.updated_at = timezone.now()
    sim.save()
    audit_record(principal=principal, action="sim.release", target=sim.iccid, product_id=was_product)


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


def sim_body(sim: SimCard) -> dict:
    from console.api.serializers import iso  # noqa: PLC0415

    device: Device | None = sim.device if sim.device_id else None
    status = "inactive" if sim.status == SimCard.Status.NEVER_ACTIVATED else sim.status
    return {
        "_id": sim.iccid,
        "iccid": sim.iccid,
        "activations_count": sim.activations_count,
        "deactivations_count": sim.deactivations_count,
        "base_country_code": sim.base_country_code,
        "base_monthly_rate": 0,
        "overage_monthly_rate": 0,
        "first_activated_on": iso(sim.first_activated_on),
        "last_activated_on": iso(sim.last_activated_on),
        "last_activated_via": sim.last_activated_via or None,
        "last_status_change_action": sim.last_status_change_action or None,
        "last_status_change_action_error": "yes" if sim.last_status_change_action_error else "no",
        "mb_limit": sim.mb_limit,
        "msisdn": sim.msisdn or None,
        "status": status,
        "stripe_plan_slug": None,
        "updated_at": iso(sim.updated_at),
        "user_id": sim.user.email if sim.user_id else None,
        "product_id": str(sim.product_id) if sim.product_id else None,
        "carrier": sim.carrier,
        "last_device_id": sim.device_id,
        "last_device_name": (device.name if device else "") or sim.last_device_name or None,
        "owner": sim.user.email if sim.user_id else None,
    }
