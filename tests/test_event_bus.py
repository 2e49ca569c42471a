"""The event bus (devices/events.py): who each event goes to, its id, replay streams, data operations counted
once and folded into the database once (billing/metering.py), and the consumers' view. Real Redis, real DB."""

from __future__ import annotations

from datetime import date

import pytest

from billing import metering
from billing.models import DataOperationDay
from billing.selectors import data_operations_daily
from console.services.users import sandbox_of
from devices import events, presence
from devices.models import Customer, Device
from tests.factories import UserFactory, make_org, make_product
from tests.support.fleet import ids, import_devices, manufacture
from tests.support.presence import clear_presence

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_bus():
    clear_presence()
    metering.client().delete(metering.pending_key(), metering.folding_key())
    yield
    clear_presence()


@pytest.fixture
def world():
    owner = UserFactory(email="owner@example.com")
    claimer = UserFactory(email="claimer@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers", platform_id=13)
    sandbox_product = make_product(sandbox_of(owner), name="Mine", platform_id=13)
    claimed, unclaimed, quarantined, with_customer = import_devices(product, 4)
    Device.objects.filter(pk=claimed).update(owner=claimer)
    Device.objects.filter(pk=quarantined).update(quarantined=True, owner=claimer)
    customer = Customer.objects.create(product=product, email="c@example.com")
    Device.objects.filter(pk=with_customer).update(customer=customer)
    (loose,) = ids(manufacture(13, 1))
    Device.objects.filter(pk=loose).update(owner=claimer)
    (in_sandbox_product,) = import_devices(sandbox_product, 1)
    return {"owner": owner, "claimer": claimer, "org": org, "product": product, "sandbox_product": sandbox_product,
            "claimed": claimed, "unclaimed": unclaimed, "quarantined": quarantined, "customer": customer,
            "with_customer": with_customer, "loose": loose, "in_sandbox_product": in_sandbox_product}


def publish(device_id: str, name: str = "temp", data: str = "21.5") -> events.BusEvent:
    (out,) = events.events_publish([events.event_make(device_id=device_id, name=name, data=data)])
    return out


def test_a_device_event_goes_to_its_owner_its_customer_its_product_and_the_products_org(world):
    p, org = world["product"].pk, world["org"].pk
    claimer = world["claimer"].pk
    assert publish(world["claimed"]).audiences == (f"u:{claimer}", f"p:{p}", f"o:{org}")
    assert publish(world["unclaimed"]).audiences == (f"p:{p}", f"o:{org}")
    assert publish(world["with_customer"]).audiences == (f"c:{world['customer'].pk}", f"p:{p}", f"o:{org}")
    # Quarantined: not a member yet, so not the product's; still its claimer's.
    assert publish(world["quarantined"]).audiences == (f"u:{claimer}",)
    assert publish(world["loose"]).audiences == (f"u:{claimer}",)
    # A sandbox product has no organization stream.
    assert publish(world["in_sandbox_product"]).audiences == (f"p:{world['sandbox_product'].pk}",)
    assert publish("0123456789abcdef01234567").audiences == ()  # never manufactured: nobody's


def test_api_and_integration_events_keep_the_audience_they_were_given(world):
    p = world["product"].pk
    (api,) = events.events_publish([events.event_make(device_id=events.API, name="hello", user_id=7)])
    assert (api.origin, api.audiences) == ("api", ("u:7",))
    (product_api,) = events.events_publish([events.event_make(device_id=events.API, name="x", product_id=p)])
    assert product_api.audiences == (f"p:{p}", f"o:{world['org'].pk}")
    (hook,) = events.events_publish([events.event_make(device_id=world["unclaimed"], name="hook-sent/temp",
                                                       product_id=p, hook=True)])
    assert (hook.origin, hook.hook, hook.audiences) == ("cloud", True, (f"p:{p}", f"o:{world['org'].pk}"))


def test_ids_increase_and_each_audience_stream_holds_the_same_ids(world):
    sent = [publish(world["claimed"], data=str(n)) for n in range(5)]
    assert [e.id for e in sent] == sorted({e.id for e in sent}, key=lambda i: tuple(map(int, i.split("-"))))
    r = presence.client()
    for audience in sent[0].audiences:
        kept = r.xrange(events.replay_key(audience))
        assert [i.decode() for i, _ in kept] == [e.id for e in sent]
        assert [events.bus_event(i.decode(), f[b"e"]).data for i, f in kept] == ["0", "1", "2", "3", "4"]
    assert [i.decode() for i, _ in r.xrange(events.bus_key())] == [e.id for e in sent]
    history = events.device_events_recent(world["claimed"], 10)
    assert [(h["id"], h["data"]) for h in history] == [(e.id, e.data) for e in reversed(sent)]


def test_replay_streams_are_capped(world, settings):
    settings.EVENTS_REPLAY_LENGTH = 10
    for n in range(300):
        publish(world["unclaimed"], data=str(n))
    kept = presence.client().xlen(events.replay_key(f"p:{world['product'].pk}"))
    assert 10 <= kept < 300  # approximate trimming keeps at least the cap, far fewer than everything


def test_consumers_see_every_published_event_once_with_its_id(world):
    seen = []
    events.register_consumer(seen.extend)
    try:
        batch = [events.event_make(device_id=world["claimed"], name=f"e{n}") for n in range(3)]
        out = events.events_publish(batch)
        assert events.events_publish_once({"once:a": [events.event_make(device_id=world["claimed"], name="o")]}) == 1
        assert events.events_publish_once({"once:a": [events.event_make(device_id=world["claimed"], name="o")]}) == 0
    finally:
        events._consumers.remove(seen.extend)
    assert [e.name for e in seen] == ["e0", "e1", "e2", "o"]
    assert [e.id for e in seen[:3]] == [e.id for e in out]


def test_data_operations_count_device_publishes_by_the_started_kilobyte(world):
    device, p = world["claimed"], world["product"]
    publish(device, data="")                # 1
    publish(device, data="x" * 1024)        # 1
    publish(device, data="x" * 1025)        # 2
    publish(device, name="spark/status", data="online")  # the cloud's own: 0
    events.events_publish([events.event_make(device_id=events.API, name="api", data="x", user_id=1)])  # 0
    events.events_publish([events.event_make(device_id=device, name="hook-response/t/0", data="x",
                                             product_id=p.pk, hook=True)])  # counted on delivery, not here: 0
    publish(world["loose"], data="y")       # a sandbox device: its owner's sandbox account
    assert metering.operations_fold() == 5
    today = date.today()
    assert data_operations_daily("d", device, today, today) == {today: 4}
    assert data_operations_daily("p", p.pk, today, today) == {today: 4}
    assert data_operations_daily("a", p.account_id, today, today) == {today: 4}
    assert data_operations_daily("a", sandbox_of(world["claimer"]).pk, today, today) == {today: 1}
    publish(device, data="again")
    metering.operations_fold()
    assert data_operations_daily("d", device, today, today) == {today: 5}


def test_a_fold_that_died_after_committing_is_not_added_twice(world):
    publish(world["unclaimed"], data="z")
    # A fold that took its batch and committed it, then was killed before letting go of it (steps 1 and 2).
    batch, values = metering._take()
    assert metering._add(batch, values) == 3
    publish(world["unclaimed"], data="w")  # counted while the dead fold's batch still waits
    assert metering.operations_fold() == 0  # the dead fold's batch: already in, only let go
    assert metering.operations_fold() == 3  # then the new counts
    rows = {(r.scope, r.ref): r.count for r in DataOperationDay.objects.all()}
    assert rows[("d", world["unclaimed"])] == 2
