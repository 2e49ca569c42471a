"""Server-sent event streams (devices/streams.py, devices/api/events.py) over a real uvicorn, with a plain HTTP
reader: the wire format, who may open which stream, prefixes, resuming with Last-Event-ID, keepalives, the
per-address limit, and publishing through the API. Facts: particle-api.md §13 and Part B §2."""

from __future__ import annotations

import time

import pytest

from devices import events
from devices.models import Customer, Device
from tests.support.fleet import customer_token, import_devices
from tests.support.presence import clear_presence
from tests.support.sse import Stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_bus():
    clear_presence()
    yield
    clear_presence()


@pytest.fixture
def fleet(cast):
    a, b = import_devices(cast.product, 2)
    (theirs,) = import_devices(cast.outsider_product, 1)
    return {"a": a, "b": b, "theirs": theirs}


def device_publish(device_id: str, name: str, data: str = "") -> events.BusEvent:
    (out,) = events.events_publish([events.event_make(device_id=device_id, name=name, data=data)])
    return out


def opened(asgi_url, path, token, **kw) -> Stream:
    s = Stream(asgi_url, path, token, **kw)
    assert s.status == 200, (s.status, s.response.read())
    assert s.response.getheader("Content-Type").startswith("text/event-stream")
    first = s.frame(5)
    assert (first.comment, first.event) == ("ok", None)
    return s


def test_a_product_stream_sends_ok_then_each_event_in_particles_shape(asgi_url, cast, fleet):
    s = opened(asgi_url, f"/v1/products/{cast.product.slug}/events?nonce=0.123", cast.tokens["owner"])
    sent = device_publish(fleet["a"], "temp", "21.5")
    got = s.event()
    assert (got.id, got.event) == (sent.id, "temp")
    assert got.data == {"data": "21.5", "ttl": 60, "published_at": sent.published_at, "coreid": fleet["a"],
                        "productID": cast.product.pk}
    # Another tenant's device publishing the same name never reaches this stream.
    device_publish(fleet["theirs"], "temp", "99")
    mine = device_publish(fleet["b"], "temp", "22")
    assert s.event().id == mine.id
    s.close()


def test_prefixes_are_case_sensitive_starts_and_may_hold_slashes(asgi_url, cast, fleet):
    s = opened(asgi_url, f"/v1/products/{cast.product.pk}/events/sensor%2Ftemp", cast.tokens["viewer"])
    device_publish(fleet["a"], "Sensor/temp", "no: case")
    device_publish(fleet["a"], "sensor", "no: shorter")
    wanted = device_publish(fleet["a"], "sensor/temperature", "yes")
    assert s.event().id == wanted.id
    s.close()


def test_a_device_stream_sends_only_that_devices_events(asgi_url, cast, fleet):
    s = opened(asgi_url, f"/v1/products/{cast.product.pk}/devices/{fleet['a']}/events", cast.tokens["support"])
    device_publish(fleet["b"], "x")
    wanted = device_publish(fleet["a"], "x")
    assert s.event().id == wanted.id
    s.close()
    dev_form = opened(asgi_url, f"/v1/devices/{fleet['a']}/events/x", cast.tokens["owner"])
    again = device_publish(fleet["a"], "x2")
    assert dev_form.event().id == again.id
    dev_form.close()


def test_streams_refuse_before_streaming_with_particles_json(asgi_url, cast, fleet):
    cases = [
        (f"/v1/products/{cast.product.pk}/events", None, 401, "invalid_token"),
        (f"/v1/products/{cast.product.pk}/events", "0" * 40, 401, "invalid_token"),
        (f"/v1/products/{cast.product.pk}/events", cast.tokens["outsider"], 404, "not_found"),
        (f"/v1/products/{cast.outsider_product.pk}/events", cast.tokens["owner"], 404, "not_found"),
        (f"/v1/products/{cast.product.pk}/devices/{fleet['theirs']}/events", cast.tokens["owner"], 404, "not_found"),
        (f"/v1/devices/{fleet['theirs']}/events", cast.tokens["owner"], 404, "not_found"),
        (f"/v1/orgs/{cast.org.slug}/events", cast.tokens["outsider"], 404, "not_found"),
        (f"/v1/orgs/{cast.org.slug}/products/{cast.outsider_product.pk}/events", cast.tokens["owner"], 404,
         "not_found"),
        ("/v1/events", cast.tokens["owner"], 400, "invalid_request"),
        ("/v1/devices/events", cast.tokens["owner"], 200, None),
    ]
    for path, token, status, error in cases:
        s = Stream(asgi_url, path, token)
        assert s.status == status, (path, s.status)
        if error:
            body = s.json()
            assert body["error"] == error and body["error_description"], (path, body)
        s.close()


