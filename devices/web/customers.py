"""Console page of a product's customers: the list, create (with a password, or a shadow customer), change
a password, delete."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render

from console.errors import ServiceError
from console.pagination import COUNT_CAP, paginate
from console.validation import whole_number
from console.web.access import console_view, form_error
from devices.selectors import customers as customer_selectors
from devices.services import customers as customer_services
from devices.web import common
from devices.web.forms import CustomerCreateForm, CustomerPasswordForm


@console_view
def customer_list(request, product: str):
    found = common.product_for(request, product, "customers:list")
    create_form, password_form = CustomerCreateForm(prefix="new"), None
    open_dialog, status = "", 200
    if request.method == "POST":
        intent = request.POST.get("intent")
        action = {"create": "customers:create", "password": "customers:update", "delete": "customers:remove"}.get(intent)
        if action is None:
            raise Http404("Unknown action")
        found = common.product_for(request, product, action)
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
                    return redirect(common.url("customers", found))
            open_dialog, status = "customer-new-dialog", 400
        else:
            customer = customer_selectors.customer_get(product=found, email=request.POST.get("email", ""))
            if intent == "delete":
                customer_services.customer_delete(principal=request.principal, customer=customer)
                messages.success(request, f"Customer {customer.email} was deleted; their tokens no longer work and "
                                          f"their devices stay in the product, unclaimed.")
                return redirect(common.url("customers", found))
            password_form = CustomerPasswordForm(request.POST)
            if password_form.is_valid():
                try:
                    customer_services.customer_set_password(principal=request.principal, customer=customer,
                                                            password=password_form.cleaned_data["password"])
                except ServiceError as exc:
                    form_error(password_form, exc)
                else:
                    messages.success(request, f"Password of {customer.email} changed.")
                    return redirect(common.url("customers", found))
            open_dialog, status = f"customer-{customer.pk}-password-dialog", 400
    g = request.GET
    q = g.get("q", "").strip()[:100]
    page_no = whole_number(g.get("page"), field="page", default=1, low=1, high=999_999, lenient=True)
    page = paginate(customer_selectors.product_customers(found, q), page=page_no, per_page=50, cap=COUNT_CAP)
    devices = customer_selectors.customers_devices(page.rows)
    base = common.url("customers", found)

    def page_url(n: int) -> str:
        params = {**({"q": q} if q else {}), **({"page": n} if n > 1 else {})}
        return f"{base}?{urlencode(params)}" if params else base

    rights = common.rights(request, found)
    return render(request, "devices/customers.html", {
        "place": common.place(request, found, "customers", ("Customers", None)), "product": found, "page": page, "q": q,
        "rows": [{"customer": c, "devices": devices[c.pk], "password_dialog": f"customer-{c.pk}-password-dialog",
                  "password_form": password_form if password_form is not None and open_dialog.startswith(f"customer-{c.pk}-")
                  else CustomerPasswordForm(initial={"email": c.email})} for c in page.rows],
        "create_form": create_form, "open_dialog": open_dialog,
        "prev_url": page_url(page.page - 1) if page.page > 1 else "", "next_url": page_url(page.page + 1) if page.has_next else "",
        "device_list_url": common.url("list", found),
        "can": rights.as_dict("customers:create", "customers:update", "customers:remove"),
    }, status=status)
