"""Onboarding end to end: simulated devices (devices/simulator) → Cyan's gateway (tests/support/gateway.py) →
sessions_open → a real Celery worker → the device let in, or held in quarantine until an approval lets it in
without reconnecting."""

from __future__ import annotations

import pytest

pytest.importorskip("devices.gateway.hub", reason="the device gateway (devices/gateway/) is not merged yet")

from console.scoping import Principal  # noqa: E402
from console.services.users import sandbox_of  # noqa: E402
from devices import events  # noqa: E402
from devices.models import Device, Onboarding  # noqa: E402
from devices.services.importing import device_import  # noqa: E402
from tests.factories import UserFactory, make_product  # noqa: E402
from tests.support.gateway import running_gateway  # noqa: E402
from tests.support.simulator import running_fleet  # noqa: E402
from tests.support.worker import running_celery_worker  # noqa: E402
from tests.support.fleet import keyed_photons  # noqa: E402
from tests.support.polling import wait_for  # noqa: E402
from tests.test_simulator_gateway import options  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(transactional_db):
    with running_celery_worker():
        yield


def test_quarantine_then_approval_lets_the_waiting_device_in_without_reconnecting(worker):
    owner = UserFactory(email="maker@example.com")
    product = make_product(sandbox_of(owner), name="Photon Lamps", platform_id=6)
    specs = keyed_photons(1, own_keys=True)
    device_id = specs[0].device_id
    # Product firmware: the product's id and a version (65535 would mean "no product firmware").
    with running_gateway() as gw, running_fleet(specs, "127.0.0.1", gw.port,
                                                **options(product_id=product.pk, firmware_version=3)) as sim:
        assert sim.wait_connected(timeout=15), [d.last_error for d in sim.devices]
        assert wait_for(lambda: Onboarding.objects.filter(device_id=device_id, state="done",
                                                          outcome="quarantined").exists(), 20), \
            list(Onboarding.objects.values_list("state", "outcome", "reason"))
        device = Device.objects.get(pk=device_id)
        assert (device.product_id, device.quarantined, device.online) == (product.pk, True, False)
        device_import(principal=Principal.for_user(owner), product=product, values=[(1, device_id)])
        assert wait_for(lambda: Device.objects.filter(pk=device_id, online=True, quarantined=False).exists(), 15)
        assert sim.devices[0].connects == 1  # let in on the connection that waited
        assert [e["data"] for e in events.device_events_recent(device_id) if e["name"] == "spark/status"] == [
            "online"]


def test_a_claim_code_sent_with_the_hello_waits_for_the_quarantine_decision(worker):
    """Device OS sends its claim code right after the Hello. The gateway holds it until the Hello's verdict is
    back, so the code lands on the Onboarding row (and, the device being quarantined, waits there for the
    approval) instead of racing the Hello and claiming a device that is about to be quarantined."""
    from devices.services import claims

    owner = UserFactory(email="claimer@example.com")
    product = make_product(sandbox_of(owner), name="Photon Claimers", platform_id=6)
    code = claims.claim_code_create(principal=Principal.for_user(owner)).code
    specs = keyed_photons(3, own_keys=True)
    device_ids = [s.device_id for s in specs]
    with running_gateway() as gw:
        # A busy gateway: the Hello's batch is slower than the claim-code batch (0.05 s), as under load.
        gw.hub.opens.delay = 0.5
        with running_fleet(specs, "127.0.0.1", gw.port, claim_code=code,
                           **options(product_id=product.pk, firmware_version=3)) as sim:
            assert sim.wait_connected(timeout=15), [d.last_error for d in sim.devices]
            assert wait_for(lambda: Onboarding.objects.filter(device_id__in=device_ids, state="done",
                                                              outcome="quarantined").count() == 3, 20)
            assert wait_for(lambda: Onboarding.objects.filter(device_id__in=device_ids).exclude(claim_code="")
                            .count() == 3, 5)
            assert not Device.objects.filter(pk__in=device_ids, owner__isnull=False).exists()
            assert set(Device.objects.filter(pk__in=device_ids).values_list("quarantined", flat=True)) == {True}
