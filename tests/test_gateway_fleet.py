"""The gateway with the fleet simulator over 127.0.0.1: several gateway processes' worth of hubs, a crash, a
restart, a clean stop. The simulator is a separate device-side implementation (devices/simulator), so these
meet Device OS's quirks rather than our own codec's."""

from __future__ import annotations

import time

import pytest

from devices import presence
from devices.keys import server_private_key
from devices.services import liveness
from tests.support.fleet import keyed_photons, online_rows
from tests.support.polling import wait_for
from tests.support.gateway import running_gateway
from tests.support.simulator import running_fleet
from tests.support.worker import running_celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def fleet_options(**extra):
    return dict(server_key=server_private_key().public_key(), reconnect_jitter=0.5, backoff_unit=0.2, **extra)


@pytest.fixture
def worker(transactional_db):
    with running_celery_worker():
        yield


def test_a_function_call_reaches_a_device_on_either_of_two_gateways(worker):
    left, right = keyed_photons(3), keyed_photons(3)
    with running_gateway() as gw1, running_gateway() as gw2, \
            running_fleet(left, "127.0.0.1", gw1.port, **fleet_options()) as sim1, \
            running_fleet(right, "127.0.0.1", gw2.port, **fleet_options()) as sim2:
        assert sim1.wait_connected(timeout=15) and sim2.wait_connected(timeout=15)
        everyone = [s.device_id for s in left + right]
        assert wait_for(lambda: online_rows(everyone) == set(everyone))
        assert {presence.device_location(s.device_id).gateway for s in left} == {gw1.hub.id}
        assert {presence.device_location(s.device_id).gateway for s in right} == {gw2.hub.id}
        for spec in left + right:
            answer = presence.device_request(spec.device_id, "function", name="echo", arg="x" * 7, timeout=5)
            assert answer == {"ok": True, "return_value": 7}, spec.device_id


def test_a_device_that_moves_to_another_gateway_is_closed_on_the_first(worker):
    (spec,) = keyed_photons(1)
    with running_gateway() as gw1, running_gateway() as gw2:
        with running_fleet([spec], "127.0.0.1", gw1.port, **fleet_options(reconnect=False)) as first:
            assert first.wait_connected(timeout=15)
            assert wait_for(lambda: online_rows([spec.device_id]))
            with running_fleet([spec], "127.0.0.1", gw2.port, **fleet_options()) as second:
                assert second.wait_connected(timeout=15)
                assert wait_for(lambda: presence.device_location(spec.device_id).gateway == gw2.hub.id)
                # The first connection is told to close (through gw1's command channel) and does.
                assert first.wait_until(lambda fleet: fleet.online_count() == 0, timeout=10)
                assert wait_for(lambda: gw1.call(lambda: spec.device_id not in gw1.hub.sessions))
                gw1.run(gw1.hub.closes.drain())  # gw1 has finished with the old session's end
                assert presence.device_location(spec.device_id).gateway == gw2.hub.id
                assert presence.device_request(spec.device_id, "ping", timeout=5) == {"ok": True}
                assert online_rows([spec.device_id]) == {spec.device_id}


def test_a_crashed_gateway_leaves_no_device_wrongly_online_and_its_fleet_comes_back_spread(worker, settings):
    settings.GATEWAY_HEARTBEAT_TTL = 2
    returning, gone = keyed_photons(30), keyed_photons(6)
    everyone = [s.device_id for s in returning + gone]
    with running_gateway() as crashed:
        port = crashed.port
        with running_fleet(gone, "127.0.0.1", port, **fleet_options(reconnect=False)) as leavers, \
                running_fleet(returning, "127.0.0.1", port, **fleet_options()) as stayers:
            assert leavers.wait_connected(timeout=20) and stayers.wait_connected(timeout=20)
            assert wait_for(lambda: online_rows(everyone) == set(everyone))
            cut_at = time.time()
            crashed.abort()  # as SIGKILL: nothing released, nothing marked offline
            assert online_rows(everyone) == set(everyone)
            settings.GATEWAY_MAX_HANDSHAKES_PER_SECOND = 10.0
            with running_gateway(port=port) as restarted:
                assert stayers.wait_connected(timeout=30)
                back = sorted(d.hello_at for d in stayers.devices)
                # The restarted gateway takes 10 new connections a second; the rest back off and come later.
                assert back[-1] - back[0] >= 1.5, back
                assert restarted.hub.stats["refused_busy"] > 0
                # The dead gateway's heartbeat expires; its devices that did not come back go offline.
                assert wait_for(lambda: liveness.gateways_reap() >= 0 and online_rows(everyone) ==
                                {s.device_id for s in returning}, timeout=20), online_rows(everyone)
                for spec in gone:
                    assert presence.device_location(spec.device_id) is None
                assert all(presence.device_location(s.device_id).gateway == restarted.hub.id for s in returning)
    assert cut_at < back[0]


def test_a_clean_stop_marks_every_device_offline_at_once(worker):
    specs = keyed_photons(5)
    device_ids = [s.device_id for s in specs]
    with running_gateway() as gw:
        with running_fleet(specs, "127.0.0.1", gw.port, **fleet_options(reconnect=False)) as sim:
            assert sim.wait_connected(timeout=15)
            assert wait_for(lambda: online_rows(device_ids) == set(device_ids))
            gw.run(gw.hub.stop())
            assert online_rows(device_ids) == set()
            assert presence.devices_connected(device_ids) == set()
            assert presence.client().sismember(presence.all_gateways_key(), gw.hub.id) == 0
