"""Functions, variables, ping and signal, API and console, where no device answers: a device no gateway holds
gets Particle's 408 at once; a device "held" by a gateway that never answers gets it after
DEVICE_REQUEST_TIMEOUT; a quarantined or denied device and another tenant's device never reach Redis at all;
names and arguments are checked before anything is sent. A real Redis subscriber stands where the gateway
would (it only listens: what it hears is exactly what `device_request` published). The answers themselves
come from the real gateway and simulator in tests/test_device_remote_e2e.py."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import resolve

from devices import events, presence
from devices.models import Device
from devices.services import remote
from tests.support.console import signed_in
from tests.support.fleet import import_devices

pytestmark = pytest.mark.django_db

TIMED_OUT = {"ok": False, "error": "timed out"}


class Listener:
    """A gateway's command channel with a subscriber that never answers, and the device registered on it."""

    def __init__(self, device_ids: list[str]):
        self.gateway = f"gw-test-{time.monotonic_ns()}"
        self.device_ids = device_ids
        self.pubsub = presence.client().pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(presence.command_channel(self.gateway))
        for device_id in device_ids:
            presence.client().hset(presence.where_key(), device_id, f"{self.gateway} session-1")

    def heard(self, quiet: float = 0.2) -> list[dict]:
        """Every command published so far: read until the channel has been quiet for `quiet` seconds."""
        got = []
        until = time.monotonic() + quiet
        while time.monotonic() < until:
            message = self.pubsub.get_message(timeout=0.05)  # None also for the subscribe confirmation
            if message is not None:
                got.append(json.loads(message["data"]))
                until = time.monotonic() + quiet
        return got

    def close(self) -> None:
        presence.client().hdel(presence.where_key(), *self.device_ids)
        self.pubsub.close()


@pytest.fixture
def member(cast) -> str:
    device_id = import_devices(cast.product)[0]
    Device.objects.filter(pk=device_id).update(name="kitchen", functions=["led", "echo"],
                                               variables={"temperature": "double", "uptime": "int32"})
    return device_id


@pytest.fixture
def listener(member):
    got = Listener([member])
    yield got
    got.close()


def warm(api, member: str) -> None:
    """The process's first request loads the URL conf, the views and the templates: it is not the one timed."""
    api.get(f"/v1/devices/{member}")


def _timed(fn):
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


# --- offline: 408 at once ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method,suffix,data", [
    ("GET", "/temperature", None),
    ("GET", "/temperature?format=raw", None),
    ("POST", "/led", {"arg": "on"}),
    ("POST", "/led", {"args": "on", "format": "raw"}),
])
@pytest.mark.parametrize("form", ["dev", "product"])
def test_an_offline_device_answers_408_timed_out_at_once(cast, member, method, suffix, data, form):
    base = f"/v1/devices/{member}" if form == "dev" else f"/v1/products/{cast.product.slug}/devices/{member}"
    api = cast.api("support")
    warm(api, member)
    r, took = _timed(lambda: api.call(method, base + suffix, data))
    assert r.status_code == 408, r.content
    body = r.json()
    assert {k: body[k] for k in ("ok", "error")} == TIMED_OUT
    assert body["error_description"] == f"Device {member} is not connected"
    assert took < 1.0, f"the offline answer took {took:.3f} s"


def test_the_dev_form_takes_the_device_name_too(cast, member):
    r = cast.api("support").post("/v1/devices/kitchen/led", {"arg": "on"})
    assert r.status_code == 408 and r.json()["error"] == "timed out"


def test_ping_of_an_offline_device_is_online_false(cast, member):
    warm(cast.api("support"), member)
    for path in (f"/v1/devices/{member}/ping", f"/v1/products/{cast.product.pk}/devices/{member}/ping"):
        r, took = _timed(lambda: cast.api("support").put(path))
        assert r.status_code == 200 and r.json() == {"online": False, "ok": True}, (path, r.content)
        assert took < 1.0


@pytest.mark.parametrize("value", ["1", "0", True, 1])
def test_signal_of_an_offline_device_says_not_connected(cast, member, value):
    r = cast.api("support").put(f"/v1/devices/{member}", {"signal": value})
    assert r.status_code == 200, r.content
    assert r.json() == {"id": member, "connected": False, "signaling": False}


