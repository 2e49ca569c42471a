"""Writes for SIM cards: import into a product, activate / deactivate / reactivate, release.

Ownership: a SIM belongs to a product (`product`) or to a user's sandbox (`user`), never both; a released
SIM goes back to the registry (owned by nobody, inactive).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from console.errors import Conflict, Forbidden, NotFound, ValidationFailed
from console.scoping import Principal
from console.services.audit import audit_record
from console.validation import UNSET, given
from devices.identifiers import ICCID
from devices.models import SimCard
from devices.selectors.sims import unscoped_sim_for_activation
from devices.services.importing import device_import
from products.models import Product
from products.selectors import product_team_user_ids

MB_LIMIT_RANGE = (1, 500)
SIM_ACTIONS = ("activate", "deactivate", "reactivate")


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
    team = set(product_team_user_ids(product))
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
        if sim.device_id and sim.device.owner_id is not None and sim.device.owner_id not in team:
            report["rejected"].append({"line": line, "value": iccid, "reason": "claimed",
                                       "message": "the SIM's device is claimed by someone outside this product's team"})
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
        result = device_import(principal=principal, product=product, values=list(enumerate(device_ids, 1)),
                               import_sims=False)
        devices_added = result.updated_ids
    audit_record(principal=principal, action="sims.import", target=product.slug, account=product.account,
                 product_id=product.pk, data={"imported": len(report["imported"])})
    return {"ok": True, **report, "devices_imported": devices_added}


@transaction.atomic
def sim_set_state(*, principal: Principal, sim: SimCard, action: str | None = None,
                  mb_limit: int | None = UNSET) -> SimCard:
    """PUT /sims/:iccid: action=activate (sandbox; takes an unowned SIM) | deactivate | reactivate, and/or
    the monthly data limit."""
    if given(mb_limit) and mb_limit is not None:
        low, high = MB_LIMIT_RANGE
        if not low <= mb_limit <= high:
            raise ValidationFailed(f"mb_limit must be between {low} and {high}", field="mb_limit")
        sim.mb_limit = mb_limit
        if not action:
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
    sim = unscoped_sim_for_activation(iccid)
    if (sim is None or sim.user_id not in (None, principal.user.pk) or sim.product_id is not None
            or (sim.device_id and sim.device.product_id is not None)
            or (sim.device_id and sim.device.owner_id not in (None, principal.user.pk))):
        # A SIM inside a product's device is that product's; inside a device claimed by someone else, theirs.
        raise NotFound(f"SIM {iccid} not found")
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


