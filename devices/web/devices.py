"""Console pages of a product's fleet: the device list (with its Quarantine tab, bulk actions and CSV export),
approving and denying quarantined devices, and one device's page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.validation import boolean, whole_number
from console.web.access import console_view, form_error
from devices.api.serializers import device_body
from devices.identifiers import classify
from devices.selectors import devices as device_selectors
from devices.selectors import groups as group_selectors
from devices.services import devices as device_services
from devices.services import groups as group_services
from devices.services import importing
from devices.web import common
from devices.web import remote
from devices.web.forms import (PER_PAGE_CHOICES, BulkForm, DeviceDevelopmentForm, DeviceFirmwareForm, DeviceGroupsForm,
                               DeviceNameForm, DeviceNotesForm)
from products.models import Product


SORT_KEYS = {"last": "lastConnection", "name": "deviceName", "id": "deviceId", "firmware": "firmwareVersion"}
DEFAULT_DIR = {"last": "desc", "name": "asc", "id": "asc", "firmware": "asc"}
HEXISH = re.compile(r"^[0-9a-fA-F]{4,24}$")
SEARCH_FIELDS = {"id": "device ID", "name": "name", "serial": "serial number"}


def _search_field(q: str, by: str) -> str:
    """Which selector parameter a search box value goes to: the one asked for, else a guess from its shape
    (hex with a digit: a device ID prefix; upper-case letters and digits: a serial number; else a name)."""
    if by in SEARCH_FIELDS:
        return by
    if HEXISH.match(q) and any(c.isdigit() for c in q):
        return "id"
    if classify(q)[0] == "serial" and q == q.upper() and any(c.isdigit() for c in q) and any(c.isalpha() for c in q):
        return "serial"
    return "name"


@dataclass
class ListState:
    """The device list's query string, sanitized: a bad bookmark falls back to defaults instead of an error."""

    q: str
    by: str  # "", "id", "name", "serial" as asked; `field` is the one used
    field: str
    groups: list[str]
    quarantined: bool
    sort: str
    dir: str
    page: int
    per_page: int

    @classmethod
    def from_request(cls, request) -> "ListState":
        g = request.GET
        q = g.get("q", "").strip()[:100]
        by = g.get("by", "")
        by = by if by in SEARCH_FIELDS else ""
        groups = sorted({n.strip() for raw in g.getlist("groups") for n in raw.split(",") if n.strip()})[:20]
        sort = g.get("sort", "")
        sort = sort if sort in SORT_KEYS else "last"
        direction = g.get("dir", "")
        direction = direction if direction in ("asc", "desc") else DEFAULT_DIR[sort]
        page = whole_number(g.get("page"), field="page", default=1, low=1, high=10_000_000, lenient=True)
        per_page = whole_number(g.get("per_page"), field="per_page", default=25, low=1, high=max(PER_PAGE_CHOICES),
                                lenient=True)
        per_page = per_page if per_page in PER_PAGE_CHOICES else 25
        quarantined = boolean(g.get("quarantined"), field="quarantined", default=False, lenient=True)
        return cls(q=q, by=by, field=_search_field(q, by) if q else "", groups=groups, quarantined=quarantined,
                   sort=sort, dir=direction, page=page, per_page=per_page)

    @property
    def dir_param(self) -> str:
        return self.dir if self.dir != DEFAULT_DIR[self.sort] else ""

    def selector_params(self) -> dict:
        """The same parameters Particle's API takes, for `DeviceListQuery.from_params`."""
        return {
            "deviceId": self.q if self.field == "id" else "",
            "deviceName": self.q if self.field == "name" else "",
            "serialNumber": self.q if self.field == "serial" else "",
            "groups": ",".join(self.groups), "quarantined": "true" if self.quarantined else "",
            "sortAttr": SORT_KEYS[self.sort], "sortDir": self.dir, "page": str(self.page), "perPage": str(self.per_page),
        }

    def query_string(self, **changes) -> str:
        values = {"q": self.q, "by": self.by, "groups": self.groups, "quarantined": "true" if self.quarantined else "",
                  "sort": self.sort if self.sort != "last" else "", "dir": self.dir if self.dir != DEFAULT_DIR[self.sort] else "",
                  "per_page": self.per_page if self.per_page != 25 else "", "page": self.page if self.page > 1 else ""}
        values.update(changes)
        if "sort" in changes and "dir" not in changes:
            values["dir"] = ""
        pairs = []
        for key, value in values.items():
            for v in (value if isinstance(value, list) else [value]):
                if v not in ("", None):
                    pairs.append((key, v))
        return urlencode(pairs)

    def url(self, base: str, **changes) -> str:
        qs = self.query_string(**changes)
        return f"{base}?{qs}" if qs else base