def test_signal_with_a_rename_needs_a_developer_and_does_both(cast, member):
    assert cast.api("support").put(f"/v1/devices/{member}", {"signal": "1", "name": "x"}).status_code == 403
    r = cast.api("developer").put(f"/v1/products/{cast.product.pk}/devices/{member}", {"signal": "1", "name": "lab"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["id"], body["name"], body["connected"], body["signaling"]) == (member, "lab", False, False)
    assert Device.objects.get(pk=member).name == "lab"


def test_an_empty_put_is_still_refused(cast, member):
    r = cast.api("developer").put(f"/v1/devices/{member}", {})
    assert r.status_code == 400 and "Nothing to update" in r.json()["error_description"]


# --- connected but silent: 408 after the timeout ------------------------------------------------------------


def test_a_silent_device_times_out_after_device_request_timeout(cast, member, listener, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 0.6
    r, took = _timed(lambda: cast.api("support").post(f"/v1/devices/{member}/echo", {"args": "hello"}))
    assert r.status_code == 408, r.content
    assert {k: r.json()[k] for k in ("ok", "error")} == TIMED_OUT
    assert "did not answer within 0.6 s" in r.json()["error_description"]
    assert 0.6 <= took < 1.6, took
    [asked] = listener.heard()
    assert (asked["op"], asked["device"], asked["session"], asked["args"]) == (
        "function", member, "session-1", {"name": "echo", "arg": "hello"})
    assert asked["reply"] and asked["deadline"] > time.time() - 5


def test_the_request_carries_each_op_as_documented(cast, member, listener, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 0.2
    api = cast.api("support")
    assert api.get(f"/v1/devices/{member}/uptime").status_code == 408
    assert api.put(f"/v1/devices/{member}/ping").json() == {"online": False, "ok": True}
    assert api.put(f"/v1/devices/{member}", {"signal": "0"}).json()["connected"] is False
    assert api.post(f"/v1/devices/{member}/led", {}).status_code == 408
    heard = [(m["op"], m["args"]) for m in listener.heard()]
    assert heard == [("variable", {"name": "uptime"}), ("ping", {}), ("signal", {"on": False}),
                     ("function", {"name": "led", "arg": ""})]


@pytest.mark.parametrize("flag", ["quarantined", "denied"])
def test_a_quarantined_or_denied_device_looks_offline_and_is_never_asked(cast, member, listener, flag, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 5
    Device.objects.filter(pk=member).update(**{flag: True})
    api = cast.api("owner")
    warm(api, member)
    r, took = _timed(lambda: api.post(f"/v1/products/{cast.product.pk}/devices/{member}/led", {"arg": "on"}))
    assert r.status_code == 408 and took < 1.0, (r.content, took)
    assert api.put(f"/v1/products/{cast.product.pk}/devices/{member}/ping").json() == {"online": False, "ok": True}
    assert listener.heard() == []


def test_another_tenants_device_is_404_before_anything_reaches_redis(cast, member, listener):
    outsider = cast.api("outsider")
    for method, path, data in [("GET", f"/v1/devices/{member}/temperature", None),
                               ("POST", f"/v1/devices/{member}/led", {"arg": "on"}),
                               ("PUT", f"/v1/devices/{member}/ping", None),
                               ("PUT", f"/v1/devices/{member}", {"signal": "1"}),
                               ("POST", f"/v1/products/{cast.product.pk}/devices/{member}/led", {"arg": "on"})]:
        r = outsider.call(method, path, data)
        assert r.status_code == 404, (path, r.content)
        assert "kitchen" not in r.content.decode()
    assert cast.api("viewer").post(f"/v1/devices/{member}/led", {"arg": "on"}).status_code == 403
    assert listener.heard() == []


# --- validation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,field,text", [
    ({"arg": "x" * 623}, "arg", "at most 622 bytes"),
    ({"arg": "é" * 312}, "arg", "at most 622 bytes"),  # 624 bytes in UTF-8
    ({"arg": {"nested": 1}}, "arg", "arg must be a string"),
    ({"arg": True}, "arg", "arg must be a string"),
])
def test_a_bad_argument_is_400_and_not_sent(cast, member, listener, data, field, text):
    r = cast.api("support").post(f"/v1/devices/{member}/led", data)
    assert r.status_code == 400, r.content
    assert r.json()["field"] == field and text in r.json()["error_description"]
    assert listener.heard() == []


def test_the_longest_argument_and_name_are_sent(cast, member, listener, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 0.2
    name = "f" * 64
    assert cast.api("support").post(f"/v1/devices/{member}/{name}", {"arg": "é" * 311}).status_code == 408
    [asked] = listener.heard()
    assert asked["args"] == {"name": name, "arg": "é" * 311}


def test_a_name_longer_than_64_is_400(cast, member, listener):
    for method in ("GET", "POST"):
        r = cast.api("support").call(method, f"/v1/devices/{member}/{'v' * 65}", {} if method == "POST" else None)
        assert r.status_code == 400 and r.json()["field"] == "name", r.content
    assert listener.heard() == []


def test_the_form_body_and_the_query_carry_the_argument_too(cast, member, listener, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 0.2
    api = cast.api("support")
    assert api.call("POST", f"/v1/devices/{member}/echo", {"arg": "from a form"}, form=True).status_code == 408
    assert api.post(f"/v1/devices/{member}/echo?args=from%20the%20query", {}).status_code == 408
    assert [m["args"]["arg"] for m in listener.heard()] == ["from a form", "from the query"]


def test_service_validation_runs_before_the_device_is_looked_up(cast, member):
    from console.errors import ValidationFailed
    from console.scoping import Principal

    device = Device.objects.get(pk=member)
    with pytest.raises(ValidationFailed):
        remote.device_function_call(principal=Principal.for_user(cast.support), device=device, name="", arg="")
    with pytest.raises(ValidationFailed):
        remote.device_variable_get(principal=Principal.for_user(cast.support), device=device, name="n" * 65)


def test_events_ping_and_owner_are_not_variable_names():
    """`/v1/devices/:id/events` is the device's event stream, never a variable; ping and owner are routes."""
    assert resolve("/v1/devices/0123456789abcdef01234567/events").url_name == "device-stream"
    assert resolve("/v1/products/7/devices/0123456789abcdef01234567/events").url_name == "product-device-stream"
    assert resolve("/v1/devices/events").url_name == "device-events"
    assert resolve("/v1/devices/0123456789abcdef01234567/ping").url_name == "device-ping"
    assert resolve("/v1/devices/0123456789abcdef01234567/eventsx").url_name == "device-remote"
    assert resolve("/v1/products/7/devices/0123456789abcdef01234567/owner").url_name == "product-device-owner"


def test_the_device_body_lists_the_describe(cast, member):
    body = cast.api("viewer").get(f"/v1/devices/{member}").json()
    assert body["functions"] == ["led", "echo"]
    assert body["variables"] == {"temperature": "double", "uptime": "int32"}
    assert body["online"] is False and body["connected"] is False


# --- the console device page ---------------------------------------------------------------------------------


def _page(cast, who: str, member: str) -> str:
    r = signed_in(getattr(cast, who)).get(f"/products/{cast.product.slug}/devices/{member}/")
    assert r.status_code == 200
    return r.content.decode()


def test_the_device_page_shows_functions_variables_and_controls_to_support(cast, member):
    html = _page(cast, "support", member)
    assert 'data-function="led"' in html and 'data-function="echo"' in html
    assert 'data-variable="temperature"' in html and ">double<" in html
    assert ">Call<" in html and ">Read<" in html and 'data-intent="ping"' in html and 'data-intent="signal"' in html
    assert f'hx-post="/products/{cast.product.slug}/devices/{member}/remote/"' in html
    assert 'data-online="false"' in html and "<script>" not in html  # CSP: no inline scripts


def test_view_only_sees_the_panels_but_no_controls_and_its_posts_are_403(cast, member, listener):
    html = _page(cast, "viewer", member)
    assert 'data-function="led"' in html and 'data-variable="uptime"' in html
    assert ">Call<" not in html and ">Read<" not in html and 'data-intent="ping"' not in html
    assert "View-only." in html
    client = signed_in(cast.viewer)
    for intent in ("function", "variable", "ping", "signal"):
        r = client.post(f"/products/{cast.product.slug}/devices/{member}/remote/",
                        {"intent": intent, "name": "led", "arg": "on"}, HTTP_HX_REQUEST="true")
        assert r.status_code == 403, (intent, r.status_code)
    assert listener.heard() == []


@pytest.mark.parametrize("intent,name,text", [
    ("function", "led", "The device is offline."),
    ("variable", "temperature", "The device is offline."),
    ("ping", "", "No answer: the device is offline."),
    ("signal", "", "The device is offline: it cannot signal."),
])
def test_an_action_on_an_offline_device_says_so_in_the_panel(cast, member, intent, name, text):
    client = signed_in(cast.support)
    client.get(f"/products/{cast.product.slug}/devices/{member}/live/")  # warm: the timed post is not the first
    r, took = _timed(lambda: client.post(f"/products/{cast.product.slug}/devices/{member}/remote/",
                                         {"intent": intent, "name": name, "arg": "on"}, HTTP_HX_REQUEST="true"))
    assert r.status_code == 200 and took < 1.0
    html = r.content.decode()
    assert 'class="remote-result is-error"' in html and text in html
    assert r["HX-Trigger"] == "device-changed"


def test_a_timed_out_call_and_bad_input_say_so_in_the_panel(cast, member, listener, settings):
    settings.DEVICE_REQUEST_TIMEOUT = 0.3
    client = signed_in(cast.developer)
    url = f"/products/{cast.product.slug}/devices/{member}/remote/"
    r = client.post(url, {"intent": "function", "name": "led", "arg": "on"}, HTTP_HX_REQUEST="true")
    assert "did not answer within 0.3 seconds (timed out)" in r.content.decode()
    r = client.post(url, {"intent": "function", "name": "led", "arg": "x" * 700}, HTTP_HX_REQUEST="true")
    assert "arg has at most 622 bytes" in r.content.decode()


def test_without_htmx_an_action_redirects_with_a_message(cast, member):
    client = signed_in(cast.support)
    r = client.post(f"/products/{cast.product.slug}/devices/{member}/remote/", {"intent": "ping"}, follow=True)
    assert r.status_code == 200 and "No answer: the device is offline." in r.content.decode()


def test_the_live_panel_shows_recent_events_and_the_badge(cast, member, listener):
    events.event_publish(device_id=member, name="spark/status", data="online")
    events.event_publish(device_id=member, name="temperature", data="21.5")
    r = signed_in(cast.viewer).get(f"/products/{cast.product.slug}/devices/{member}/live/")
    html = r.content.decode()
    assert r.status_code == 200 and 'data-online="true"' in html  # the listener's gateway holds it
    assert html.index("temperature") < html.index("spark/status")  # newest first
    assert "21.5" in html and 'hx-trigger="every 3s, device-changed from:body"' in html
    # the heading's dot and word come along out of band
    assert '<span id="device-status" data-online="true" hx-swap-oob="true">' in html
    assert 'id="device-dot" class="dot dot-lg dot-online" aria-hidden="true" hx-swap-oob="true"' in html
    page = _page(cast, "viewer", member)
    assert page.count('id="device-status"') == 1 and "hx-swap-oob" not in page


def test_outsiders_get_404_on_the_console_parts(cast, member):
    client = signed_in(cast.outsider)
    base = f"/products/{cast.product.slug}/devices/{member}"
    assert client.get(base + "/live/").status_code == 404
    assert client.post(base + "/remote/", {"intent": "ping"}).status_code == 404
    assert Client().get(base + "/live/").status_code == 302  # signed out: to the login page


@pytest.mark.django_db(transaction=True)  # outside a transaction, as a web request runs
def test_a_call_waits_for_the_device_holding_no_database_connection(cast, member, listener, settings):
    """A device has 30 s to answer; a web process keeping a pooled connection through each wait would run out
    of connections once a few devices are slow, and stall requests that have nothing to do with them."""
    from django.db import connection

    from console.errors import DeviceTimedOut
    from console.scoping import Principal

    settings.DEVICE_REQUEST_TIMEOUT = 0.3
    device = Device.objects.get(pk=member)
    assert connection.connection is not None  # the lookup opened it
    with pytest.raises(DeviceTimedOut):
        remote.device_function_call(principal=Principal.for_user(cast.support), device=device, name="echo",
                                    arg="x")
    assert connection.connection is None
    assert [m["op"] for m in listener.heard()] == ["function"]
    assert Device.objects.filter(pk=member).exists()  # the next query simply takes a connection again
