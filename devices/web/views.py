"""Console pages of a product's fleet — the device list (with its Quarantine tab, bulk actions and CSV
export), one device, imports, groups, SIM cards, customers — and the sandbox's device list.

Included from console/web/urls.py by string (devices imports products and console, never the reverse).
Every product page resolves its product through `products.selectors.product_get(principal, ident, action)`:
another tenant's product is NotFound (404 page), a role that may not act is Forbidden (403 page). Pages
hide the controls a role cannot use; every POST checks the role again before it reads its input. Writes go
through the services in `devices/`; their refusals become form errors or flash messages.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from console.errors import Conflict, LimitExceeded, ServiceError
from console.roles import Role, at_least, min_role
from console.services import sandbox_of
from console.teams import org_team, team_entries
from console.validation import whole_number
from console.web.access import console_view, enter_account, form_error
from console.web.nav import Place, sandbox_place
from devices import customers as customer_services
from devices import importing, jobs, selectors, services, sims
from devices.api.serializers import device_body
from devices.identifiers import classify
from devices.models import DeviceTransfer, ImportJob
from devices.web import reads
from devices.web.forms import (PER_PAGE_CHOICES, BulkForm, CustomerCreateForm, CustomerPasswordForm, DeviceDevelopmentForm,
                               DeviceFirmwareForm, DeviceGroupsForm, DeviceNameForm, DeviceNotesForm, GroupForm,
                               ImportForm, SimStateForm)
from products.models import DeviceGroup, Product
from products.selectors import product_get, product_role
from products.services import product_team
from products.web.views import product_place

# --- shared ---------------------------------------------------------------------------------------------


def _product(request, ident: str, action: str) -> Product:
    product = product_get(principal=request.principal, ident=ident, action=action)
    enter_account(request, product.account)
    return product


@dataclass(frozen=True)
class Rights:
    """What the signed-in person may do on one product, from their role (one lookup per page, not one per
    control). It only decides which controls to show; each POST asks `product_get` again."""

    role: Role | None

    def may(self, action: str) -> bool:
        return at_least(self.role, min_role(action))

    def as_dict(self, *actions: str) -> dict[str, bool]:
        return {a.replace(":", "_").replace(".", "_"): self.may(a) for a in actions}


def _rights(request, product: Product) -> Rights:
    role, _ = product_role(user=request.user, product=product)
    return Rights(role)


def _place(request, product: Product, active: str, *crumbs: tuple[str, str | None]) -> Place:
    place = product_place(request, product, active)
    place.crumbs.extend(crumbs)
    return place


def _url(name: str, product: Product, *args) -> str:
    return reverse(f"console:devices:{name}", args=[product.slug, *args])


def _back(request, default: str) -> str:
    """The `next` a form carries (a page of this site), else `default`."""
    wanted = request.POST.get("next") or ""
    if wanted.startswith("/") and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return default


def _first_error(form) -> str:
    for errors in form.errors.values():
        return errors[0]
    return "Check the form and try again."


class _Echo:
    """A file-like object for csv.writer that hands each row back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _csv_response(request, rows: Iterator[list[list]], filename: str) -> StreamingHttpResponse:
    """Stream `rows` (an iterator of batches of rows) as CSV. Under ASGI the batches are produced in a worker
    thread one at a time — a plain generator would make Django buffer the whole file before sending it."""
    writer = csv.writer(_Echo())

    def chunks() -> Iterator[str]:
        for batch in rows:
            yield "".join(writer.writerow(row) for row in batch)

    if isinstance(request, ASGIRequest):
        sync_chunks = chunks()
        done = object()

        async def streamed():
            while True:
                chunk = await sync_to_async(next, thread_sensitive=True)(sync_chunks, done)
                if chunk is done:
                    return
                yield chunk

        content = streamed()
    else:
        content = chunks()
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- the product device list ------------------------------------------------------------------------------

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
        page = whole_number(g.get("page"), default=1, low=1, high=10_000_000)
        per_page = whole_number(g.get("per_page"), default=25, low=1, high=max(PER_PAGE_CHOICES))
        per_page = per_page if per_page in PER_PAGE_CHOICES else 25
        return cls(q=q, by=by, field=_search_field(q, by) if q else "", groups=groups,
                   quarantined=g.get("quarantined") in ("true", "1"), sort=sort, dir=direction, page=page,
                   per_page=per_page)

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


