"""Publishing events through the API (`POST /v1/devices/events`, `POST /v1/products/:p/events`), with the
rules every door shares: a name of 1–64 characters without control characters, nothing that starts with
"spark" (the cloud's own), data up to `EVENT_DATA_MAX_BYTES`, a TTL in seconds."""

from __future__ import annotations

from django.conf import settings

from console.errors import ValidationFailed
from console.scoping import Principal
from devices import events
from devices.selectors.devices import product_device_get
from devices.selectors.events import own_audience

MAX_NAME = 64
MAX_TTL = 16_777_215  # what the protocol's Max-Age option can carry (3 bytes)


def event_name_problem(name: str) -> str:
    """Why `name` cannot be published ("" when it can): the gateway logs it, the API answers it."""
    if not 1 <= len(name) <= MAX_NAME:
        return f"an event name must be 1 to {MAX_NAME} characters long (this one is {len(name)})"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "an event name may not contain control characters"
    if name.startswith("spark"):
        return "event names starting with \"spark\" are reserved for the cloud"
    return ""


def event_data_problem(size: int) -> str:
    limit = settings.EVENT_DATA_MAX_BYTES
    return f"event data is {size} bytes, more than the {limit} an event may carry" if size > limit else ""


def _name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationFailed("name: an event name is required", field="name")
    problem = event_name_problem(value)
    if problem:
        raise ValidationFailed(f"name: {problem}", field="name")
    return value


def _data(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationFailed("data: event data must be a string (send JSON as a string)", field="data")
    problem = event_data_problem(len(value.encode()))
    if problem:
        raise ValidationFailed(f"data: {problem}", field="data")
    return value


def _ttl(value: object) -> int:
    if value in (None, ""):
        return 60
    ttl = None
    if isinstance(value, int) and not isinstance(value, bool):
        ttl = value
    elif isinstance(value, str) and value.strip().isdigit():
        ttl = int(value.strip())
    if ttl is None or not 0 <= ttl <= MAX_TTL:
        raise ValidationFailed(f"ttl: a number of seconds from 0 to {MAX_TTL} is required", field="ttl")
    return ttl


def event_publish_api(*, principal: Principal, name: object, data: object = None, ttl: object = None,
                      product=None, as_device_id: object = None) -> events.BusEvent:
    """Publish one event from the API: to the caller's own stream, or (with `product`, already found through
    the caller's scope with `events:send`) to the product's, optionally as one of its devices."""
    name, data, ttl = _name(name), _data(data), _ttl(ttl)
    if product is None:
        if as_device_id not in (None, ""):
            raise ValidationFailed("as_device_id: only a product event can be published as a device",
                                   field="as_device_id")
        audience = own_audience(principal)
        kind, ref = audience.split(":")
        event = events.event_make(device_id=events.API, name=name, data=data, ttl=ttl,
                                  user_id=int(ref) if kind == "u" else None,
                                  customer_id=int(ref) if kind == "c" else None, origin="api")
    else:
        coreid = events.API
        if as_device_id not in (None, ""):
            if not isinstance(as_device_id, str):
                raise ValidationFailed("as_device_id: a device id is required", field="as_device_id")
            coreid = product_device_get(product=product, device_id=as_device_id, include_denied=False,
                                        related=()).pk
        event = events.event_make(device_id=coreid, name=name, data=data, ttl=ttl, product_id=product.pk,
                                  origin="api")
    (published,) = events.events_publish([event])
    return published
