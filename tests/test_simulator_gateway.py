"""The simulator against Cyan's own gateway (tests/support/gateway.py) with a real Celery worker: the same
flows as test_simulator_protocol.py's minimal cloud, now checked end to end — connect and Hello, the describe
reaching the device row, function and variable answers through presence.device_request (what the API calls),
keepalive pings the gateway answers, and reconnects when the gateway closes or refuses a connection."""

from __future__ import annotations

import time

import pytest

from devices import presence
from devices.keys import server_key_file
from devices.models import Device
from tests.support.fleet import keyed_photons, online_rows
from tests.support.polling import wait_for
from tests.support.gateway import running_gateway
from tests.support.simulator import running_fleet
from tests.support.worker import running_celery_worker

pytestmark = pytest.mark.django_db(transaction=True)


def options(**extra) -> dict:
    # The server key file exactly as `manage.py server_key` writes it for a device to hold.
    return dict(server_key=server_key_file("127.0.0.1"), reconnect_jitter=0.3, backoff_unit=0.2, record=True,
                **extra)


@pytest.fixture
def worker(transactional_db):
    with running_celery_worker():
        yield


def test_devices_connect_get_the_servers_hello_in_time_and_describe_themselves(worker):
    specs = keyed_photons(3, own_keys=True)
    device_ids = [s.device_id for s in specs]
    with running_gateway() as gw, running_fleet(specs, "127.0.0.1", gw.port, **options()) as sim:
        started = time.time()
        assert sim.wait_connected(timeout=15), [d.last_error for d in sim.devices]
        for device in sim.devices:
            # The gateway's Hello came inside the device's 4 s wait, on the first attempt.
            assert device.connects == 1 and device.failures == 0
            assert device.hello_at - started < 4 and device.handshake_time < 2
        assert wait_for(lambda: online_rows(device_ids) == set(device_ids))
        # The device-initiated describe reached the rows.
        assert wait_for(lambda: all(
            row.functions == ["led", "echo"] and row.variables == {"temperature": "double", "uptime": "int32",
                                                                  "name": "string"}
            for row in Device.objects.filter(pk__in=device_ids))), \
            list(Device.objects.filter(pk__in=device_ids).values_list("functions", "variables"))
        # The time request was answered with the Unix time.
        assert sim.wait_until(lambda fleet: all(d.server_time for d in fleet.devices), timeout=5)
        assert all(abs(d.server_time - time.time()) < 5 for d in sim.devices)


def test_functions_and_variables_are_answered_by_the_device(worker):
    (spec,) = keyed_photons(1, own_keys=True)
    with running_gateway() as gw, running_fleet([spec], "127.0.0.1", gw.port, **options()) as sim:
        assert sim.wait_connected(timeout=15)
        assert wait_for(lambda: online_rows([spec.device_id]))
        device = sim.devices[0]
        ask = presence.device_request
        assert ask(spec.device_id, "function", name="led", arg="on", timeout=5) == {"ok": True, "return_value": 1}
        assert device.led is True
        assert ask(spec.device_id, "function", name="led", arg="off", timeout=5) == {"ok": True, "return_value": 0}
        assert ask(spec.device_id, "function", name="led", arg="blink", timeout=5) == \
            {"ok": True, "return_value": -1}
        assert ask(spec.device_id, "function", name="echo", arg="hello, gateway", timeout=5) == \
            {"ok": True, "return_value": 14}
        temperature = ask(spec.device_id, "variable", name="temperature", timeout=5)
        assert temperature["ok"] and temperature["type"] == "double" and 17 < temperature["result"] < 25
        uptime = ask(spec.device_id, "variable", name="uptime", timeout=5)
        assert uptime["ok"] and uptime["type"] == "int32" and 0 <= uptime["result"] < 60
        assert ask(spec.device_id, "variable", name="name", timeout=5) == \
            {"ok": True, "result": f"sim-{spec.device_id[-6:]}", "type": "string"}
        assert ask(spec.device_id, "variable", name="pressure", timeout=5) == {"ok": False, "error": "not_found"}
        assert ask(spec.device_id, "ping", timeout=5)["ok"] is True
        assert ask(spec.device_id, "signal", on=True, timeout=5)["ok"] is True
        assert sim.call(lambda fleet: fleet.devices[0].signaling) is True
        assert device.connects == 1


def test_a_quiet_device_pings_and_the_gateway_answers(worker):
    (spec,) = keyed_photons(1, own_keys=True)
    with running_gateway() as gw, \
            running_fleet([spec], "127.0.0.1", gw.port, **options(ping_interval=0.7, ping_timeout=0.7)) as sim:
        assert sim.wait_connected(timeout=15)
        device = sim.devices[0]
        # Several pings, each answered within the device's timeout: it never had to reconnect.
        assert sim.wait_until(lambda fleet: device.pings_sent >= 3, timeout=10), device.pings_sent
        assert device.connected and device.connects == 1 and device.failures == 0
        assert wait_for(lambda: online_rows([spec.device_id]))


def test_a_device_the_gateway_closes_comes_back_at_once(worker):
    (spec,) = keyed_photons(1, own_keys=True)
    with running_gateway() as gw, running_fleet([spec], "127.0.0.1", gw.port, **options()) as sim:
        assert sim.wait_connected(timeout=15)
        device = sim.devices[0]
        gw.call(lambda: gw.hub.sessions[spec.device_id].transport.close("closed by the test"))
        closed = time.time()
        assert sim.wait_until(lambda fleet: device.connects == 2 and device.connected, timeout=10)
        assert device.hello_at - closed < 0.3 + 1.5       # the reconnect jitter, a handshake, the verdict
        assert device.failures == 0 and device.last_error == "closed by the server"
        assert wait_for(lambda: online_rows([spec.device_id]))


def test_a_device_whose_key_is_refused_backs_off(worker):
    (spec,) = keyed_photons(1, own_keys=True, key_on_file=False)
    with running_gateway() as gw, running_fleet([spec], "127.0.0.1", gw.port, **options()) as sim:
        device = sim.devices[0]
        assert sim.wait_until(lambda fleet: device.failures >= 1, timeout=10)
        failures = device.failures
        time.sleep(2.0)
        # 0.2 s steps for five attempts, then 0.4 s: about eight attempts in two seconds, never online.
        assert 4 <= device.failures - failures <= 10, device.failures
        assert device.connects == 0 and not device.connected
        assert online_rows([spec.device_id]) == set()
