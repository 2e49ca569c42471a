"""Events through the official npm clients against a live Cyan (real uvicorn, so streams stream):
particle-api-js@12.0.3 `getEventStream` (including 20 s with no events and no disconnect) and `publishEvent`;
particle-cli@3.43.1 `subscribe` and `publish`. Facts: particle-api.md §13, Part B §1.6, §2, §3.2."""

from __future__ import annotations

import subprocess

import pytest

from devices import events
from tests.support.clients import ApiJsStream, js, make_cli, ok
from tests.support.env import need, node_available
from tests.support.fleet import import_devices
from tests.support.presence import clear_presence

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live(asgi_url, npm_clients):
    need(node_available(), "node/npm not installed")
    clear_presence()
    yield asgi_url
    clear_presence()


def device_publish(device_id: str, name: str, data: str) -> events.BusEvent:
    (out,) = events.events_publish([events.event_make(device_id=device_id, name=name, data=data)])
    return out


def test_apijs_product_stream_receives_device_events(live, cast):
    (device,) = import_devices(cast.product, 1)
    stream = ApiJsStream(live, {"product": cast.product.slug}, auth=cast.tokens["viewer"], wanted=2)
    try:
        assert stream.next()["type"] == "open"
        first = device_publish(device, "temp", "21.5")
        device_publish(device, "temp/x", "22")
        got = [stream.until("event")["event"] for _ in range(2)]
    finally:
        stream.close()
    assert [(e["name"], e["data"]) for e in got] == [("temp", "21.5"), ("temp/x", "22")]
    assert got[0]["coreid"] == device and got[0]["published_at"] == first.published_at


def test_apijs_stream_with_a_name_and_a_device(live, cast):
    a, b = import_devices(cast.product, 2)
    stream = ApiJsStream(live, {"product": cast.product.slug, "deviceId": a, "name": "sensor/temp"},
                         auth=cast.tokens["owner"])
    try:
        assert stream.next()["type"] == "open"
        device_publish(b, "sensor/temp", "other device")
        device_publish(a, "sensor/humidity", "other name")
        device_publish(a, "sensor/temperature", "this")
        got = stream.until("event")["event"]
    finally:
        stream.close()
    assert (got["name"], got["data"]) == ("sensor/temperature", "this")


def test_apijs_stream_stays_up_for_20_s_without_events(live, cast):
    (device,) = import_devices(cast.product, 1)
    stream = ApiJsStream(live, {"product": cast.product.slug}, auth=cast.tokens["owner"], wanted=1, seconds=40)
    try:
        assert stream.next()["type"] == "open"
        with pytest.raises(TimeoutError):
            stream.next(timeout=20)  # no disconnect (api-js drops a stream silent for 15 s), no reconnect
        device_publish(device, "late", "after 20 s")
        got = stream.next()
    finally:
        stream.close()
    assert got["type"] == "event" and got["event"]["name"] == "late"


def test_apijs_stream_refused_with_a_bad_token_or_for_an_outsider(live, cast):
    bad = ApiJsStream(live, {"product": cast.product.slug}, auth="0" * 40)
    outsider = ApiJsStream(live, {"product": cast.product.slug}, auth=cast.tokens["outsider"])
    try:
        refused, hidden = bad.next(), outsider.next()
    finally:
        bad.close()
        outsider.close()
    assert (refused["type"], refused["statusCode"]) == ("failed", 401)
    assert refused["errorDescription"].endswith("The access token provided is invalid.")
    assert (hidden["type"], hidden["statusCode"]) == ("failed", 404)
    assert hidden["errorDescription"].endswith(f"Product {cast.product.slug} not found")


def test_apijs_publish_event_reaches_the_callers_own_stream(live, cast):
    stream = ApiJsStream(live, {"deviceId": "mine"}, auth=cast.tokens["developer"])
    try:
        assert stream.next()["type"] == "open"
        result = js(live, "publishEvent", {"name": "from-apijs", "data": "hello", "isPrivate": True,
                                           "auth": cast.tokens["developer"]})
        assert ok(result) == {"ok": True}
        got = stream.until("event")["event"]
    finally:
        stream.close()
    assert (got["name"], got["data"], got["coreid"]) == ("from-apijs", "hello", "api")


def test_apijs_publish_to_a_product(live, cast):
    stream = ApiJsStream(live, {"product": cast.product.pk}, auth=cast.tokens["viewer"])
    try:
        assert stream.next()["type"] == "open"
        result = js(live, "publishEvent", {"name": "fleet/cmd", "data": "reboot", "product": cast.product.slug,
                                           "auth": cast.tokens["developer"]})
        assert ok(result) == {"ok": True}
        got = stream.until("event")["event"]
    finally:
        stream.close()
    assert (got["name"], got["data"]) == ("fleet/cmd", "reboot")


def test_cli_subscribe_and_publish(live, cast, tmp_path):
    cli = make_cli(tmp_path / "home", live)
    config = cli.config
    config["access_token"], config["username"] = cast.tokens["owner"], cast.owner.email
    cli.config_path.write_text(__import__("json").dumps(config))
    (device,) = import_devices(cast.product, 1)
    sub = subprocess.Popen(["node", str(cli.bin), "subscribe", "cli-test", "--product", cast.product.slug,
                            "--max", "2"], cwd=cli.home, env=cli._env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        import time

        # The CLI prints nothing machine-readable when the stream opens: publish until it has seen two.
        deadline = time.monotonic() + 30
        n = 0
        while sub.poll() is None and time.monotonic() < deadline:
            device_publish(device, "cli-test/temp", f"v{n}")
            n += 1
            time.sleep(0.5)
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert sub.returncode == 0, err
    lines = [__import__("json").loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and all(e["name"] == "cli-test/temp" and e["coreid"] == device for e in lines), out
    published = cli.run("publish", "cli-pub", "some data")
    assert published.returncode == 0, published.stderr
    assert "Published private event: cli-pub" in published.stdout