COLUMNS = [("name", "Name"), ("id", "Device ID"), ("firmware", "Firmware"), ("last", "Last heard")]


@console_view
def device_list(request, product: str):
    found = _product(request, product, "devices:list")
    state = ListState.from_request(request)
    query = selectors.DeviceListQuery.from_params(state.selector_params())
    page = selectors.product_device_page(product=found, query=query)
    groups = reads.product_groups(found)
    colors = {g.name: g.color for g in groups}
    base = _url("list", found)
    rows = [{"device": d, "groups": [(n, colors.get(n, "#94a3b8")) for n in page.groups.get(d.id, [])]}
            for d in page.devices]
    sorts = []
    for key, label in COLUMNS:
        current = state.sort == key
        flipped = ("asc" if state.dir == "desc" else "desc") if current else DEFAULT_DIR[key]
        sorts.append({"key": key, "label": label, "current": current, "dir": state.dir if current else "",
                      "url": state.url(base, sort=key, dir=flipped if flipped != DEFAULT_DIR[key] else "", page="")})
    quarantine_count, quarantine_more = reads.quarantine_count(found)
    rights = _rights(request, found)
    context = {
        "place": _place(request, found, "devices", ("Devices", None)),
        "product": found, "state": state, "page": page, "rows": rows, "groups": groups, "sorts": sorts,
        "base": base, "here": request.get_full_path(),
        "pages": _page_links(state, base, page.page, page.total_pages),
        "prev_url": state.url(base, page=page.page - 1 if page.page > 2 else "") if page.page > 1 else "",
        "next_url": state.url(base, page=page.page + 1) if page.page < page.total_pages else "",
        "per_page_choices": PER_PAGE_CHOICES,
        "search_fields": SEARCH_FIELDS, "search_label": SEARCH_FIELDS.get(state.field, ""),
        "search_other": [(k, v, state.url(base, by=k, page="")) for k, v in SEARCH_FIELDS.items() if k != state.field],
        "export_url": state.url(_url("export", found), page="", per_page=""),
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
    found = _product(request, product, needed)  # Forbidden (403) before anything is read
    back = _back(request, _url("list", found))
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, _first_error(form))
        return redirect(back)
    action, ids, group = form.cleaned_data["action"], form.cleaned_data["devices"], form.cleaned_data["group"]
    n = len(ids)
    devices_label = f"{n} device{'s' if n != 1 else ''}"
    try:
        if action == "add_group":
            services.devices_batch_groups(principal=request.principal, product=found, device_ids=ids, add=[group])
            messages.success(request, f"Added {devices_label} to the group {group}.")
        elif action == "remove_group":
            services.devices_batch_groups(principal=request.principal, product=found, device_ids=ids, remove=[group])
            messages.success(request, f"Removed {devices_label} from the group {group}.")
        else:
            with transaction.atomic():  # all of them or none
                for device_id in ids:
                    device = selectors.product_device_get(product=found, device_id=device_id)
                    services.device_remove(principal=request.principal, device=device)
            messages.success(request, f"Removed {devices_label} from {found.name}. Their SIM cards stay in the "
                                      f"product until you release them.")
    except ServiceError as exc:
        messages.error(request, exc.description)
    return redirect(back)


@console_view
@require_POST
def device_approve(request, product: str, device_id: str):
    """Approve a device out of quarantine: an import of that one id (Particle's POST /products/:p/devices)."""
    found = _product(request, product, "devices:import")
    device = selectors.product_device_get(product=found, device_id=device_id)
    back = _back(request, _url("list", found) + "?quarantined=true")
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
    found = _product(request, product, "devices:remove")
    device = selectors.product_device_get(product=found, device_id=device_id)
    services.device_deny(principal=request.principal, device=device)
    messages.success(request, f"Device {device.id} was denied: it cannot connect to {found.name} until you import it.")
    return redirect(_back(request, _url("list", found) + "?quarantined=true"))


