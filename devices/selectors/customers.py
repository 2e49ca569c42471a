"""Reads for a product's customers."""

from __future__ import annotations

from django.db.models import QuerySet

from console.errors import NotFound
from devices.models import Customer, Device
from products.models import Product


def customer_get(*, product: Product, email: str) -> Customer:
    customer = Customer.objects.filter(product=product, email=(email or "").strip().lower()).first()
    if customer is None:
        raise NotFound(f"Customer {email} not found")
    return customer


def product_customers(product: Product, q: str = "") -> QuerySet[Customer]:
    qs = Customer.objects.filter(product=product).order_by("email")
    return qs.filter(email__icontains=q) if q else qs


def customers_devices(customers: list[Customer]) -> dict[int, list[Device]]:
    """The devices of each customer on a page, in one query."""
    out: dict[int, list[Device]] = {c.pk: [] for c in customers}
    if customers:
        for d in Device.objects.filter(customer__in=customers).only("id", "name", "customer_id", "online").order_by("name", "id"):
            out[d.customer_id].append(d)
    return out


def devices_of_customers(customers: list[Customer]) -> list[Device]:
    """Every device owned by one of these customers, by id (`GET /v1/products/:p/customers`)."""
    return list(Device.objects.filter(customer__in=customers).select_related("customer").order_by("id"))
