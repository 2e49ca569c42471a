"""Reads for devices: one device (by id or name, through the caller's scope), the product fleet list, the
sandbox list, a device's history. Product lists start from a product already resolved through
`product_get` (so the caller's access is settled) and run a fixed number of queries whatever the page."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Count, F, Q, QuerySet

from console import validation
from console.counters import count_hit
from console.errors import Forbidden, LockedOut, NotFound, ValidationFailed
from console.models import AuditEntry, User
from console.pagination import Page
from console.prepared import Prepared
from console.scoping import Principal
from devices.identifiers import is_device_id
from devices.models import Device, DeviceGroupMembership, DeviceRights, SimCard
from devices.selectors.groups import groups_of
from devices.selectors.limits import FREE_DEVICE_LIMIT, sandbox_device_count
from products.models import DeviceGroup, Platform, Product
from products.selectors import product_check, product_get

EXACT_COUNT_CAP = 10_000  # past this many matches a filtered total is estimated, not counted
SERIAL_LOOKUPS_PER_HOUR = 50

SORTS = {
    # sortAttr: (descending order, ascending order) — each a forward or backward scan of one index.
    "lastConnection": ((F("last_heard").desc(nulls_last=True), F("id").asc()),
                       (F("last_heard").asc(nulls_first=True), F("id").desc())),
    "deviceName": ((F("name").desc(), F("id").desc()), (F("name").asc(), F("id").asc())),
    "deviceId": ((F("id").desc(),), (F("id").asc(),)),
    "firmwareVersion": ((F("firmware_version").desc(nulls_first=True), F("id").desc()),
                        (F("firmware_version").asc(nulls_last=True), F("id").asc())),
}


@dataclass
class DeviceListQuery:
    page: int = 1
    per_page: int = validation.DEFAULT_PER_PAGE
    sort: str = "lastConnection"
    descending: bool = True
    device_id: str = ""
    name: str = ""
    serial: str = ""
    groups: list[str] = field(default_factory=list)
    quarantined: bool = False

    @classmethod
    def from_params(cls, params) -> "DeviceListQuery":
        page, per_page = validation.page_params(params)
        sort = params.get("sortAttr") or "lastConnection"
        if sort not in SORTS:
            raise ValidationFailed(f"sortAttr must be one of {', '.join(SORTS)}", field="sortAttr")
        direction = (params.get("sortDir") or ("desc" if sort == "lastConnection" else "asc")).lower()
        if direction not in ("asc", "desc"):
            raise ValidationFailed("sortDir must be asc or desc", field="sortDir")
        groups = params.get("groups") or ""
        if isinstance(groups, list):
            groups = ",".join(groups)
        quarantined = validation.boolean(params.get("quarantined"), field="quarantined", default=False)
        return cls(page=page, per_page=per_page, sort=sort, descending=direction == "desc",
                   device_id=(params.get("deviceId") or "").strip().lower(),
                   name=(params.get("deviceName") or "").strip(), serial=(params.get("serialNumber") or "").strip(),
                   groups=sorted({g.strip() for g in groups.split(",") if g.strip()}), quarantined=quarantined)

    @property
    def filtered(self) -> bool:
        return bool(self.device_id or self.name or self.serial or self.groups)


@dataclass
class DevicePage(Page):
    """A page of the fleet list: the devices (`rows`) and the groups of each, by device id."""

    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def devices(self) -> list[Device]:
        return self.rows


def _filtered(product: Product, q: DeviceListQuery) -> tuple[QuerySet[Device], list[DeviceGroup] | None]:
    qs = Device.objects.filter(product=product)
    qs = qs.filter(quarantined=True) if q.quarantined else qs.filter(quarantined=False, denied=False)
    # deviceId and serialNumber match by prefix (btree pattern indexes); deviceName anywhere (trigram index).
    if q.device_id:
        qs = qs.filter(id=q.device_id) if len(q.device_id) == 24 else qs.filter(id__startswith=q.device_id)
    if q.name:
        # `name <> ''` lets PostgreSQL use the trigram index, which holds named devices only.
        qs = qs.filter(name__icontains=q.name).exclude(name="")
    if q.serial:
        qs = qs.filter(serial_entry__serial__startswith=q.serial.upper())
    groups = None
    if q.groups:
        groups = list(DeviceGroup.objects.filter(product=product, name__in=q.groups))
        qs = qs.filter(id__in=DeviceGroupMembership.objects.filter(group__in=groups).values("device_id"))
    return qs, groups


def _estimate(qs: QuerySet) -> int:
    """The planner's row estimate for `qs` (PostgreSQL), used only past EXACT_COUNT_CAP."""
    sql, params = qs.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _total(product: Product, q: DeviceListQuery, qs: QuerySet, groups: list[DeviceGroup] | None) -> tuple[int, bool]:
    if not q.quarantined and not q.filtered:
        return product.device_count, False
    if groups is not None and len(groups) == 1 and not (q.device_id or q.name or q.serial):
        return groups[0].device_count, False
    capped = qs.order_by().values("id")[:EXACT_COUNT_CAP + 1].count()
    if capped <= EXACT_COUNT_CAP:
        return capped, False
    if connection.vendor == "postgresql":
        return max(_estimate(qs), capped), True
    return qs.count(), False