EXPORT_BATCH = 1000
EXPORT_HEADER = ["id", "name", "serial_number", "groups", "owner", "firmware_version", "last_heard", "online",
                 "development"]


def _export_batches(product: Product, params: dict) -> Iterator[list[list]]:
    """The filtered list, all of it, in device-id order, 1,000 devices per query (never the whole list at once)."""
    yield [EXPORT_HEADER]
    query = selectors.DeviceListQuery.from_params(params)
    for devices, groups in selectors.product_device_batches(product=product, query=query, size=EXPORT_BATCH):
        yield [[d.id, d.name, d.serial_number or "", " ".join(groups.get(d.id, [])),
                d.owner.email if d.owner_id else (d.customer.email if d.customer_id else ""),
                "" if d.firmware_version is None else d.firmware_version,
                d.last_heard.isoformat() if d.last_heard else "", "true" if d.online else "false",
                "true" if d.development else "false"] for d in devices]


@console_view
def device_export(request, product: str):
    found = _product(request, product, "devices:list")
    params = ListState.from_request(request).selector_params()
    selectors.DeviceListQuery.from_params(params)  # a bad parameter fails here, not halfway through the file
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    suffix = "-quarantine" if params["quarantined"] else ""
    return _csv_response(request, _export_batches(found, params), f"{found.slug}-devices{suffix}-{stamp}.csv")


# --- one device ---------------------------------------------------------------------------------------------

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
        services.device_set_groups(principal=request.principal, device=device, names=form.names())
    else:
        services.device_update(principal=request.principal, device=device, data=dict(form.cleaned_data),
                               product_form=True)


SAVED = {
    "name": "Name saved.", "notes": "Notes saved.", "development": "Development setting saved.",
    "firmware": "Firmware lock saved.", "groups": "Groups saved.",
}


