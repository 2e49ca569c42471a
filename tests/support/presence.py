"""Connections as the gateway records them in Redis (devices/presence.py), for tests that need a device to be
connected without running a gateway: claiming by id needs the device online, an approval lets a waiting
connection in. This writes the same presence entries a gateway writes; a notify to a gateway that is not
listening returns False, as it would for a gateway that has gone."""

from __future__ import annotations

TEST_GATEWAY = "gw-test"


def connect(*device_ids: str, gateway: str = TEST_GATEWAY, session: str = "s1") -> None:
    from devices import presence

    if device_ids:
        presence.client().hset(presence.where_key(), mapping={d: f"{gateway} {session}" for d in device_ids})


def disconnect(*device_ids: str) -> None:
    from devices import presence

    if device_ids:
        presence.client().hdel(presence.where_key(), *device_ids)


def clear_presence() -> None:
    """Forget every connection, event history and publish marker of this test worker (its own key prefix)."""
    from devices import presence

    from tests.support.cache import _glob_escape

    client = presence.client()
    keys = list(client.scan_iter(match=f"{_glob_escape(presence.prefix())}:*", count=1000))
    if keys:
        client.delete(*keys)
