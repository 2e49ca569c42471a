"""Talking to a connected device: call a function, read a variable, ping it, make its LED signal (rainbow).

Each goes API/console → Redis (`devices.presence.device_request`) → the gateway holding the device → the
device, and the answer comes back on a reply list (docs/device-protocol.md "Functions and variables"). The
doors (API views, console views) resolve the device through the caller's scope with the action first
(`devices.function:call`, `devices.variable:get`, `devices:ping`), so another tenant's device is a 404 before
anything reaches Redis; these services then validate, refuse a device that may not talk (quarantined,
denied: it looks offline, as at Particle) and translate the gateway's answer into typed errors:

* not connected → `DeviceTimedOut` at once (Particle's 408 `{"ok": false, "error": "timed out"}`);
* connected but silent for `DEVICE_REQUEST_TIMEOUT` seconds → the same 408;
* no function / variable of that name → `DeviceNameNotFound` (404, Particle's words).
"""

from __future__ import annotations

from django.db import connections

from console.errors import DeviceNameNotFound, DeviceTimedOut, ValidationFailed
from console.scoping import Principal
from devices import presence
from devices.models import Device

# Device OS 0.8.0 and later take function and variable names of up to 64 characters (12 before).
MAX_NAME = 64
# The function argument travels in one CoAP Uri-Query option. Particle's API reference still says 63
# characters, the limit of Device OS before 0.8.0; every Device OS since 0.8.0 accepts 622 bytes (and the
# simulator does too). We take 622: refusing a 100-character argument that the device would accept helps no
# one, and 622 bytes keep the whole request inside the Gen 2 message buffer. Counted in UTF-8 bytes, as
# the device counts.
MAX_ARGUMENT_BYTES = 622

VARIABLE_TYPES = ("int32", "double", "string", "bool")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationFailed(f"A {what} name is required", field="name")
    if len(value) > MAX_NAME:
        raise ValidationFailed(f"A {what} name has at most {MAX_NAME} characters", field="name")
    return value


def _argument(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationFailed("arg must be a string", field="arg")
    arg = str(value)
    if len(arg.encode()) > MAX_ARGUMENT_BYTES:
        raise ValidationFailed(f"arg has at most {MAX_ARGUMENT_BYTES} bytes", field="arg")
    return arg


def _may_talk(device: Device) -> None:
    """A quarantined or denied device is kept at arm's length: to the API it is simply not there."""
    if device.quarantined or device.denied:
        raise DeviceTimedOut(f"Device {device.id} is not connected")


def _release_database() -> None:
    """Give this thread's database connection back to the pool before waiting on a device: the wait can last
    DEVICE_REQUEST_TIMEOUT (30 s), and a web process holding a pooled connection per waiting call would stall
    every other request once a few devices are slow. Inside a transaction (a test's, or a caller's atomic
    block) the connection stays: closing it there would abort the transaction."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


def _ask(device: Device, op: str, **args) -> dict:
    _release_database()
    try:
        return presence.device_request(device.id, op, **args)
    except presence.DeviceOffline:
        raise DeviceTimedOut(f"Device {device.id} is not connected")
    except presence.DeviceTimedOut:
        raise DeviceTimedOut(f"Device {device.id} did not answer within {presence.request_timeout():g} s")


def device_function_call(*, principal: Principal, device: Device, name: object, arg: object) -> int:
    """Call the device's function `name` with `arg`; returns the function's int result."""
    name = _name(name, "function")
    arg = _argument(arg)
    _may_talk(device)
    # Particle counts a function call as one data operation: metering hooks in here once billing exists.
    answer = _ask(device, "function", name=name, arg=arg)
    if not answer.get("ok"):
        if answer.get("error") == "not_found":
            raise DeviceNameNotFound(f"Function {name} not found", code=f"Function {name} not found")
        raise DeviceTimedOut(f"Device {device.id} could not run {name}: {answer.get('error') or 'no answer'}")
    return int(answer["return_value"])


def device_variable_get(*, principal: Principal, device: Device, name: object) -> tuple[object, str]:
    """Read the device's variable `name`: (value, type) with type one of int32, double, string, bool."""
    name = _name(name, "variable")
    _may_talk(device)
    # Particle counts a variable read as one data operation: metering hooks in here once billing exists.
    answer = _ask(device, "variable", name=name)
    if not answer.get("ok"):
        if answer.get("error") == "not_found":
            raise DeviceNameNotFound(f"Variable {name} not found", code="Variable not found")
        raise DeviceTimedOut(f"Device {device.id} could not read {name}: {answer.get('error') or 'no answer'}")
    return answer["result"], answer.get("type") or (device.variables or {}).get(name, "string")


def device_ping(*, principal: Principal, device: Device) -> bool:
    """Is the device there right now? A round trip to it (not a look at the last flush); never raises for
    an absent or silent device, that is just "not online"."""
    try:
        _may_talk(device)
        return bool(_ask(device, "ping").get("ok"))
    except DeviceTimedOut:
        return False


def device_signal(*, principal: Principal, device: Device, on: bool) -> bool:
    """Start (on) or stop the device's rainbow LED. Returns whether the device was reached and agreed."""
    try:
        _may_talk(device)
        return bool(_ask(device, "signal", on=bool(on)).get("ok"))
    except DeviceTimedOut:
        return False
