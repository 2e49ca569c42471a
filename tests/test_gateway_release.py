"""A connection's end as the gateway records it (devices/gateway/hub.py `_closed`, sessions.sessions_closed),
against the real Redis and database: the races of a device that reconnects while its old connection ends."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from devices import presence
from devices.gateway.hub import _closed
from devices.models import Device
from devices.services import sessions
from tests.support.fleet import import_devices
from tests.support.presence import clear_presence, connect

pytestmark = pytest.mark.django_db

AT = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def device(cast) -> str:
    clear_presence()
    device_id = import_devices(cast.product)[0]
    Device.objects.filter(pk=device_id).update(online=True)
    yield device_id
    clear_presence()


def _members(gateway: str) -> set[str]:
    return {m.decode() for m in presence.client().smembers(presence.devices_key(gateway))}


def _online(device_id: str) -> bool:
    return Device.objects.get(pk=device_id).online


def test_the_current_sessions_end_forgets_it_and_takes_the_device_offline(device):
    connect(device, gateway="gw-a", session="s1")
    presence.client().sadd(presence.devices_key("gw-a"), device)
    _closed("gw-a", [(device, "s1", AT, "192.0.2.1")])
    assert presence.device_location(device) is None and device not in _members("gw-a")
    assert not _online(device)


def test_an_old_sessions_end_after_a_reconnect_to_the_same_gateway_keeps_it_in_the_reapers_set(device):
    # The new session claimed presence before the old one's release ran: if this gateway dies now, its reaper
    # must still find the device, or the row stays online forever.
    connect(device, gateway="gw-a", session="s2")
    presence.client().sadd(presence.devices_key("gw-a"), device)
    _closed("gw-a", [(device, "s1", AT, "192.0.2.1")])
    assert presence.device_location(device) == presence.Location("gw-a", "s2")
    assert device in _members("gw-a")
    assert _online(device)


def test_an_old_sessions_end_after_a_move_to_another_gateway_leaves_this_gateways_set(device):
    connect(device, gateway="gw-b", session="s9")
    presence.client().sadd(presence.devices_key("gw-a"), device)
    _closed("gw-a", [(device, "s1", AT, "192.0.2.1")])
    assert presence.device_location(device) == presence.Location("gw-b", "s9")
    assert device not in _members("gw-a")
    assert _online(device)


def test_offline_is_not_written_for_a_device_that_connected_again_before_the_row_lock(device):
    # The release went through, then the device's new session claimed presence (and will mark it online):
    # the late offline must not win.
    connect(device, gateway="gw-b", session="s9")
    sessions.sessions_closed([device])
    assert _online(device)
    presence.client().hdel(presence.where_key(), device)
    sessions.sessions_closed([device])
    assert not _online(device)