def test_a_customer_streams_its_own_devices_only(asgi_url, cast, fleet):
    customer = Customer.objects.create(product=cast.product, email="c@example.com")
    Device.objects.filter(pk=fleet["a"]).update(customer=customer)
    token = customer_token(customer)
    assert Stream(asgi_url, f"/v1/products/{cast.product.pk}/events", token).status == 404
    assert Stream(asgi_url, f"/v1/devices/{fleet['b']}/events", token).status == 404
    s = opened(asgi_url, "/v1/devices/events", token)
    device_publish(fleet["b"], "x")
    wanted = device_publish(fleet["a"], "x")
    assert s.event().id == wanted.id
    s.close()


def test_a_stream_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice(asgi_url, cast, fleet):
    path = f"/v1/products/{cast.product.pk}/events"
    s = opened(asgi_url, path, cast.tokens["owner"])
    first = [device_publish(fleet["a"], "n", str(i)) for i in range(3)]
    seen = [s.event().id for _ in range(3)]
    assert seen == [e.id for e in first]
    s.close()
    missed = [device_publish(fleet["a" if i % 2 else "b"], "n", str(i)) for i in range(3, 8)]
    again = opened(asgi_url, path, cast.tokens["owner"], headers={"Last-Event-ID": seen[-1]})
    replayed = [again.event() for _ in range(5)]
    assert [f.id for f in replayed] == [e.id for e in missed]
    assert [f.data["data"] for f in replayed] == ["3", "4", "5", "6", "7"]
    live = device_publish(fleet["a"], "n", "8")
    assert again.event().id == live.id
    again.close()


def test_an_unknown_last_event_id_is_refused_and_a_trimmed_one_is_said(asgi_url, cast, fleet, settings):
    s = Stream(asgi_url, f"/v1/products/{cast.product.pk}/events", cast.tokens["owner"],
               headers={"Last-Event-ID": "yesterday"})
    assert (s.status, s.json()["error"]) == (400, "invalid_request")
    device_publish(fleet["a"], "n")
    s = opened(asgi_url, f"/v1/products/{cast.product.pk}/events", cast.tokens["owner"],
               headers={"Last-Event-ID": "1-0"})
    note = s.frame(5)
    assert "no longer kept" in (note.comment or ""), note
    s.close()


def test_keepalives_come_while_nothing_happens(asgi_url, cast, settings):
    settings.EVENTS_KEEPALIVE_SECONDS = 1.0
    s = opened(asgi_url, f"/v1/products/{cast.product.pk}/events", cast.tokens["owner"])
    started = time.monotonic()
    lines = [s.readline(5) for _ in range(3)]
    assert lines == [b"\n", b"\n", b"\n"]
    assert 1.5 <= time.monotonic() - started <= 6
    s.close()


def test_an_address_may_hold_only_so_many_streams_at_once(asgi_url, cast, settings):
    settings.EVENTS_MAX_STREAMS_PER_ADDRESS = 2
    path = f"/v1/products/{cast.product.pk}/events"
    one, two = opened(asgi_url, path, cast.tokens["owner"]), opened(asgi_url, path, cast.tokens["owner"])
    third = Stream(asgi_url, path, cast.tokens["owner"])
    assert (third.status, third.json()["error"]) == (529, "rate_limited")
    one.close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the closed stream at its next write or disconnect check
        s = Stream(asgi_url, path, cast.tokens["owner"])
        if s.status == 200 or time.monotonic() > deadline:
            break
        s.close()
        time.sleep(0.2)
    assert s.status == 200
    s.close()
    two.close()


def test_a_stream_holds_no_thread_while_it_waits(asgi_url, cast):
    import threading

    before = threading.active_count()
    path = f"/v1/products/{cast.product.pk}/events"
    opened_streams = [opened(asgi_url, path, cast.tokens["owner"]) for _ in range(20)]
    assert threading.active_count() - before < 5
    for s in opened_streams:
        s.close()


# --- publishing -----------------------------------------------------------------------------------------------


