"""Console pages of a product's device groups: the list with create, edit and delete dialogs."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.errors import ServiceError
from console.web.access import console_view, form_error
from devices.selectors import groups as group_selectors
from devices.services import groups as group_services
from devices.web import common
from devices.web.forms import GroupForm
from products.models import DeviceGroup, Product


def _group(found: Product, name: str) -> DeviceGroup:
    group = group_selectors.group_get(found, name)
    if group is None:
        raise Http404("No such group")
    return group


@console_view
def group_list(request, product: str):
    found = common.product_for(request, product, "groups:list")
    create_form = GroupForm(prefix="new")
    edit_forms: dict[str, GroupForm] = {}
    open_dialog, status = "", 200
    if request.method == "POST":
        found = common.product_for(request, product, "groups:create")
        create_form = GroupForm(request.POST, prefix="new")
        if create_form.is_valid():
            try:
                group = group_services.group_create(principal=request.principal, product=found,
                                                    **create_form.cleaned_data)
            except ServiceError as exc:
                form_error(create_form, exc)
            else:
                messages.success(request, f"Group {group.name} created. Add devices to it from the device list.")
                return redirect(common.url("groups", found))
        open_dialog, status = "group-new-dialog", 400
    return _groups_page(request, found, create_form, edit_forms, open_dialog, status)


def _groups_page(request, found: Product, create_form, edit_forms: dict, open_dialog: str, status: int):
    groups = group_selectors.product_groups(found)
    rights = common.rights(request, found)
    list_url = common.url("list", found)
    rows = [{"group": g, "devices_url": f"{list_url}?{urlencode({'groups': g.name})}",
             "form": edit_forms.get(g.name) or GroupForm(prefix=f"g-{g.pk}", initial={
                 "name": g.name, "color": g.color, "description": g.description}),
             "edit_url": common.url("group-edit", found, g.name), "delete_url": common.url("group-delete", found, g.name),
             "open": open_dialog == f"group-{g.pk}-dialog"}
            for g in groups]
    return render(request, "devices/groups.html", {
        "place": common.place(request, found, "groups", ("Groups", None)), "product": found, "rows": rows,
        "create_form": create_form, "open_dialog": open_dialog,
        "can": rights.as_dict("groups:create", "groups:update", "groups:remove"),
    }, status=status)


@console_view
@require_POST
def group_edit(request, product: str, name: str):
    found = common.product_for(request, product, "groups:update")
    group = _group(found, name)
    form = GroupForm(request.POST, prefix=f"g-{group.pk}")
    if form.is_valid():
        try:
            group_services.group_update(principal=request.principal, group=group, **form.cleaned_data)
        except ServiceError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Group {group.name} saved.")
            return redirect(common.url("groups", found))
    return _groups_page(request, found, GroupForm(prefix="new"), {name: form}, f"group-{group.pk}-dialog", 400)


@console_view
@require_POST
def group_delete(request, product: str, name: str):
    found = common.product_for(request, product, "groups:remove")
    group = _group(found, name)
    group_services.group_delete(principal=request.principal, group=group)
    messages.success(request, f"Group {name} was deleted. Its devices stay in the product.")
    return redirect(common.url("groups", found))