def _page_links(state: ListState, base: str, page: int, total_pages: int) -> list[dict]:
    """Page numbers around the current one, with the first and last and gaps between."""
    if total_pages <= 1:
        return []
    shown = sorted({1, total_pages, *range(max(1, page - 2), min(total_pages, page + 2) + 1)})
    out, previous = [], 0
    for n in shown:
        if n - previous > 1:
            out.append({"gap": True})
        out.append({"n": n, "url": state.url(base, page=n if n > 1 else ""), "current": n == page})
        previous = n
    return out


def _list_row(device, url: str, groups: list[tuple[str, str]]) -> dict:
    """A list row's values, formatted here once rather than through template filters (25 rows a page, each
    filter ~20 µs in the template engine): the name shown, the last contact (common.heard), the first three
    group chips and the rest."""
    return {"device": device, "url": url, "label": device.name or "Unnamed", "heard": common.heard(device),
            "groups": groups, "chips": groups[:3], "more": len(groups) - 3,
            "all_groups": ", ".join(n for n, _ in groups)}


COLUMNS = [("name", "Name"), ("id", "Device ID"), ("firmware", "Firmware"), ("last", "Last heard")]
# What a row of devices/_results.html reads of a device; any other field would cost a query per row.
LIST_FIELDS = ("id", "name", "online", "development", "serial_number", "last_ip_address", "firmware_version",
               "desired_firmware_version", "last_heard", "owner__email", "customer__email")


@console_view
def device_list(request, product: str):
    found = common.product_for(request, product, "devices:list")
    state = ListState.from_request(request)
    query = device_selectors.DeviceListQuery.from_params(state.selector_params())
    page = device_selectors.product_device_page(product=found, query=query, shown=LIST_FIELDS)
    groups = group_selectors.product_groups(found)
    colors = {g.name: g.color for g in groups}
    base = common.url("list", found)
    detail = common.detail_urls(found.slug)  # a row links its detail page three times
    rows = [_list_row(d, detail(d.id), [(n, colors.get(n, "#94a3b8")) for n in page.groups.get(d.id, [])])
            for d in page.devices]
    sorts = []
    for key, label in COLUMNS:
        current = state.sort == key
        flipped = ("asc" if state.dir == "desc" else "desc") if current else DEFAULT_DIR[key]
        sorts.append({"key": key, "label": label, "current": current, "dir": state.dir if current else "",
                      "url": state.url(base, sort=key, dir=flipped if flipped != DEFAULT_DIR[key] else "", page="")})
    quarantine_count, quarantine_more = device_selectors.quarantine_count(found)
    rights = common.rights(request, found)
    context = {
        "place": common.place(request, found, "devices", ("Devices", None)),
        "product": found, "state": state, "page": page, "rows": rows, "groups": groups, "sorts": sorts,
        "base": base, "here": request.get_full_path(),
        "pages": _page_links(state, base, page.page, page.total_pages),
        "prev_url": state.url(base, page=page.page - 1 if page.page > 2 else "") if page.page > 1 else "",
        "next_url": state.url(base, page=page.page + 1) if page.page < page.total_pages else "",
        "per_page_choices": PER_PAGE_CHOICES,
        "search_fields": SEARCH_FIELDS, "search_label": SEARCH_FIELDS.get(state.field, ""),
        "search_other": [(k, v, state.url(base, by=k, page="")) for k, v in SEARCH_FIELDS.items() if k != state.field],
        "export_url": state.url(common.url("export", found), page="", per_page=""),
        "tab_devices_url": state.url(base, quarantined="", page=""),
        "tab_quarantine_url": state.url(base, quarantined="true", page=""),
        "quarantine_count": quarantine_count, "quarantine_more": quarantine_more,
        "group_chips": [(n, colors.get(n, "#94a3b8"), state.url(base, groups=[x for x in state.groups if x != n], page=""))
                        for n in state.groups],
        "clear_url": state.url(base, q="", by="", groups=[], page=""),
        "first_index": (page.page - 1) * page.per_page + 1, "last_index": (page.page - 1) * page.per_page + len(rows),
        "can": rights.as_dict("devices:update", "devices:import", "devices:remove"),
        "show_toolbar": bool(found.device_count or state.quarantined or state.q or state.groups or page.devices),
        "selectable": not state.quarantined and (rights.may("devices:update") or rights.may("devices:remove")),
    }
    if request.htmx and request.htmx.target == "device-results":
        return render(request, "devices/_results.html", context)
    return render(request, "devices/list.html", context)