def product_device_page(*, product: Product, query: DeviceListQuery) -> DevicePage:
    """One page of a product's device list, in two to four device queries whatever the page: the rows, their
    groups, and (for a filtered list that fills its page) the total. Deep pages and group filters walk the
    index for the ids first (a deferred join) and then load just those rows."""
    qs, groups = _filtered(product, query)
    order = SORTS[query.sort][0 if query.descending else 1]
    offset = (query.page - 1) * query.per_page
    related = ("owner", "customer", "platform", "sim")
    if offset == 0 and not query.groups:
        # The group filter is a semi-join checked per index entry: walking ids index-only first (below) is
        # then cheaper than fetching every candidate row it passes over.
        devices = list(qs.order_by(*order).select_related(*related)[:query.per_page])
        ids = [d.id for d in devices]
    else:
        ids = list(qs.order_by(*order).values_list("id", flat=True)[offset:offset + query.per_page])
        rows = {d.id: d for d in Device.objects.filter(id__in=ids).select_related(*related)}
        devices = [rows[i] for i in ids if i in rows]
    if query.filtered and 0 < len(ids) < query.per_page or offset == 0 and not ids:
        total, estimated = offset + len(ids), False  # the page is the last one: no need to count
    else:
        total, estimated = _total(product, query, qs, groups)
    return DevicePage(rows=devices, total=total, estimated=estimated, page=query.page, per_page=query.per_page,
                      groups=groups_of(ids))


def product_device_batches(*, product: Product, query: DeviceListQuery, size: int = 1000):
    """Every device of the filtered list, in id order, `size` at a time: keyset paging (id > last), so an
    export of a million devices reads each index entry once instead of re-walking an OFFSET per page."""
    qs, _groups = _filtered(product, query)
    last = ""
    while True:
        ids = list(qs.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:size])
        if not ids:
            return
        rows = {d.id: d for d in Device.objects.filter(id__in=ids).select_related("owner", "customer", "platform")}
        groups = groups_of(ids)
        yield [rows[i] for i in ids if i in rows], groups
        if len(ids) < size:
            return
        last = ids[-1]


DEVICE_RELATED = ("owner", "customer", "platform", "product", "product__account", "sim")


@functools.cache
def _device_by_id(related: tuple[str, ...], product: bool) -> Prepared:
    """A device by id, with these relations, within a product or not: compiled once per shape
    (console/prepared.py), because every call, variable read and device page starts with it."""
    if product:
        return Prepared(lambda p: Device.objects.select_related(*related)
                        .filter(product_id=p.integer("product"), pk=p.text("id")))
    return Prepared(lambda p: Device.objects.select_related(*related).filter(pk=p.text("id")))


def device_get(*, principal: Principal, device_id: str, action: str, related: tuple[str, ...] = DEVICE_RELATED
               ) -> Device:
    """A device by id (or name) through the dev form: 404 unless the caller may see it, 403 unless it may
    `action` it. `related` are the relations loaded with it; the product and its account always are (the
    rights need them). A hot path that reads none of the others (a function call) passes fewer."""
    ident = (device_id or "").strip()
    related = tuple(sorted({*related, "product", "product__account"}))
    # Particle accepts a device's name wherever its id goes (api-js: "Device ID or Name"). Names are not
    # unique across tenants, so a name is looked up within what the caller may see; an id is one row, and
    # DeviceRights (restrict()'s twin for a device in hand) decides 404, 403 or the device.
    if is_device_id(ident):
        device = _device_by_id(related, False).first(id=ident.lower())
    else:
        device = (Device.objects.restrict(principal).select_related(*related).filter(name=ident).order_by("id")
                  .first())
    rights = DeviceRights(principal, device) if device is not None else None
    if rights is None or not rights.may():
        raise NotFound(f"Device {device_id} not found")
    if not rights.may(action):
        raise Forbidden("Your access to this device does not allow this action")
    return device


def _serial_lookup_bucket(principal: Principal) -> str:
    caller = principal.customer_id if principal.kind == "customer" else (
        principal.user.pk if principal.user else principal.product_id)
    return f"serial-lookups:{principal.kind}:{caller}"


def device_by_serial(*, principal: Principal, serial: str) -> Device:
    """GET /v1/serial_numbers/:sn: the device behind a serial number, if the caller may read it (else 404).
    Each caller may look up 50 serials an hour (particle-api.md "Numbers"): serials are guessable."""
    if count_hit(_serial_lookup_bucket(principal), 3600) > SERIAL_LOOKUPS_PER_HOUR:
        raise LockedOut(f"At most {SERIAL_LOOKUPS_PER_HOUR} serial number lookups per hour", code="rate_limited",
                        retry_after=3600)
    device = (Device.objects.restrict(principal, "devices:get").select_related("sim")
              .filter(serial_entry__serial=(serial or "").strip().upper()).first())
    if device is None:
        raise NotFound(f"No device with serial number {serial}")
    return device


