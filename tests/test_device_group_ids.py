"""A device's copy of its groups (`devices_device.group_ids`, PostgreSQL, migration 0017) stays equal to its
memberships whichever door changes them: the group services, a group or device deleted, a device removed or
denied, a membership edited in place (the admin), and two transactions changing one device's groups at once.
The device list filters groups on it, so a stale copy would show the wrong devices."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from console.scoping import Principal
from devices.migrations import _sort_index
from devices.models import Device, DeviceGroupMembership
from devices.selectors import devices as selectors
from devices.services import devices as device_services
from devices.services import groups as group_services
from products.models import DeviceGroup
from tests.support.fleet import import_named_devices

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="group_ids is PostgreSQL's")


def stored() -> dict[str, list[int] | None]:
    with connection.cursor() as c:
        c.execute("SELECT id, group_ids FROM devices_device")
        return dict(c.fetchall())


def expected() -> dict[str, list[int] | None]:
    out: dict[str, list[int]] = {}
    for device_id, group_id in DeviceGroupMembership.objects.values_list("device_id", "group_id"):
        out.setdefault(device_id, []).append(group_id)
    return {d: sorted(out[d]) if d in out else None for d in Device.objects.values_list("id", flat=True)}


def test_every_door_that_changes_memberships_keeps_the_copy(cast, db):
    owner = Principal.for_user(cast.owner)
    device_ids = import_named_devices(cast, 8)
    assert stored() == expected() and all(v is None for v in stored().values())
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[:6],
                                        add=["red", "blue"])
    red, blue = (DeviceGroup.objects.get(product=cast.product, name=n) for n in ("red", "blue"))
    assert stored()[device_ids[0]] == sorted([red.pk, blue.pk])
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[:2],
                                        remove=["red"])
    assert stored()[device_ids[0]] == [blue.pk]
    assert stored() == expected()
    device = Device.objects.get(pk=device_ids[3])
    group_services.device_set_groups(principal=owner, device=device, names=["green"])
    assert stored() == expected()
    green = DeviceGroup.objects.get(product=cast.product, name="green")
    assert stored()[device_ids[3]] == [green.pk]
    # A membership edited in place, as the admin's change form does: the old group leaves, the new one comes.
    DeviceGroupMembership.objects.filter(device_id=device_ids[4], group=red).update(group=green)
    assert stored()[device_ids[4]] == sorted([blue.pk, green.pk]) and stored() == expected()
    group_services.group_delete(principal=owner, group=blue)
    assert stored() == expected() and stored()[device_ids[0]] is None
    device_services.device_remove(principal=owner, device=Device.objects.get(pk=device_ids[5]))
    device_services.device_deny(principal=owner, device=Device.objects.get(pk=device_ids[2]))
    Device.objects.filter(pk=device_ids[3]).delete()
    assert stored() == expected()
    assert stored()[device_ids[5]] is None and stored()[device_ids[2]] is None
    # The ORM never writes the column: saving a whole device keeps it.
    kept = Device.objects.get(pk=device_ids[4])
    kept.notes = "saved whole"
    kept.save()
    assert stored()[device_ids[4]] == [green.pk]


def test_the_migration_fills_the_copy_from_the_memberships(cast, db):
    owner = Principal.for_user(cast.owner)
    device_ids = import_named_devices(cast, 5)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[:3], add=["a"])
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[2:], add=["b"])
    with connection.cursor() as c:
        c.execute("UPDATE devices_device SET group_ids = NULL")
        c.execute(_sort_index.GROUP_IDS_FILL)
    assert stored() == expected()
    assert len([v for v in stored().values() if v and len(v) == 2]) == 1


def test_two_transactions_adding_groups_to_one_device_both_count(transactional_db, cast):
    device_id = import_named_devices(cast, 1)[0]
    first = DeviceGroup.objects.create(product=cast.product, name="first")
    second = DeviceGroup.objects.create(product=cast.product, name="second")
    added, release = threading.Event(), threading.Event()

    def add_and_hold():
        try:
            with transaction.atomic():
                DeviceGroupMembership.objects.create(device_id=device_id, group=first)
                added.set()
                release.wait(10)
        finally:
            connections.close_all()

    def add_second():
        try:
            DeviceGroupMembership.objects.create(device_id=device_id, group=second)
        finally:
            connections.close_all()

    holder = threading.Thread(target=add_and_hold)
    holder.start()
    assert added.wait(10)
    other = threading.Thread(target=add_second)
    other.start()
    other.join(1.0)
    assert other.is_alive(), "the second membership's trigger did not wait for the first's row lock"
    release.set()
    holder.join(10)
    other.join(10)
    assert stored()[device_id] == sorted([first.pk, second.pk])


def test_a_deep_page_of_a_group_walks_the_index_alone(cast, db, monkeypatch):
    # A page past LONG_WALK_ROWS but within SHARE_WALK_RATIO times the group's size is walked, testing the
    # copy on each index entry: no membership probe; the rows are the plain filter-and-sort's.
    from tests.test_device_search import reference

    owner = Principal.for_user(cast.owner)
    device_ids = import_named_devices(cast, 40)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[::2], add=["red"])
    cast.product.refresh_from_db()
    monkeypatch.setattr(selectors, "WALK_ROWS", 4)
    monkeypatch.setattr(selectors, "LONG_WALK_ROWS", 8)
    query = selectors.DeviceListQuery.from_params({"groups": "red", "perPage": 3, "page": 3})
    with CaptureQueriesContext(connection) as captured:
        page = selectors.product_device_page(product=cast.product, query=query)
    assert [d.id for d in page.devices] == reference(cast.product, {"groups": "red"})[6:9]
    statements = [q["sql"] for q in captured.captured_queries]
    assert any("group_ids &&" in q for q in statements), statements
    assert not any("m.device_id = x.id" in q for q in statements), statements  # no membership probe
