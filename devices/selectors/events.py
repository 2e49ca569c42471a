"""Which events a stream may send (particle-api.md §13): the route and the caller decide one audience, an
optional device and a prefix. Every lookup goes through the scoping doors, so another tenant's product,
organization or device is a 404 before any byte is streamed."""

from __future__ import annotations

from console.errors import NotFound, ValidationFailed
from console.scoping import Principal
from console.selectors import org_get
from devices.models import Device
from devices.selectors.devices import device_get, product_device_get
from devices.streams import StreamScope
from products.selectors import product_get

ACTION = "events:get"


class NotYourStream(ValidationFailed):
    code = "unauthorized"


def own_audience(principal: Principal) -> str:
    """The caller's own stream: its user's, or a customer's."""
    if principal.kind == "customer":
        return f"c:{principal.customer_id}"
    if principal.kind == "user" and principal.user is not None:
        return f"u:{principal.user.pk}"
    raise NotYourStream("A product token or API user has no event stream of its own: open the product's "
                        "stream, /v1/products/:product/events")


def _device_audience(principal: Principal, device: Device) -> str:
    member = device.product_id is not None and not device.quarantined and not device.denied
    if principal.kind == "customer":
        return f"c:{principal.customer_id}"
    if principal.kind == "user" and principal.user is not None and device.owner_id == principal.user.pk \
            and not member:
        return f"u:{principal.user.pk}"
    if not member:
        raise NotFound(f"Device {device.pk} not found")
    return f"p:{device.product_id}"


def _product_device(product, device_id: str) -> Device:
    device = product_device_get(product=product, device_id=device_id, include_denied=False, related=())
    if device.quarantined:
        raise NotFound(f"Device {device_id} not found in this product")
    return device


def stream_scope(principal: Principal, *, prefix: str = "", device: str | None = None, product: str | None = None,
                 org: str | None = None, mine: bool = False) -> StreamScope:
    """The scope of the stream a route names: `mine` (the caller's own events, `/v1/events`,
    `/v1/devices/events`), one device, a product (and one of its devices), an organization (and one of its
    devices, or one of its products)."""
    if org is not None:
        found_org = org_get(principal=principal, ident=org, action=ACTION)
        if product is not None:
            found = product_get(principal=principal, ident=product, action=ACTION)
            if found.account_id != found_org.pk:
                raise NotFound(f"Product {product} not found")
            if device is not None:
                return StreamScope(f"p:{found.pk}", _product_device(found, device).pk, prefix)
            return StreamScope(f"p:{found.pk}", None, prefix)
        if device is not None:
            d = device_get(principal=principal, device_id=device, action=ACTION)
            if d.product is None or d.product.account_id != found_org.pk or d.quarantined or d.denied:
                raise NotFound(f"Device {device} not found")
            return StreamScope(f"o:{found_org.pk}", d.pk, prefix)
        return StreamScope(f"o:{found_org.pk}", None, prefix)
    if product is not None:
        found = product_get(principal=principal, ident=product, action=ACTION)
        if device is not None:
            return StreamScope(f"p:{found.pk}", _product_device(found, device).pk, prefix)
        return StreamScope(f"p:{found.pk}", None, prefix)
    if device is not None:
        d = device_get(principal=principal, device_id=device, action=ACTION)
        return StreamScope(_device_audience(principal, d), d.pk, prefix)
    if not mine and not prefix:
        raise ValidationFailed("An event name prefix is required: /v1/events/:prefix (or open "
                               "/v1/devices/events for all of your events)")
    return StreamScope(own_audience(principal), None, prefix)
