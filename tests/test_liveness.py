"""The gateway's batched writes of who was heard (devices/services/liveness.py), on the database CI runs
(SQLite by default, PostgreSQL in the second pass): one statement per thousand devices, never a write per ping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from devices.models import Device
from devices.services import liveness
from tests.support.fleet import ids, manufacture

pytestmark = pytest.mark.django_db


def test_devices_heard_writes_time_and_address_and_never_goes_back_in_time():
    a, b, c = ids(manufacture(6, 3))
    earlier = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    later = earlier + timedelta(minutes=5)
    Device.objects.filter(pk=a).update(last_heard=later, last_ip_address="10.0.0.1")
    Device.objects.filter(pk=c).update(last_ip_address="10.0.0.3")
    written = liveness.devices_heard({a: (earlier, "192.0.2.1"), b: (later, "192.0.2.2"), c: (later, None),
                                      "0" * 24: (later, "192.0.2.9")})  # an id nobody registered: ignored
    assert written == 4
    rows = {d.pk: (d.last_heard, d.last_ip_address) for d in Device.objects.filter(pk__in=[a, b, c])}
    assert rows[a] == (later, "10.0.0.1")  # a late flush from another gateway does not undo a newer one
    assert rows[b] == (later, "192.0.2.2")
    assert rows[c] == (later, "10.0.0.3")  # no address known: the last one stays
    assert not Device.objects.filter(pk="0" * 24).exists()


def test_a_big_flush_is_one_update_per_thousand_devices():
    made = ids(manufacture(6, 2500))
    at = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    with CaptureQueriesContext(connection) as queries:
        liveness.devices_heard({d: (at, "198.51.100.7") for d in made})
    updates = [q["sql"] for q in queries.captured_queries if "UPDATE " in q["sql"].upper()]
    assert len(updates) == 3  # SQLite's executemany is one entry per chunk too
    rows = set(Device.objects.filter(pk__in=made).values_list("last_heard", "last_ip_address"))
    assert rows == {(at, "198.51.100.7")}


def test_lock_devices_in_order_locks_the_rows_inside_the_transaction():
    made = ids(manufacture(6, 3))
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            liveness.lock_devices_in_order(reversed(made))
    if connection.vendor == "postgresql":
        [lock] = queries.captured_queries
        assert "FOR UPDATE" in lock["sql"] and "ORDER BY id" in lock["sql"]
    else:
        assert queries.captured_queries == []  # SQLite locks the whole database per write anyway
