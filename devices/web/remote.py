"""The device page's live parts: call a function, read a variable, ping, signal (htmx posts whose answer is
drawn in place), and the online badge with the device's recent events (polled by htmx every few seconds and
after each action). The same services as the API (devices/services/remote.py), the same rules: every post
resolves the product again with the action it takes (View-only sees the panels, and gets a 403 if it posts)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from console.errors import DeviceNameNotFound, DeviceTimedOut, ServiceError
from devices import events, presence
from devices.models import Device
from devices.selectors import devices as device_selectors
from devices.services import remote
from console.web.access import console_view
from devices.web import common
from products.models import Product

EVENTS_SHOWN = 20
POLL_SECONDS = 3

ACTIONS = {"function": "devices.function:call", "variable": "devices.variable:get", "ping": "devices:ping",
           "signal": "devices:ping", "unsignal": "devices:ping"}


def is_connected(device: Device) -> bool:
    """Connected right now, from presence (the row's `online` lags by the flush interval)."""
    return device.id in presence.devices_connected([device.id])


def live_context(request, product: Product, device: Device) -> dict:
    return {"product": product, "device": device, "connected": is_connected(device), "poll_seconds": POLL_SECONDS,
            "events": events.device_events_recent(device.id, EVENTS_SHOWN),
            "live_url": common.url("live", product, device.id),
            "log_url": f"{common.url('events', product)}?device={device.id}"}


def panel_context(request, product: Product, device: Device) -> dict:
    """What detail.html needs for the Functions, Variables and Device panels and the events."""
    rights = common.rights(request, product)
    return {**live_context(request, product, device),
            "remote_url": common.url("remote", product, device.id),
            "functions": list(device.functions or []),
            "variables": sorted((device.variables or {}).items()),
            "may": rights.as_dict(*sorted(set(ACTIONS.values()))),
            "remote_buttons": [("ping", "Ping"), ("signal", "Start signal"), ("unsignal", "Stop signal")]}


def _run(request, device: Device, intent: str) -> tuple[bool, str]:
    """(succeeded, the sentence shown in the panel)."""
    name = request.POST.get("name", "")
    try:
        if intent == "function":
            value = remote.device_function_call(principal=request.principal, device=device, name=name,
                                                arg=request.POST.get("arg", ""))
            return True, f"{name} returned {value}"
        if intent == "variable":
            value, kind = remote.device_variable_get(principal=request.principal, device=device, name=name)
            return True, f"{name} = {value} ({kind})"
        if intent == "ping":
            online = remote.device_ping(principal=request.principal, device=device)
            return online, "The device answered: it is online." if online else "No answer: the device is offline."
        on = intent == "signal"
        if remote.device_signal(principal=request.principal, device=device, on=on):
            return True, "The device is signaling (rainbow LED)." if on else "The device stopped signaling."
        return False, "The device is offline: it cannot signal."
    except DeviceTimedOut:
        if device.quarantined or device.denied or not is_connected(device):
            return False, "The device is offline."
        return False, f"The device did not answer within {presence.request_timeout():g} seconds (timed out)."
    except DeviceNameNotFound as exc:
        return False, f"{exc.description} on this device."
    except ServiceError as exc:
        return False, exc.description


@console_view
@require_POST
def device_remote(request, product: str, device_id: str):
    """POST intent=function (name, arg) | variable (name) | ping | signal | unsignal. htmx gets the result
    line for the panel (and an HX-Trigger so the events refresh); a plain post gets a message and a redirect."""
    intent = request.POST.get("intent", "")
    if intent not in ACTIONS:
        raise Http404("Unknown action")
    found = common.product_for(request, product, ACTIONS[intent])  # Forbidden (403) for View-only
    device = device_selectors.product_device_get(product=found, device_id=device_id)
    ok, text = _run(request, device, intent)
    if not request.htmx:
        (messages.success if ok else messages.error)(request, text)
        return redirect(common.url("detail", found, device.id))
    response = render(request, "devices/_remote_result.html", {"ok": ok, "text": text, "intent": intent})
    response["HX-Trigger"] = "device-changed"
    return response


@console_view
def device_live(request, product: str, device_id: str):
    """The online badge and recent events, polled by the device page."""
    found = common.product_for(request, product, "devices:get")
    device = device_selectors.product_device_get(product=found, device_id=device_id)
    return render(request, "devices/_live.html", {**live_context(request, found, device), "oob": True})
