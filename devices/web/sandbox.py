"""Console page of the sandbox's devices (the devices claimed to the signed-in user) and the transfer
requests made to them."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import validation
from console.errors import Conflict, LimitExceeded
from console.web.access import console_view, enter_account, own_sandbox
from console.web.nav import sandbox_place
from devices.models import DeviceTransfer
from devices.selectors import devices as device_selectors
from devices.selectors import transfers as transfer_selectors
from devices.services import transfers
from devices.web import common
from products.selectors import visible_product_ids

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
        transfer = transfers.device_transfer_decide(principal=request.principal, transfer_id=transfer_id,
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
    sandbox = own_sandbox(request)
    enter_account(request, sandbox)
    only = validation.boolean(request.GET.get("sandbox_only"), field="sandbox_only", default=False, lenient=True)
    details = device_selectors.sandbox_device_details(user=request.user)
    total = details["total_personal_devices"] + (0 if only else details["total_claimed_product_devices"])
    page_no = validation.whole_number(request.GET.get("page"), field="page", default=1, low=1, high=999_999,
                                      lenient=True)
    page = device_selectors.sandbox_device_page(user=request.user, sandbox_only=only, page=page_no,
                                                per_page=SANDBOX_PER_PAGE, total=total)
    pages = max(1, page.total_pages)
    devices = page.rows
    visible = visible_product_ids(request.principal, {d.product_id for d in devices if d.product_id})
    # The links, reversed once per product on the page rather than twice per row.
    slugs = {d.product_id: d.product.slug for d in devices if d.product_id in visible}
    links = {pid: (common.detail_urls(slug), reverse("console:products:detail", args=[slug])) for pid, slug in slugs.items()}
    rows = [{"device": d, "url": links[d.product_id][0](d.id) if d.product_id in links else "",
             "product_url": links[d.product_id][1] if d.product_id in links else "",
             "label": d.name or "Unnamed", "heard": common.heard(d)} for d in devices]
    place = sandbox_place(sandbox, "devices")
    place.crumbs.append(("Devices", None))
    base = reverse("console:devices:sandbox-list")

    def page_url(n: int) -> str:
        params = {**({"sandbox_only": "1"} if only else {}), **({"page": n} if n > 1 else {})}
        return f"{base}?{urlencode(params)}" if params else base

    used, limit = details["counted_against_free_limit"], details["free_limit"]
    return render(request, "devices/sandbox_list.html", {
        "place": place, "rows": rows, "only": only, "details": details, "total": total,
        "transfers": transfer_selectors.transfers_for_owner(user=request.user),
        "page_no": page_no, "pages": pages, "used_percent": min(100, round(used * 100 / limit)) if limit else 0,
        "prev_url": page_url(page_no - 1) if page_no > 1 else "", "next_url": page_url(page_no + 1) if page_no < pages else "",
        "first_index": page.first_index, "last_index": page.last_index,
    })