@console_view
def device_detail(request, product: str, device_id: str):
    found = _product(request, product, "devices:get")
    device = selectors.product_device_get(product=found, device_id=device_id)
    groups = reads.product_groups(found)
    group_names = [g.name for g in groups]
    bound = None
    status = 200
    if request.method == "POST":
        intent = request.POST.get("intent", "")
        if intent in DEVICE_VERBS:
            found = _product(request, product, DEVICE_VERBS[intent])
            label = device.name or device.id
            if intent == "unclaim":
                services.device_unclaim(principal=request.principal, device=device)
                messages.success(request, f"{label} was unclaimed: it has no owner now and stays in {found.name}.")
                return redirect(_url("detail", found, device.id))
            services.device_remove(principal=request.principal, device=device)
            messages.success(request, f"{label} was removed from {found.name}.")
            return redirect(_url("list", found))
        if intent not in DEVICE_FORMS:
            raise Http404("Unknown action")
        form_class, action = DEVICE_FORMS[intent]
        found = _product(request, product, action)  # Forbidden (403) for lower roles
        kwargs = {"group_names": group_names} if form_class is DeviceGroupsForm else {}
        form = form_class(request.POST, prefix=intent, **kwargs)
        if form.is_valid():
            try:
                _device_update(request, device, intent, form)
            except ServiceError as exc:
                form_error(form, exc, {"desired_firmware_version": "desired_firmware_version", "groups": "new_group"})
            else:
                messages.success(request, SAVED[intent])
                return redirect(_url("detail", found, device.id) + f"#{intent}")
        bound, status = (intent, form), 400
        device = selectors.product_device_get(product=found, device_id=device_id)  # the service may have set fields
    current_groups = selectors.groups_of([device.id])[device.id]
    body = device_body(device, current_groups)
    rights = _rights(request, found)
    forms = _device_forms(device, group_names, current_groups, bound)
    if not rights.may("devices:update"):
        for form in forms.values():
            for field in form.fields.values():
                field.disabled = True
    sim = selectors.sim_of(device)
    colors = {g.name: g.color for g in groups}
    return render(request, "devices/detail.html", {
        "place": _place(request, found, "devices", ("Devices", _url("list", found)), (device.name or device.id, None)),
        "product": found, "device": device, "body": body, "sim": sim,
        "sim_url": (_url("sims", found) + "?" + urlencode({"iccid": sim.iccid})) if sim and sim.product_id == found.pk else "",
        "fields": [(k, _shown(v)) for k, v in body.items()],
        "json": json.dumps(body, indent=2),
        "groups": [(n, colors.get(n, "#94a3b8")) for n in current_groups],
        "forms": forms, "history": [_history_row(e) for e in reads.device_history(found, device.id)],
        "can": rights.as_dict("devices:update", "devices:release", "devices:remove", "devices:import"),
        "open_dialog": f"{bound[0]}-dialog" if bound and bound[0] in ("name", "firmware") else "",
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


# --- import -------------------------------------------------------------------------------------------------


def _team_emails(product: Product) -> list[str]:
    """People who may own the imported devices: the product's team and, for an org product, the org's."""
    entries = team_entries(product_team(product))
    if not product.account.is_sandbox:
        entries += team_entries(org_team(product.account))
    return sorted({e["username"] for e in entries if not e.get("is_programmatic")})


@console_view
def device_import(request, product: str):
    found = _product(request, product, "devices:import")
    emails = _team_emails(found)
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, team_emails=emails)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # import_job_create refuses a bad claim_user itself, before any job exists.
                job = jobs.import_job_create(principal=request.principal, product=found, text=data["text"],
                                             import_sims=data["import_sims"], claim_user=data["claim_user"])
            except ServiceError as exc:
                form_error(form, exc, {"id": "ids"})
            else:
                return redirect(_url("import-job", found, job.pk))
        status = 400
    else:
        form = ImportForm(team_emails=emails)
    return render(request, "devices/import.html", {
        "place": _place(request, found, "devices", ("Devices", _url("list", found)), ("Import", None)),
        "product": found, "form": form, "jobs": reads.import_jobs(found), "max_lines": importing.MAX_LINES,
    }, status=status)


def _job_context(found: Product, job: ImportJob) -> dict:
    processed, total = jobs.import_job_progress(job)
    report = job.report or {}
    rejected = report.get("rejected", [])
    return {
        "product": found, "job": job, "processed": processed, "total": total,
        "percent": int(processed * 100 / total) if total else (100 if job.state == ImportJob.State.DONE else 0),
        "finished": job.state in (ImportJob.State.DONE, ImportJob.State.FAILED),
        "summary": reads.import_report_summary(report) if job.state == ImportJob.State.DONE else [],
        "rejected": rejected[:500], "rejected_count": len(rejected),
        "sims_activated": report.get("simsActivated", 0),
        "status_url": _url("import-status", found, job.pk), "report_url": _url("import-report", found, job.pk),
    }


def _job(request, product: str, job_id: int, *, with_lines: bool = False) -> tuple[Product, ImportJob]:
    found = _product(request, product, "devices:import")
    job = reads.import_job_get(found, job_id, with_lines=with_lines)
    if job is None:
        raise Http404("No such import in this product")
    return found, job


@console_view
def import_job(request, product: str, job_id: int):
    found, job = _job(request, product, job_id)
    return render(request, "devices/import_job.html", {
        "place": _place(request, found, "devices", ("Devices", _url("list", found)),
                        ("Import", _url("import", found)), (f"#{job.pk}", None)),
        **_job_context(found, job),
    })


@console_view
def import_job_status(request, product: str, job_id: int):
    """The progress box, polled every second by htmx while the job runs; the report once it is done."""
    found, job = _job(request, product, job_id)
    return render(request, "devices/_import_status.html", _job_context(found, job))


@console_view
def import_job_report(request, product: str, job_id: int):
    found, job = _job(request, product, job_id, with_lines=True)
    if job.state != ImportJob.State.DONE:
        raise Http404("The import has not finished")

    def batches() -> Iterator[list[list]]:
        yield [["line", "value", "device_id", "verdict", "reason"]]
        batch: list[list] = []
        for row in reads.import_report_lines(job):
            batch.append(list(row))
            if len(batch) == 1000:
                yield batch
                batch = []
        yield batch

    return _csv_response(request, batches(), f"{found.slug}-import-{job.pk}.csv")


# --- groups -----------------------------------------------------------------------------------------------------


def _group(found: Product, name: str) -> DeviceGroup:
    group = reads.group_get(found, name)
    if group is None:
        raise Http404("No such group")
    return group


@console_view
def group_list(request, product: str):
    found = _product(request, product, "groups:list")
    create_form = GroupForm(prefix="new")
    edit_forms: dict[str, GroupForm] = {}
    open_dialog, status = "", 200
    if request.method == "POST":
        found = _product(request, product, "groups:create")
        create_form = GroupForm(request.POST, prefix="new")
        if create_form.is_valid():
            try:
                group = services.group_create(principal=request.principal, product=found, data=create_form.cleaned_data)
            except ServiceError as exc:
                form_error(create_form, exc)
            else:
                messages.success(request, f"Group {group.name} created. Add devices to it from the device list.")
                return redirect(_url("groups", found))
        open_dialog, status = "group-new-dialog", 400
    return _groups_page(request, found, create_form, edit_forms, open_dialog, status)


def _groups_page(request, found: Product, create_form, edit_forms: dict, open_dialog: str, status: int):
    groups = reads.product_groups(found)
    rights = _rights(request, found)
    list_url = _url("list", found)
    rows = [{"group": g, "devices_url": f"{list_url}?{urlencode({'groups': g.name})}",
             "form": edit_forms.get(g.name) or GroupForm(prefix=f"g-{g.pk}", initial={
                 "name": g.name, "color": g.color, "description": g.description}),
             "edit_url": _url("group-edit", found, g.name), "delete_url": _url("group-delete", found, g.name),
             "open": open_dialog == f"group-{g.pk}-dialog"}
            for g in groups]
    return render(request, "devices/groups.html", {
        "place": _place(request, found, "groups", ("Groups", None)), "product": found, "rows": rows,
        "create_form": create_form, "open_dialog": open_dialog,
        "can": rights.as_dict("groups:create", "groups:update", "groups:remove"),
    }, status=status)


@console_view
@require_POST
def group_edit(request, product: str, name: str):
    found = _product(request, product, "groups:update")
    group = _group(found, name)
    form = GroupForm(request.POST, prefix=f"g-{group.pk}")
    if form.is_valid():
        try:
            services.group_update(principal=request.principal, group=group, data=form.cleaned_data)
        except ServiceError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Group {group.name} saved.")
            return redirect(_url("groups", found))
    return _groups_page(request, found, GroupForm(prefix="new"), {name: form}, f"group-{group.pk}-dialog", 400)


@console_view
@require_POST
def group_delete(request, product: str, name: str):
    found = _product(request, product, "groups:remove")
    group = _group(found, name)
    services.group_delete(principal=request.principal, group=group)
    messages.success(request, f"Group {name} was deleted. Its devices stay in the product.")
    return redirect(_url("groups", found))


# --- SIM cards -----------------------------------------------------------------------------------------------


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
    found = _product(request, product, "sims:list")
    g = request.GET
    filters = {"iccid": g.get("iccid", "").strip()[:22], "device_id": g.get("device_id", "").strip()[:24],
               "device_name": g.get("device_name", "").strip()[:63]}
    page_no = whole_number(g.get("page"), default=1, low=1, high=999_999)
    qs = sims.product_sims(product=found, **filters)
    page = reads.capped_page(qs, page=page_no, per_page=25, pk="iccid")
    usage = sims.fleet_data_usage(found)
    rights = _rights(request, found)
    base = _url("sims", found)
    kept = {k: v for k, v in filters.items() if v}

    def page_url(n: int) -> str:
        return f"{base}?{urlencode({**kept, **({'page': n} if n > 1 else {})})}" if kept or n > 1 else base

    return render(request, "devices/sims.html", {
        "place": _place(request, found, "sims", ("SIM cards", None)), "product": found, "page": page,
        "filters": filters, "filtered": bool(kept), "usage": usage, "chart": _chart(usage["usage_by_day"]),
        "total_mb": Decimal(str(usage["total_mbs_used"])).quantize(Decimal("0.01")),
        "prev_url": page_url(page.page - 1) if page.page > 1 else "", "next_url": page_url(page.page + 1) if page.has_next else "",
        "here": request.get_full_path(), "state_form": SimStateForm(),
        "can": rights.as_dict("sims:update", "sims:remove"),
    })


@console_view
@require_POST
def sim_state(request, product: str, iccid: str):
    found = _product(request, product, "sims:update")
    sim = sims.sim_get(principal=request.principal, iccid=iccid, action="sims:update", product=found)
    form = SimStateForm(request.POST)
    back = _back(request, _url("sims", found))
    if not form.is_valid():
        messages.error(request, "Choose activate, deactivate or reactivate.")
        return redirect(back)
    try:
        sim = sims.sim_set_state(principal=request.principal, sim=sim, action=form.cleaned_data["action"])
    except ServiceError as exc:
        messages.error(request, exc.description)
    else:
        messages.success(request, f"SIM {sim.iccid} is {sim.get_status_display().lower()}.")
    return redirect(back)


@console_view
@require_POST
def sim_release(request, product: str, iccid: str):
    found = _product(request, product, "sims:remove")
    sim = sims.sim_get(principal=request.principal, iccid=iccid, action="sims:remove", product=found)
    sims.sim_release(principal=request.principal, sim=sim)
    messages.success(request, f"SIM {sim.iccid} was released: it left {found.name} and no longer counts.")
    return redirect(_back(request, _url("sims", found)))


# --- customers ---------------------------------------------------------------------------------------------------


@console_view
def customer_list(request, product: str):
    found = _product(request, product, "customers:list")
    create_form, password_form = CustomerCreateForm(prefix="new"), None
    open_dialog, status = "", 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        action = {"create": "customers:create", "password": "customers:update", "delete": "customers:remove"}.get(intent)
        if action is None:
            raise Http404("Unknown action")
        found = _product(request, product, action)
        if intent == "create":
            create_form = CustomerCreateForm(request.POST, prefix="new")
            if create_form.is_valid():
                data = create_form.cleaned_data
                try:
                    customer, _ = customer_services.customer_create(
                        principal=request.principal, product=found, email=data["email"],
                        password=data["password"] or None, no_password=data["no_password"])
                except ServiceError as exc:
                    form_error(create_form, exc)
                else:
                    kind = "shadow customer" if data["no_password"] else "customer"
                    messages.success(request, f"{kind.capitalize()} {customer.email} created.")
                    return redirect(_url("customers", found))
            open_dialog, status = "customer-new-dialog", 400
        else:
            customer = customer_services.customer_get(product=found, email=request.POST.get("email", ""))
            if intent == "delete":
                customer_services.customer_delete(principal=request.principal, customer=customer)
                messages.success(request, f"Customer {customer.email} was deleted; their tokens no longer work and "
                                          f"their devices stay in the product, unclaimed.")
                return redirect(_url("customers", found))
            password_form = CustomerPasswordForm(request.POST)
            if password_form.is_valid():
                try:
                    customer_services.customer_set_password(principal=request.principal, customer=customer,
                                                            password=password_form.cleaned_data["password"])
                except ServiceError as exc:
                    form_error(password_form, exc)
                else:
                    messages.success(request, f"Password of {customer.email} changed.")
                    return redirect(_url("customers", found))
            open_dialog, status = f"customer-{customer.pk}-password-dialog", 400
    g = request.GET
    q = g.get("q", "").strip()[:100]
    page_no = whole_number(g.get("page"), default=1, low=1, high=999_999)
    page = reads.capped_page(reads.product_customers(found, q), page=page_no, per_page=50)
    devices = reads.customers_devices(page.rows)
    base = _url("customers", found)

    def page_url(n: int) -> str:
        params = {**({"q": q} if q else {}), **({"page": n} if n > 1 else {})}
        return f"{base}?{urlencode(params)}" if params else base

    rights = _rights(request, found)
    return render(request, "devices/customers.html", {
        "place": _place(request, found, "customers", ("Customers", None)), "product": found, "page": page, "q": q,
        "rows": [{"customer": c, "devices": devices[c.pk], "password_dialog": f"customer-{c.pk}-password-dialog",
                  "password_form": password_form if password_form is not None and open_dialog.startswith(f"customer-{c.pk}-")
                  else CustomerPasswordForm(initial={"email": c.email})} for c in page.rows],
        "create_form": create_form, "open_dialog": open_dialog,
        "prev_url": page_url(page.page - 1) if page.page > 1 else "", "next_url": page_url(page.page + 1) if page.has_next else "",
        "device_list_url": _url("list", found),
        "can": rights.as_dict("customers:create", "customers:update", "customers:remove"),
    }, status=status)


# --- the sandbox device list ------------------------------------------------------------------------------------

SANDBOX_PER_PAGE = 50


@console_view
@require_POST
def transfer_decide(request, transfer_id: int):
    """Approve or deny a request to take over one of the signed-in user's devices."""
    decision = request.POST.get("decision")
    if decision not in ("approve", "deny"):  # a malformed post decides nothing (it used to mean "deny")
        messages.error(request, "Choose Approve or Deny.")
        return redirect("console:devices:sandbox-list")
    approve = decision == "approve"
    try:
        transfer = services.device_transfer_decide(principal=request.principal, transfer_id=transfer_id,
                                                   approve=approve)
    except (Conflict, LimitExceeded) as exc:
        messages.error(request, exc.description)
    else:
        who = transfer.requested_by.email
        if transfer.state == DeviceTransfer.State.LAPSED:
            messages.error(request, f"Device {transfer.device_id} is no longer claimed to you, so the request lapsed.")
            return redirect("console:devices:sandbox-list")
        messages.success(request, f"Device {transfer.device_id} is now claimed to {who}." if approve
                         else f"You kept device {transfer.device_id}; {who} was told the request was denied.")
    return redirect("console:devices:sandbox-list")


@console_view
def sandbox_device_list(request):
    """Devices claimed to the signed-in user (seed: "Sandbox devices"), with the "Show sandbox devices only"
    checkbox and the "device list details" box."""
    sandbox = sandbox_of(request.user)
    enter_account(request, sandbox)
    only = request.GET.get("sandbox_only") in ("1", "true", "on")
    details = selectors.sandbox_device_details(user=request.user)
    total = details["total_personal_devices"] + (0 if only else details["total_claimed_product_devices"])
    page_no = whole_number(request.GET.get("page"), default=1, low=1, high=999_999)
    pages = max(1, -(-total // SANDBOX_PER_PAGE))
    offset = (page_no - 1) * SANDBOX_PER_PAGE
    devices = list(selectors.sandbox_devices(user=request.user, sandbox_only=only)[offset:offset + SANDBOX_PER_PAGE])
    visible = reads.visible_product_ids(request.principal, {d.product_id for d in devices if d.product_id})
    rows = [{"device": d, "url": reverse("console:devices:detail", args=[d.product.slug, d.id])
             if d.product_id in visible else ""} for d in devices]
    place = sandbox_place(sandbox, "devices")
    place.crumbs.append(("Devices", None))
    base = reverse("console:devices:sandbox-list")

    def page_url(n: int) -> str:
        params = {**({"sandbox_only": "1"} if only else {}), **({"page": n} if n > 1 else {})}
        return f"{base}?{urlencode(params)}" if params else base

    used, limit = details["counted_against_free_limit"], details["free_limit"]
    return render(request, "devices/sandbox_list.html", {
        "place": place, "rows": rows, "only": only, "details": details, "total": total,
        "transfers": services.transfers_for_owner(user=request.user),
        "page_no": page_no, "pages": pages, "used_percent": min(100, round(used * 100 / limit)) if limit else 0,
        "prev_url": page_url(page_no - 1) if page_no > 1 else "", "next_url": page_url(page_no + 1) if page_no < pages else "",
        "first_index": offset + 1 if rows else 0, "last_index": offset + len(rows),
    })