@console_view
@require_POST
def device_bulk(request, product: str):
    """The ticked rows: add to or remove from a group (devices_batch_groups), or remove from the product."""
    needed = "devices:remove" if request.POST.get("action") == "remove" else "devices:update"
    found = common.product_for(request, product, needed)  # Forbidden (403) before anything is read
    back = common.back(request, common.url("list", found))
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, common.first_error(form))
        return redirect(back)
    action, ids, group = form.cleaned_data["action"], form.cleaned_data["devices"], form.cleaned_data["group"]
    n = len(ids)
    devices_label = f"{n} device{'s' if n != 1 else ''}"
    try:
        if action == "add_group":
            group_services.devices_batch_groups(principal=request.principal, product=found, device_ids=ids, add=[group])
            messages.success(request, f"Added {devices_label} to the group {group}.")
        elif action == "remove_group":
            group_services.devices_batch_groups(principal=request.principal, product=found, device_ids=ids, remove=[group])
            messages.success(request, f"Removed {devices_label} from the group {group}.")
        else:
            device_services.devices_remove(principal=request.principal, product=found, device_ids=ids)
            messages.success(request, f"Removed {devices_label} from {found.name}. Their SIM cards stay in the "
                                      f"product until you release them.")
    except ServiceError as exc:
        messages.error(request, exc.description)
    return redirect(back)


@console_view
@require_POST
def device_approve(request, product: str, device_id: str):
    """Approve a device out of quarantine: an import of that one id (Particle's POST /products/:p/devices)."""
    found = common.product_for(request, product, "devices:import")
    device = device_selectors.product_device_get(product=found, device_id=device_id)
    back = common.back(request, common.url("list", found) + "?quarantined=true")
    try:
        report = importing.device_import(principal=request.principal, product=found, values=[(1, device.id)])
    except ServiceError as exc:
        messages.error(request, exc.description)
        return redirect(back)
    if device.id in report.updated_ids:
        messages.success(request, f"Device {device.name or device.id} was approved and joined {found.name}.")
    elif device.id in report.existing_ids:
        messages.info(request, f"Device {device.name or device.id} is already in {found.name}.")
    else:
        reason = report.rejected[0]["message"] if report.rejected else "it could not be approved"
        messages.error(request, f"Device {device.id} was not approved: {reason}.")
    return redirect(back)


@console_view
@require_POST
def device_deny(request, product: str, device_id: str):
    found = common.product_for(request, product, "devices:remove")
    device = device_selectors.product_device_get(product=found, device_id=device_id)
    device_services.device_deny(principal=request.principal, device=device)
    messages.success(request, f"Device {device.id} was denied: it cannot connect to {found.name} until you import it.")
    return redirect(common.back(request, common.url("list", found) + "?quarantined=true"))


EXPORT_BATCH = 1000
EXPORT_HEADER = ["id", "name", "serial_number", "groups", "owner", "firmware_version", "last_heard", "online",
                 "development"]


def _export_batches(product: Product, params: dict) -> Iterator[list[list]]:
    """The filtered list, all of it, in device-id order, 1,000 devices per query (never the whole list at once)."""
    yield [EXPORT_HEADER]
    query = device_selectors.DeviceListQuery.from_params(params)
    for devices in device_selectors.product_device_batches(product=product, query=query, size=EXPORT_BATCH):
        yield [[d.id, d.name, d.serial_number or "", " ".join(d.groups),
                d.owner_email or d.customer_email or "",
                "" if d.firmware_version is None else d.firmware_version,
                d.last_heard, "true" if d.online else "false",
                "true" if d.development else "false"] for d in devices]


@console_view
def device_export(request, product: str):
    found = common.product_for(request, product, "devices:list")
    params = ListState.from_request(request).selector_params()
    device_selectors.DeviceListQuery.from_params(params)  # a bad parameter fails here, not halfway through the file
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    suffix = "-quarantine" if params["quarantined"] else ""
    return common.csv_response(request, _export_batches(found, params), f"{found.slug}-devices{suffix}-{stamp}.csv")


DEVICE_FORMS: dict[str, tuple[type, str]] = {
    # intent: (form, action it needs)
    "name": (DeviceNameForm, "devices:update"),
    "notes": (DeviceNotesForm, "devices:update"),
    "development": (DeviceDevelopmentForm, "devices:update"),
    "firmware": (DeviceFirmwareForm, "devices:update"),
    "groups": (DeviceGroupsForm, "devices:update"),
}
DEVICE_VERBS = {"unclaim": "devices:release", "remove": "devices:remove"}


