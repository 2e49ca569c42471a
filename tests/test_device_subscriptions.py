"""Device subscriptions (devices/gateway/hub.py): events a device subscribed to (`CON GET /e/<prefix>`) reach
it over the real protocol — its owner's events, and its product's events that no device published — and each
delivery counts its data operations. The simulator plays the devices against the real gateway."""

from __future__ import annotations

import pytest

from billing import metering
from billing.models import DataOperationDay
from devices import events
from devices.models import Device
from devices.simulator import coap
from devices.simulator.coap import CON, Message
from tests.factories import UserFactory, make_org, make_product
from tests.support.fleet import keyed_photons, online_rows
from tests.support.gateway import running_gateway
from tests.support.polling import wait_for
from tests.support.presence import clear_presence
from tests.support.simulator import running_fleet
from tests.support.worker import running_celery_worker
from devices.keys import server_key_file

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(transactional_db):
    clear_presence()
    metering.client().delete(metering.pending_key(), metering.folding_key())
    with running_celery_worker():
        yield
    clear_presence()


def options() -> dict:
    return dict(server_key=server_key_file("127.0.0.1"), reconnect_jitter=0.3, backoff_unit=0.2, record=True)


def subscribe(sim, index: int, prefix: str) -> None:
    def send(fleet):
        device = fleet.devices[index]
        device.send(Message(CON, coap.GET, device.message_id(), token=device.token(),
                            options=[(coap.URI_PATH, b"e"), (coap.URI_PATH, prefix.encode()), (coap.URI_QUERY, b"u")]))
    sim.call(send)


def received(sim, index: int) -> list[tuple[str, str]]:
    """The events the device was sent (`POST /E/<name>`), in order."""
    def read(fleet):
        return [("/".join(m.path[1:]), m.payload.decode()) for m in fleet.devices[index].received
                if m.code == coap.POST and m.path[:1] in (["E"], ["e"])]
    return sim.call(read)


def publish(device_id: str, name: str, data: str = "") -> None:
    events.events_publish([events.event_make(device_id=device_id, name=name, data=data)])


def test_a_device_receives_its_owners_events_that_it_subscribed_to(worker):
    owner, stranger = UserFactory(email="owner@example.com"), UserFactory(email="stranger@example.com")
    specs = keyed_photons(2, own_keys=True)
    listener, sibling = (s.device_id for s in specs)
    Device.objects.filter(pk__in=[listener, sibling]).update(owner=owner)
    (foreign,) = (s.device_id for s in keyed_photons(1))
    Device.objects.filter(pk=foreign).update(owner=stranger)
    with running_gateway() as gw, running_fleet(specs, "127.0.0.1", gw.port, **options()) as sim:
        assert sim.wait_connected(timeout=15)
        assert wait_for(lambda: online_rows([listener, sibling]) == {listener, sibling})
        subscribe(sim, 0, "temp")
        assert wait_for(lambda: gw.call(lambda: bool(gw.hub.sessions[listener].audiences)))
        publish(sibling, "humidity", "no: another name")
        publish(foreign, "temp", "no: another owner's device")
        publish(sibling, "temp/room", "21.5")
        events.events_publish([events.event_make(device_id=events.API, name="temperature", data="from the API",
                                                 user_id=owner.pk)])
        publish(sibling, "spark/status", "no: the cloud's own")
        assert wait_for(lambda: len(received(sim, 0)) >= 2)
        # Nothing else arrives: the sibling's unsubscribed name, the foreign device, the cloud's own event.
        publish(sibling, "temp/last", "x" * 600)  # near the most a Gen 2 device takes (622 bytes)
        assert wait_for(lambda: len(received(sim, 0)) >= 3)
        assert received(sim, 0) == [("temp/room", "21.5"), ("temperature", "from the API"), ("temp/last", "x" * 600)]
        assert received(sim, 1) == []  # the sibling subscribed to nothing
    metering.operations_fold()
    counts = {(r.scope, r.ref): r.count for r in DataOperationDay.objects.all()}
    # The listener's three deliveries; the sibling's three publishes (humidity, temp/room, temp/last).
    assert counts[("d", listener)] == 3
    assert counts[("d", sibling)] == 3


def test_a_product_device_receives_the_products_api_events_but_not_other_devices_events(worker):
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Photons", platform_id=6)
    specs = keyed_photons(2, own_keys=True)
    listener, other = (s.device_id for s in specs)
    Device.objects.filter(pk__in=[listener, other]).update(product=product)
    with running_gateway() as gw, running_fleet(specs, "127.0.0.1", gw.port, **options()) as sim:
        assert sim.wait_connected(timeout=15)
        assert wait_for(lambda: online_rows([listener, other]) == {listener, other})
        subscribe(sim, 0, "cmd")
        assert wait_for(lambda: gw.call(lambda: bool(gw.hub.sessions[listener].audiences)))
        publish(other, "cmd/from-a-device", "no: unclaimed devices do not hear each other")
        events.events_publish([events.event_make(device_id=events.API, name="cmd/reboot", data="now",
                                                 product_id=product.pk)])
        assert wait_for(lambda: received(sim, 0) == [("cmd/reboot", "now")])


def test_a_subscription_sent_before_the_device_is_online_takes_effect_once_it_is(worker):
    owner = UserFactory(email="owner@example.com")
    (spec,) = keyed_photons(1, own_keys=True)
    Device.objects.filter(pk=spec.device_id).update(owner=owner)
    with running_gateway() as gw, running_fleet([spec], "127.0.0.1", gw.port, **options()) as sim:
        assert sim.wait_connected(timeout=15)
        subscribe(sim, 0, "early")  # may arrive while onboarding decides: kept, and fed once online
        assert wait_for(lambda: online_rows([spec.device_id]))
        assert wait_for(lambda: gw.call(lambda: bool(gw.hub.sessions[spec.device_id].audiences)))
        events.events_publish([events.event_make(device_id=events.API, name="early/bird", user_id=owner.pk)])
        assert wait_for(lambda: received(sim, 0) == [("early/bird", "")])
