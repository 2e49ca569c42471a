"""Marks of the product device list (PostgreSQL, migration 0018): a deep page read through them is the page
of a plain filter-and-sort in every sort and direction, for the whole list and for one group, and stays so
whichever door writes the devices afterwards (the gateway's flush, the services, a raw UPDATE, an import, a
delete) and while a rebuild runs beside a writer. Built here with segments of five rows, so the 53 members
of the fleet make many segments, and heavy buckets (devices never heard, shared firmware versions, blank
names) split by id."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.scoping import Principal
from devices.models import Device
from devices.selectors import devices as selectors
from devices.services import devices as device_services
from devices.services import groups as group_services
from devices.services import listmarks, liveness
from tests.support.api import Api, user_token
from tests.support.fleet import import_devices
from tests.test_device_search import check, fleet  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="marks are PostgreSQL's")]

SORTS = [{}, {"sortDir": "asc"}, {"sortAttr": "deviceName"}, {"sortAttr": "deviceName", "sortDir": "desc"},
         {"sortAttr": "deviceId"}, {"sortAttr": "deviceId", "sortDir": "desc"}, {"sortAttr": "firmwareVersion"},
         {"sortAttr": "firmwareVersion", "sortDir": "desc"}]
SHAPES = SORTS + [{**s, "groups": "red"} for s in SORTS] + [{**s, "groups": "blue"} for s in SORTS[:3]]


@pytest.fixture
def marked(cast, fleet, monkeypatch):  # noqa: F811
    """The fleet with marks of five-row segments, and every page past the first read through them."""
    monkeypatch.setattr(selectors, "MARK_OFFSET", 0)
    monkeypatch.setattr(selectors, "MARK_GROUP_OFFSET", 0)
    assert listmarks.rebuild(cast.product.pk, rows=5, pieces=4)
    return fleet


def marks_used(product, params: dict, monkeypatch) -> int:
    """How many of the pages (of 4) were answered through the marks (not merely looked them up)."""
    answered = []
    real = selectors._marked

    def spy(*args, **kwargs):
        found = real(*args, **kwargs)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(selectors, "_marked", spy)
    for n in range(2, 6):
        query = selectors.DeviceListQuery.from_params({**params, "perPage": 4, "page": n})
        selectors.product_device_page(product=product, query=query)
    monkeypatch.setattr(selectors, "_marked", real)
    return sum(answered)


def check_all(product, shapes=SHAPES) -> None:
    for params in shapes:
        check(product, params, per_page=4)


def test_every_sort_and_group_pages_through_the_marks(cast, marked, monkeypatch):
    product = cast.product
    with connection.cursor() as c:
        c.execute("SELECT sort, count(*), max(cardinality(heavy)) FROM devices_listmarks WHERE product_id = %s "
                  "AND ready GROUP BY sort ORDER BY sort", [product.pk])
        assert [r[:2] for r in c.fetchall()] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    for params in SHAPES:
        assert marks_used(product, params, monkeypatch) >= 3, params
    check_all(product)


def test_the_marks_stay_exact_through_every_door(cast, marked, monkeypatch):
    product = cast.product
    device_ids = marked[0]
    owner = Principal.for_user(cast.owner)
    now = timezone.now()
    # The gateway's flush: devices heard move to the top of the last-connection order (the never heard too).
    liveness.devices_heard({d: (now + timedelta(seconds=n), None) for n, d in enumerate(device_ids[:30:3])})
    liveness.devices_heard({device_ids[3]: (now + timedelta(minutes=5), None)})
    check_all(product, SORTS[:2] + [{"groups": "red"}])
    # Renamed, re-flashed, quarantined and denied through the services and raw UPDATEs.
    device_services.device_update(principal=owner, device=Device.objects.get(pk=device_ids[1]), product_form=True,
                                  name="aaa-first")
    Device.objects.filter(pk__in=device_ids[4:12]).update(firmware_version=7)
    Device.objects.filter(pk=device_ids[13]).update(name="")
    Device.objects.filter(pk=device_ids[14]).update(quarantined=True)
    device_services.device_deny(principal=owner, device=Device.objects.get(pk=device_ids[15]))
    # Groups joined and left (the membership triggers rewrite the devices' group_ids).
    group_services.devices_batch_groups(principal=owner, product=product, device_ids=device_ids[20:40],
                                        add=["blue"], remove=["red"])
    # Removed from the product, deleted, and new devices imported.
    device_services.device_remove(principal=owner, device=Device.objects.get(pk=device_ids[16]))
    Device.objects.filter(pk=device_ids[17]).delete()
    import_devices(product, 6, by=cast.owner)
    device_services.recount(product)  # the raw UPDATEs passed the stored counts by (the nightly recount's work)
    product.refresh_from_db()
    check_all(product)
    for params in SHAPES:
        assert marks_used(product, params, monkeypatch) >= 3, params
    rows_before = listmarks.compact(product.pk)
    assert rows_before > 0
    check_all(product)
    assert listmarks.compact(product.pk) == rows_before  # folding twice folds nothing more


def test_a_device_moved_to_another_product_leaves_one_list_and_joins_the_other(cast, marked):
    product = cast.product
    other = Device.objects.exclude(product=product).exclude(product=None).first().product
    assert listmarks.rebuild(other.pk, rows=5, pieces=4)
    moved = marked[0][:3]
    Device.objects.filter(pk__in=moved).update(product=other)
    device_services.recount(product)
    device_services.recount(other)
    product.refresh_from_db()
    other.refresh_from_db()
    check_all(product, SORTS)
    check_all(other, SORTS)


def _writer(device_id: str, started: threading.Event, go_on: threading.Event, done: list, *,
            snapshot_first: threading.Event | None = None, heard: threading.Event | None = None) -> None:
    """Another connection: hear a device, then hold the transaction open until told. With `snapshot_first`,
    a REPEATABLE READ transaction that takes its snapshot, says so (`started`), and hears the device only once
    `snapshot_first` is set (then `heard`)."""
    try:
        with transaction.atomic():
            if snapshot_first is not None:
                with connection.cursor() as c:
                    c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    c.execute("SELECT count(*) FROM devices_device")
                started.set()
                assert snapshot_first.wait(10)
                liveness.devices_heard({device_id: (timezone.now() + timedelta(hours=1), None)})
                heard.set()
            else:
                liveness.devices_heard({device_id: (timezone.now() + timedelta(hours=1), None)})
                started.set()
            assert go_on.wait(20)
        done.append(True)
    finally:
        connections.close_all()


@pytest.mark.parametrize("commits", ["before the count", "after the count"])
def test_a_rebuild_counts_a_concurrent_writer_once(cast, marked, commits):
    """A writer that counts under the new generation is either seen by the rebuild's count (its own rows are
    then left out) or not (they count); either way the device is counted once."""
    product = cast.product
    device_id = marked[0][6]  # in "red"
    ids = listmarks.id_bounds(product.pk, 4)
    generation = listmarks.publish(product.pk, 0, ids, rows=5)
    started, go_on, done = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=_writer, args=(device_id, started, go_on, done))
    thread.start()
    assert started.wait(10)
    if commits == "before the count":
        go_on.set()
        thread.join(10)
        listmarks.count(product.pk, 0, generation)
    else:
        listmarks.count(product.pk, 0, generation)
        go_on.set()
        thread.join(10)
    assert done == [True]
    check_all(product, SORTS[:2] + [{"groups": "red"}])
    listmarks.compact(product.pk)
    check_all(product, SORTS[:2] + [{"groups": "red"}])


def test_a_rebuild_waits_for_a_writer_that_counted_without_it_and_gives_up(cast, marked, monkeypatch):
    """A writer whose statement counted under the old marks holds the counts until it commits: publishing
    gives up after REBUILD_LOCK_MS rather than count the list without it."""
    monkeypatch.setattr(listmarks, "REBUILD_LOCK_MS", 50)
    started, go_on, done = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=_writer, args=(marked[0][9], started, go_on, done))
    thread.start()
    assert started.wait(10)
    try:
        assert listmarks.rebuild(cast.product.pk, [0], rows=5, pieces=4) is False
    finally:
        go_on.set()
        thread.join(10)
    assert listmarks.rebuild(cast.product.pk, [0], rows=5, pieces=4) is True
    check_all(cast.product, SORTS[:2])


def test_a_generation_left_unready_is_dropped_and_counts_of_gone_ones_too(cast, marked, monkeypatch):
    product = cast.product
    generation = listmarks.publish(product.pk, 0, listmarks.id_bounds(product.pk, 4), rows=5)
    Device.objects.filter(pk=marked[0][0]).update(last_heard=None)  # counted for both generations
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM devices_listcount WHERE product_id = %s AND generation = %s",
                  [product.pk, generation])
        assert c.fetchone()[0] > 0
    monkeypatch.setattr(listmarks, "STALE_PENDING", timedelta(0))
    listmarks.compact(product.pk)
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM devices_listcount WHERE product_id = %s AND generation = %s",
                  [product.pk, generation])
        assert c.fetchone()[0] == 0
        c.execute("SELECT count(*) FROM devices_listmarks WHERE product_id = %s AND NOT ready", [product.pk])
        assert c.fetchone()[0] == 0
    check_all(product, SORTS[:2])


def test_the_worker_builds_marks_for_a_big_list_and_drops_them_when_it_shrinks(cast, fleet, monkeypatch):  # noqa: F811
    product = cast.product
    monkeypatch.setattr(listmarks, "MARK_MIN_MEMBERS", 40)
    monkeypatch.setattr(listmarks, "MARK_ROWS", 5)
    assert listmarks.keep(product) == "rebuilt"
    assert all(listmarks.segments(product.pk, s) is not None for s in range(4))
    assert listmarks.keep(product) == "kept"
    # Devices heard after the build fill the last-connection marks' future segments, not one last segment.
    liveness.devices_heard({d: (timezone.now() + timedelta(minutes=n), None) for n, d in enumerate(fleet[0][:20])})
    assert listmarks.segments(product.pk, 0)[0] <= 10
    # Counts that drifted from the rows (a write that passed the triggers by) are rebuilt.
    with connection.cursor() as c:
        c.execute("ALTER TABLE devices_device DISABLE TRIGGER dev_list_counts_update")
        Device.objects.filter(pk=fleet[0][1]).update(quarantined=True)
        c.execute("ALTER TABLE devices_device ENABLE TRIGGER dev_list_counts_update")
    assert listmarks.keep(product) == "rebuilt"
    assert listmarks.keep(product) == "kept"
    product.device_count = 10
    assert listmarks.keep(product) == "dropped"
    assert product.pk not in listmarks.marked_products()
    assert listmarks.rebuild(product.pk, [2])
    product.delete()  # a product deleted: its marks go on the worker's next round
    listmarks.drop_orphans()
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM devices_listmarks m WHERE NOT EXISTS (SELECT 1 FROM products_product p "
                  "WHERE p.id = m.product_id)")
        assert c.fetchone()[0] == 0


def test_queries_of_a_deep_page_through_the_marks(cast, marked):
    # Token and product; BEGIN, REPEATABLE READ, the segments with their counts, the page's ids, COMMIT (the two
    # statements in one snapshot); the rows, their groups.
    api = Api(user_token(cast.owner))
    url = f"/v1/products/{cast.product.slug}/devices"
    api.get(url, {"perPage": 3, "page": 5})
    with CaptureQueriesContext(connection) as captured:
        body = api.get(url, {"perPage": 3, "page": 5}).json()
    assert len(captured.captured_queries) == 9, "\n".join(q["sql"] for q in captured.captured_queries)
    assert len(body["devices"]) == 3 and body["meta"]["total_is_estimate"] is False


def test_a_truncate_of_the_devices_takes_the_marks_with_it(cast, marked):
    with connection.cursor() as c:
        c.execute("TRUNCATE devices_device CASCADE")
        c.execute("SELECT (SELECT count(*) FROM devices_listmarks) + (SELECT count(*) FROM devices_listcount)")
        assert c.fetchone()[0] == 0


def test_a_rebuild_waits_for_a_repeatable_read_writer_older_than_its_marks(cast, marked, monkeypatch):
    """A REPEATABLE READ writer whose snapshot predates the new generation counts for the old ones alone,
    whenever it writes: the rebuild's count waits for it to end, and then holds its row."""
    product = cast.product
    started, go_on, done = threading.Event(), threading.Event(), []
    snapshot_first, heard, published = threading.Event(), threading.Event(), threading.Event()
    writer = threading.Thread(target=_writer, args=(marked[0][12], started, go_on, done),  # in "red"
                              kwargs={"snapshot_first": snapshot_first, "heard": heard})
    writer.start()
    assert started.wait(10)
    real_wait = listmarks.wait_for_older_snapshots

    def wait(*args, **kwargs):
        published.set()
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(listmarks, "wait_for_older_snapshots", wait)
    rebuilt = []

    def rebuild():
        try:
            rebuilt.append(listmarks.rebuild(product.pk, [0], rows=5, pieces=4))
        finally:
            connections.close_all()

    rebuilder = threading.Thread(target=rebuild)
    rebuilder.start()
    assert published.wait(10)
    snapshot_first.set()  # the writer hears its device under its old snapshot, after the publish
    assert heard.wait(10)
    rebuilder.join(0.5)
    assert rebuilder.is_alive()  # still waiting for the writer
    go_on.set()
    writer.join(10)
    rebuilder.join(20)
    assert done == [True] and rebuilt == [True]
    check_all(product, SORTS[:2] + [{"groups": "red"}])


def test_the_highest_firmware_version_shared_by_many_gets_a_bucket_of_its_own(cast, marked):
    product = cast.product
    Device.objects.filter(pk__in=marked[0][:8]).update(firmware_version=2_147_483_647)
    assert listmarks.rebuild(product.pk, [3], rows=5, pieces=4)
    check_all(product, [{"sortAttr": "firmwareVersion"}, {"sortAttr": "firmwareVersion", "sortDir": "desc"}])


def test_a_rebuild_refuses_to_run_inside_a_transaction(cast, marked):
    with transaction.atomic(), pytest.raises(AssertionError):
        listmarks.rebuild(cast.product.pk, [0])


def test_the_wait_for_older_snapshots_passes_a_read_committed_transaction_idle_between_statements(cast, marked):
    """An open READ COMMITTED transaction holds no snapshot between its statements (its next one takes a new
    one, which sees the marks): the rebuild does not wait for it, however old it is."""
    started, go_on, done = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=_writer, args=(marked[0][15], started, go_on, done))
    thread.start()
    assert started.wait(10)
    try:
        assert listmarks.wait_for_older_snapshots(timeout=2) is True
    finally:
        go_on.set()
        thread.join(10)
    assert done == [True]