def test_publishing_through_the_api_reaches_the_callers_stream(asgi_url, cast, api):
    s = opened(asgi_url, "/v1/devices/events", cast.tokens["owner"])
    r = cast.api("owner").post("/v1/devices/events", {"name": "hello/world", "data": "hi", "private": True,
                                                      "ttl": 30})
    assert (r.status_code, r.json()) == (200, {"ok": True})
    got = s.event()
    assert (got.event, got.data["data"], got.data["coreid"], got.data["ttl"]) == ("hello/world", "hi", "api", 30)
    s.close()


def test_publishing_to_a_product_as_one_of_its_devices(asgi_url, cast, fleet):
    s = opened(asgi_url, f"/v1/products/{cast.product.pk}/devices/{fleet['a']}/events", cast.tokens["owner"])
    r = cast.api("developer").post(f"/v1/products/{cast.product.pk}/events",
                                   {"name": "cmd", "data": "go", "as_device_id": fleet["a"]})
    assert r.status_code == 200
    got = s.event()
    assert (got.event, got.data["coreid"]) == ("cmd", fleet["a"])
    s.close()


@pytest.mark.parametrize("payload,field", [
    ({"data": "x"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"name": "spark/status", "data": "online"}, "name"),
    ({"name": "a\nb"}, "name"),
    ({"name": "big", "data": "x" * 1025}, "data"),
    ({"name": "obj", "data": {"a": 1}}, "data"),
    ({"name": "t", "ttl": "soon"}, "ttl"),
    ({"name": "t", "ttl": -1}, "ttl"),
])
def test_bad_publishes_get_a_clear_error_and_publish_nothing(cast, payload, field):
    r = cast.api("owner").post("/v1/devices/events", payload)
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["error"] == "invalid_request" and body["error_description"].startswith(f"{field}:"), body
    assert events.presence.client().xlen(events.bus_key()) == 0


def test_the_data_limit_is_a_setting(cast, settings):
    settings.EVENT_DATA_MAX_BYTES = 16384
    assert cast.api("owner").post("/v1/devices/events", {"name": "big", "data": "x" * 16384}).status_code == 200


def test_who_may_publish_to_a_product(cast, fleet):
    path = f"/v1/products/{cast.product.pk}/events"
    assert cast.api("viewer").post(path, {"name": "x"}).status_code == 403
    assert cast.api("support").post(path, {"name": "x"}).status_code == 403
    assert cast.api("outsider").post(path, {"name": "x"}).status_code == 404
    assert cast.api("developer").post(path, {"name": "x"}).status_code == 200
    r = cast.api("owner").post(path, {"name": "x", "as_device_id": fleet["theirs"]})
    assert r.status_code == 404


def test_the_device_routes_no_longer_swallow_the_event_routes(cast, fleet):
    """`/v1/devices/events` used to reach the device-detail view as a device named "events"."""
    r = cast.api("owner").post("/v1/devices/events", {"name": "x"})
    assert (r.status_code, r.json()) == (200, {"ok": True})


def test_with_many_streams_each_wakes_once_for_several_events(settings):
    """Past EVENTS_COALESCE_ABOVE streams a process wakes each stream once per EVENTS_COALESCE_SECONDS, not
    once per event; below it, at once."""
    import asyncio

    from devices import streams

    def bus(n: int) -> events.BusEvent:
        return events.BusEvent(id=f"{n}-0", name="t", data=str(n), coreid="c" * 24, published_at="", ttl=60,
                               product_id=1, user_id=None, customer_id=None, org_id=None, hook=False,
                               origin="device")

    async def run(above: int):
        settings.EVENTS_COALESCE_ABOVE, settings.EVENTS_COALESCE_SECONDS = above, 0.2
        hub = streams.StreamHub(asyncio.get_running_loop())
        subs = [streams.Subscriber(streams.StreamScope("p:1")) for _ in range(3)]
        hub.by_audience["p:1"] = set(subs)
        for n in range(1, 4):
            hub.dispatch(bus(n))
        await asyncio.sleep(0.05)
        early = [s.wake.is_set() for s in subs]
        await asyncio.sleep(0.3)
        await hub.redis.aclose()
        return early, [s.wake.is_set() for s in subs], [len(s.queue) for s in subs]

    early, late, queued = asyncio.run(run(above=2))
    assert (early, late, queued) == ([False] * 3, [True] * 3, [3] * 3)
    early, _, _ = asyncio.run(run(above=10))
    assert early == [True] * 3
