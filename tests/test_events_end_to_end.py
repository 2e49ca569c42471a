"""A device's publish, over the real protocol, to an API stream over real HTTP: the simulator publishes through
the gateway, with and without acknowledgement as Device OS sends them, and a product stream on uvicorn
receives each event once, in order, with the device's TTL; the device gets its ACK for the WITH_ACK one."""

from __future__ import annotations

import pytest

from devices.keys import server_key_file
from devices.models import Device
from devices.simulator import coap
from tests.factories import UserFactory, make_org, make_product
from tests.support.api import user_token
from tests.support.fleet import keyed_photons, online_rows
from tests.support.gateway import running_gateway
from tests.support.polling import wait_for
from tests.support.presence import clear_presence
from tests.support.simulator import running_fleet
from tests.support.sse import Stream
from tests.support.worker import running_celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_device_publishes_reach_a_product_stream_with_and_without_ack(asgi_url):
    clear_presence()
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Photons", platform_id=6)
    (spec,) = keyed_photons(1, own_keys=True)
    Device.objects.filter(pk=spec.device_id).update(product=product)
    options = dict(server_key=server_key_file("127.0.0.1"), reconnect_jitter=0.3, backoff_unit=0.2, record=True)
    with running_celery_worker(), running_gateway() as gw, \
            running_fleet([spec], "127.0.0.1", gw.port, **options) as sim:
        assert sim.wait_connected(timeout=15)
        assert wait_for(lambda: online_rows([spec.device_id]))
        stream = Stream(asgi_url, f"/v1/products/{product.pk}/events/sensor", user_token(owner))
        assert stream.status == 200 and stream.frame().comment == "ok"

        def publish(fleet):
            device = fleet.devices[0]
            device.publish("sensor/plain", "1")
            acked = device.next_id
            device.publish("sensor/acked", "2", with_ack=True, ttl=3600)
            device.publish("other", "not in the prefix")
            device.publish("sensor/public", "3", private=False)
            return acked
        acked_id = sim.call(publish)
        got = [stream.event() for _ in range(3)]
        stream.close()
        assert wait_for(lambda: sim.call(lambda fleet: any(
            m.type == coap.ACK and m.message_id == acked_id for m in fleet.devices[0].received)))
    assert [(f.event, f.data["data"], f.data["ttl"]) for f in got] == [
        ("sensor/plain", "1", 60), ("sensor/acked", "2", 3600), ("sensor/public", "3", 60)]
    assert all(f.data["coreid"] == spec.device_id for f in got)
    assert len({f.id for f in got}) == 3
    clear_presence()