def product_device_get(*, product: Product, device_id: str, include_denied: bool = True,
                       related: tuple[str, ...] = ("owner", "customer", "platform", "sim")) -> Device:
    """A device of `product` (already found through the caller's scope) by id or name, else 404."""
    ident = (device_id or "").strip()
    if is_device_id(ident):
        device = _device_by_id(tuple(sorted(related)), True).first(product=product.pk, id=ident.lower())
        if device is not None and device.denied and not include_denied:
            device = None
    else:
        qs = Device.objects.filter(product=product, name=ident).order_by("id")
        if not include_denied:
            qs = qs.filter(denied=False)
        device = qs.select_related(*related).first()
    if device is None:
        raise NotFound(f"Device {device_id} not found in this product")
    device.product = product  # the caller's product, already found through its scope: no second join
    return device


@functools.cache
def _product_device_by_id(related: tuple[str, ...], product_by: str) -> Prepared:
    related = ("product", "product__account", "product__account__owner", "product__platform", *related)
    if product_by == "pk":
        return Prepared(lambda p: Device.objects.select_related(*related)
                        .filter(product_id=p.integer("product"), pk=p.text("id")))
    return Prepared(lambda p: Device.objects.select_related(*related)
                    .filter(product__slug=p.text("product"), pk=p.text("id")))


def product_and_device_get(*, principal: Principal, product: str | int, device_id: str, action: str,
                           related: tuple[str, ...] = ("owner", "customer", "platform", "sim")) -> Device:
    """`product_get` then `product_device_get`, answered by one query when `device_id` is an id and the
    device is in that product: the device comes with its product, and `product_check` gives the verdict
    product_get would. Anything else (a name, a miss) takes the two steps, so every error is theirs."""
    lookup = validation.ident(product)
    ident = (device_id or "").strip()
    if lookup is not None and is_device_id(ident):
        (field, value), = lookup.items()
        device = _product_device_by_id(tuple(sorted(related)), field).first(product=value, id=ident.lower())
        if device is not None:
            product_check(principal=principal, product=device.product, ident=product, action=action)
            return device
    found = product_get(principal=principal, ident=product, action=action)
    return product_device_get(product=found, device_id=device_id, related=related)


def sandbox_devices(*, user: User, sandbox_only: bool = False) -> QuerySet[Device]:
    """GET /v1/devices for a user: every device claimed to them, newest contact first (product devices too,
    unless `sandbox_only`)."""
    qs = Device.objects.filter(owner=user)
    if sandbox_only:
        qs = qs.filter(product__isnull=True)
    return qs.select_related("owner", "customer", "platform", "product", "sim").order_by(
        F("last_handshake_at").desc(nulls_last=True), "id")


def sandbox_device_details(*, user: User) -> dict:
    """The seed's "device list details": personal devices vs claimed product devices."""
    personal = Device.objects.filter(owner=user, product__isnull=True).count()
    in_products = Device.objects.filter(owner=user, product__isnull=False).count()
    return {"total_personal_devices": personal, "total_claimed_product_devices": in_products,
            "counted_against_free_limit": sandbox_device_count(user), "free_limit": FREE_DEVICE_LIMIT}


def sim_of(device: Device) -> SimCard | None:
    try:
        return device.sim
    except SimCard.DoesNotExist:
        return None


def unscoped_device_for_claim(device_id: str) -> Device | None:
    """Any registered device, locked: claiming must find unclaimed registry devices nobody can see yet. The
    claim service decides what the caller learns about it."""
    return (Device.objects.select_for_update(of=("self",)).select_related("product", "product__account")
            .filter(pk=device_id).first())


def quarantine_count(product: Product, cap: int = 1000) -> tuple[int, bool]:
    """How many devices wait in quarantine, counted up to `cap` over the partial index dev_prod_quar."""
    n = Device.objects.filter(product=product, quarantined=True).values("id")[:cap + 1].count()
    return min(n, cap), n > cap


def device_history(product: Product, device_id: str, limit: int = 50) -> list[AuditEntry]:
    """The audit trail of one device in this product, newest first."""
    return list(AuditEntry.objects.filter(target=device_id, product_id=product.pk).order_by("-created_at", "-pk")[:limit])


def user_device_counts(user: User) -> tuple[int, int]:
    """(Wi-Fi, cellular) devices claimed to `user` (`GET /v1/user`)."""
    counts = Device.objects.filter(owner=user).aggregate(
        wifi=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.WIFI)),
        cellular=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.CELLULAR)))
    return counts["wifi"], counts["cellular"]