def _device_forms(device, group_names: list[str], current_groups: list[str], bound: tuple[str, object] | None) -> dict:
    initial = {
        "name": {"name": device.name}, "notes": {"notes": device.notes},
        "development": {"development": device.development},
        "firmware": {"desired_firmware_version": device.desired_firmware_version},
        "groups": {"groups": current_groups},
    }
    forms = {}
    for intent, (form_class, _) in DEVICE_FORMS.items():
        if bound and bound[0] == intent:
            forms[intent] = bound[1]
            continue
        kwargs = {"group_names": group_names} if form_class is DeviceGroupsForm else {}
        forms[intent] = form_class(initial=initial[intent], prefix=intent, **kwargs)
    return forms


def _device_update(request, device, intent: str, form) -> None:
    if intent == "groups":
        group_services.device_set_groups(principal=request.principal, device=device, names=form.names())
    else:
        device_services.device_update(principal=request.principal, device=device, product_form=True,
                                      **form.cleaned_data)


SAVED = {
    "name": "Name saved.", "notes": "Notes saved.", "development": "Development setting saved.",
    "firmware": "Firmware lock saved.", "groups": "Groups saved.",
}


@console_view
def device_detail(request, product: str, device_id: str):
    found = common.product_for(request, product, "devices:get")
    device = device_selectors.product_device_get(product=found, device_id=device_id)
    groups = group_selectors.product_groups(found)
    group_names = [g.name for g in groups]
    bound = None
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent", "")
        if intent in DEVICE_VERBS:
            found = common.product_for(request, product, DEVICE_VERBS[intent])
            label = device.name or device.id
            if intent == "unclaim":
                device_services.device_unclaim(principal=request.principal, device=device)
                messages.success(request, f"{label} was unclaimed: it has no owner now and stays in {found.name}.")
                return redirect(common.url("detail", found, device.id))
            device_services.device_remove(principal=request.principal, device=device)
            messages.success(request, f"{label} was removed from {found.name}.")
            return redirect(common.url("list", found))
        if intent not in DEVICE_FORMS:
            raise Http404("Unknown action")
        form_class, action = DEVICE_FORMS[intent]
        found = common.product_for(request, product, action)  # Forbidden (403) for lower roles
        kwargs = {"group_names": group_names} if form_class is DeviceGroupsForm else {}
        form = form_class(request.POST, prefix=intent, **kwargs)
        if form.is_valid():
            try:
                _device_update(request, device, intent, form)
            except ServiceError as exc:
                form_error(form, exc, {"desired_firmware_version": "desired_firmware_version", "groups": "new_group"})
            else:
                messages.success(request, SAVED[intent])
                return redirect(common.url("detail", found, device.id) + f"#{intent}")
        bound, status = (intent, form), 400
        device = device_selectors.product_device_get(product=found, device_id=device_id)  # the service may have set fields
    current_groups = group_selectors.groups_of([device.id])[device.id]
    body = device_body(device, current_groups)
    rights = common.rights(request, found)
    forms = _device_forms(device, group_names, current_groups, bound)
    if not rights.may("devices:update"):
        for form in forms.values():
            for field in form.fields.values():
                field.disabled = True
    sim = device_selectors.sim_of(device)
    colors = {g.name: g.color for g in groups}
    return render(request, "devices/detail.html", {
        "place": common.place(request, found, "devices", ("Devices", common.url("list", found)), (device.name or device.id, None)),
        "product": found, "device": device, "body": body, "sim": sim,
        "sim_url": (common.url("sims", found) + "?" + urlencode({"iccid": sim.iccid})) if sim and sim.product_id == found.pk else "",
        "fields": [(k, _shown(v)) for k, v in body.items()],
        "json": json.dumps(body, indent=2),
        "groups": [(n, colors.get(n, "#94a3b8")) for n in current_groups],
        "forms": forms, "history": [_history_row(e) for e in device_selectors.device_history(found, device.id)],
        "can": rights.as_dict("devices:update", "devices:release", "devices:remove", "devices:import"),
        "open_dialog": f"{bound[0]}-dialog" if bound and bound[0] in ("name", "firmware") else "",
        **remote.panel_context(request, found, device),
    }, status=status)


def _history_row(entry) -> dict:
    parts = []
    for key, value in (entry.data or {}).items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {shown or '—'}")
    return {"created_at": entry.created_at, "action": entry.action, "actor_label": entry.actor_label,
            "details": " · ".join(parts)}


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value) if value else ("[]" if isinstance(value, list) else "{}")
    return str(value)
