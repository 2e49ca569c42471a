"""The product device list's search (issue 14): every filter, sort, direction and depth returns the rows of a
plain filter-and-sort, whichever plan the selector picks (a walk of the sort index or a gather through the
filter's index); totals are exact or marked estimated; another tenant's devices never appear; the number of
queries per request is pinned per filter. Speed is measured in bench/search.py, never here."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.scoping import Principal
from devices.models import Device, DeviceGroupMembership
from devices.selectors import devices as selectors
from devices.services import groups as group_services
from products.models import DeviceGroup
from console.services.users import sandbox_of
from tests.factories import UserFactory, make_product
from tests.support.api import Api, user_token
from tests.support.fleet import import_devices, import_named_devices

pytestmark = pytest.mark.django_db

NAMES = ["alpha", "Alpha-2", "beta", "gamma_1", "gamma%2", "delta", "", "epsilon", "zeta", "eta"]


@pytest.fixture
def fleet(cast):
    """60 devices in the cast's product with names, firmware and last contact spread out (some blank, some
    never heard, some without firmware), two groups, 5 quarantined and 2 denied; and 20 devices of another
    tenant's product with the same names."""
    device_ids = import_named_devices(cast, 60)
    now = timezone.now()
    for n, device_id in enumerate(device_ids):
        Device.objects.filter(pk=device_id).update(
            name=f"{NAMES[n % 10]}{n // 10}" if NAMES[n % 10] else "",
            last_heard=None if n % 7 == 3 else now - timedelta(minutes=(n * 37) % 50),
            firmware_version=None if n % 9 == 4 else (n * 5) % 4 + 1)
    owner = Principal.for_user(cast.owner)
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[::3], add=["red"])
    group_services.devices_batch_groups(principal=owner, product=cast.product, device_ids=device_ids[1:20],
                                        add=["blue"])
    Device.objects.filter(pk__in=device_ids[50:55]).update(quarantined=True)
    Device.objects.filter(pk__in=device_ids[55:57]).update(denied=True)
    DeviceGroupMembership.objects.filter(device_id__in=device_ids[55:57]).delete()
    cast.product.refresh_from_db()
    cast.product.device_count = 53
    cast.product.save(update_fields=["device_count"])
    for group in DeviceGroup.objects.filter(product=cast.product):
        DeviceGroup.objects.filter(pk=group.pk).update(
            device_count=DeviceGroupMembership.objects.filter(group=group).count())
    stranger = UserFactory()
    other = make_product(sandbox_of(stranger), name="Other Tenant Fleet")
    other_ids = import_devices(other, 20, by=stranger)
    for n, device_id in enumerate(other_ids):
        Device.objects.filter(pk=device_id).update(name=f"{NAMES[n % 10] or 'alpha'}{n // 10}")
    DeviceGroup.objects.create(product=other, name="red")
    return device_ids, other_ids


def ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def reference(product, params: dict) -> list[str]:
    """The list as a plain filter-and-sort over every row, written out in Python."""
    quarantined = params.get("quarantined") == "true"
    rows = [d for d in Device.objects.filter(product=product).select_related("serial_entry")
            if d.quarantined == quarantined and not d.denied]
    if params.get("deviceId"):
        term = params["deviceId"].lower()
        rows = [d for d in rows if (d.id == term if len(term) == 24 else d.id.startswith(term))]
    if params.get("deviceName"):
        rows = [d for d in rows if d.name and params["deviceName"].upper() in d.name.upper()]
    if params.get("serialNumber"):
        rows = [d for d in rows if d.serial_entry.serial.startswith(params["serialNumber"].upper())]
    if params.get("groups"):
        names = params["groups"].split(",")
        members = set(DeviceGroupMembership.objects.filter(group__product=product, group__name__in=names)
                      .values_list("device_id", flat=True))
        rows = [d for d in rows if d.id in members]
    sort = params.get("sortAttr", "lastConnection")
    descending = params.get("sortDir", "desc" if sort == "lastConnection" else "asc") == "desc"
    # Each sort's descending and ascending orders are exact reverses of one another (ties broken by id).
    if sort == "lastConnection":
        rows.sort(key=lambda d: (d.last_heard is None, -(d.last_heard.timestamp() if d.last_heard else 0), d.id))
        return [d.id for d in (rows if descending else rows[::-1])]
    # Names sort by their ASCII lower case, code point by code point (migration 0016).
    keys = {"deviceName": lambda d: (ascii_lower(d.name), d.id), "deviceId": lambda d: d.id,
            "firmwareVersion": lambda d: (d.firmware_version is None, d.firmware_version or 0, d.id)}
    rows.sort(key=keys[sort])
    return [d.id for d in (rows[::-1] if descending else rows)]


QUERIES = [
    {}, {"sortAttr": "deviceName"}, {"sortAttr": "deviceName", "sortDir": "desc"}, {"sortAttr": "deviceId"},
    {"sortAttr": "deviceId", "sortDir": "desc"}, {"sortAttr": "firmwareVersion"},
    {"sortAttr": "firmwareVersion", "sortDir": "desc"}, {"sortDir": "asc"},
    {"deviceName": "a"}, {"deviceName": "A", "sortDir": "asc"}, {"deviceName": "al"}, {"deviceName": "ALPHA"},
    {"deviceName": "q"}, {"deviceName": "zz"}, {"deviceName": "qqq"}, {"deviceName": "a1"},
    {"deviceName": "gamma_"}, {"deviceName": "%"}, {"deviceName": "_1"}, {"deviceName": "eta", "sortAttr": "deviceName"},
    {"deviceName": "e", "sortAttr": "firmwareVersion", "sortDir": "desc"},
    {"groups": "red"}, {"groups": "blue", "sortAttr": "deviceName", "sortDir": "desc"}, {"groups": "red,blue"},
    {"groups": "nope"}, {"groups": "red", "deviceName": "a"}, {"groups": "blue", "deviceName": "zzz"},
    {"quarantined": "true"}, {"quarantined": "true", "sortAttr": "deviceName"}, {"quarantined": "true", "deviceName": "a"},
    {"serialNumber": "zzz"},
]


def page_through(product, params: dict, per_page: int = 7):
    pages = []
    for n in range(1, 12):
        query = selectors.DeviceListQuery.from_params({**params, "perPage": per_page, "page": n})
        pages.append(selectors.product_device_page(product=product, query=query))
    return pages


def check(product, params: dict, per_page: int = 7) -> list:
    expected = reference(product, params)
    pages = page_through(product, params, per_page)
    for n, page in enumerate(pages):
        assert [d.id for d in page.devices] == expected[n * per_page:(n + 1) * per_page], (params, n + 1)
        if page.estimated:
            assert page.total >= (n + 1) * per_page if page.devices else True, (params, n + 1)
        else:
            assert page.total == len(expected), (params, n + 1, page.total, len(expected))
    return pages


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "plain")
def test_every_shape_returns_the_plain_filter_and_sort(cast, fleet, params):
    # The whole list fits the walk window here: the walk reads it all and counts exactly.
    pages = check(cast.product, params)
    assert not any(p.estimated for p in pages)


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "plain")
def test_every_shape_returns_the_same_rows_when_walks_are_short(cast, fleet, params, monkeypatch):
    # Windows smaller than the list: a walk that fills its page answers, one that does not falls back to a
    # gather; both must give the plain answer, and only a walk's total may be an estimate.
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "PROBE_WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    check(cast.product, params, per_page=3)


def test_a_serial_prefix_and_an_id_prefix(cast, fleet):
    device_ids, _other = fleet
    serial = Device.objects.get(pk=device_ids[5]).serial_entry.serial
    check(cast.product, {"serialNumber": serial.lower()})
    check(cast.product, {"serialNumber": serial[:-1]})
    check(cast.product, {"serialNumber": serial[:3]})  # every device's: walked, not gathered
    check(cast.product, {"deviceId": device_ids[7][:3].upper()})
    check(cast.product, {"deviceId": device_ids[7]})
    check(cast.product, {"deviceId": device_ids[7][:1], "deviceName": "e", "groups": "red"})
    # The group's and the id prefix's share say no walk would fill a page: gathered at once, serial and all.
    check(cast.product, {"serialNumber": serial[:3], "groups": "blue", "deviceId": device_ids[7][:2]})
    check(cast.product, {"serialNumber": serial[:3], "groups": "red", "deviceId": device_ids[7][:1]}, per_page=2)


def test_totals_are_exact_when_gathered_and_marked_when_estimated(cast, fleet, monkeypatch):
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    first = lambda **p: selectors.product_device_page(  # noqa: E731
        product=cast.product, query=selectors.DeviceListQuery.from_params({"perPage": 2, **p}))
    # "e" is in most names: the walk fills the page and the total is the sample's estimate, said to be one.
    common = first(deviceName="e")
    assert common.estimated and common.total >= 2
    # "zeta" is in six names of 53: a page of 5 would not fill before the end of the list, so the gather
    # reads them all and counts them exactly.
    rare = first(deviceName="zeta", perPage=5)
    assert not rare.estimated and rare.total == len(reference(cast.product, {"deviceName": "zeta"})) == 6


def test_an_estimate_never_passes_the_list_when_the_last_match_moved(cast, fleet, monkeypatch):
    # Where the walk ended is counted after it: a device heard again in between jumps to the top of the
    # last-connection order, and its place then says almost nothing was read.
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    counted = selectors._position

    def heard_first(product, q, device_id, window):
        # The last match is heard again between the walk and the count: a real write, then the real count.
        Device.objects.filter(pk=device_id).update(last_heard=timezone.now() + timedelta(hours=1))
        return counted(product, q, device_id, window)

    monkeypatch.setattr(selectors, "_position", heard_first)
    page = selectors.product_device_page(product=cast.product,
                                         query=selectors.DeviceListQuery.from_params({"perPage": 2, "deviceName": "e"}))
    assert page.estimated and page.total == cast.product.device_count


def test_a_name_search_gives_the_trigram_index_the_terms_rarest_trigrams(cast, fleet):
    """The names here share "ALP", "PHA", "ETA"...: a full name's condition for the index is its rarest
    trigrams (pg_trgm's, a word's start after a separator included), plus others only when they are rare
    too; a term with a character outside ASCII keeps the whole term."""
    device_ids, _other = fleet
    Device.objects.filter(pk=device_ids[0]).update(name="alpha-x7q9k")
    selectors._name_samples.clear()
    # In one name of 53: "  X" and " X7" (a word starting "X7", looked up through "-X7") and "7Q9"; "ALP" (in
    # 12) is left out.
    assert selectors._rare_grams(cast.product, "alpha-x7q9k") == ["-X7", "7Q9"]
    assert selectors._rare_grams(cast.product, "ALPHA") == ["ALP"]  # all its trigrams are common: the rarest
    assert selectors._rare_grams(cast.product, "a_1") == ["_1"]  # "  1": a word starting with 1
    assert selectors._rare_grams(cast.product, "gamma%2") == ["%2"]
    assert selectors._rare_grams(cast.product, "héllo") == []
    for term in ("alpha-x7q9k", "a_1", "gamma%2", "ma_", "héllo"):
        check(cast.product, {"deviceName": term})


def test_a_large_lists_name_sample_is_read_from_random_points_of_its_own_ids(cast, fleet, monkeypatch):
    """Past NAME_SAMPLE devices the sample is NAME_SAMPLE_SEEKS runs of ids from random points between the
    list's lowest and highest id: names of this list only (not the other tenant's, not quarantined or
    denied ones), the same in every process, and the searches it guides still return the plain answer."""
    monkeypatch.setattr(selectors, "NAME_SAMPLE", 20)
    monkeypatch.setattr(selectors, "NAME_SAMPLE_SEEKS", 5)
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    device_ids, theirs = fleet
    listed = {d.name.upper() for d in Device.objects.filter(pk__in=device_ids, quarantined=False, denied=False)}
    Device.objects.filter(pk__in=theirs).update(name="theirs-only")
    Device.objects.filter(pk__in=device_ids[50:57]).update(name="hidden-one")  # quarantined and denied
    selectors._name_samples.clear()
    first = selectors._name_sample(cast.product).names
    assert 4 <= len(first) <= 20 and set(first) <= listed
    selectors._name_samples.clear()
    assert selectors._name_sample(cast.product).names == first
    for params in ({"deviceName": "zeta"}, {"deviceName": "a", "groups": "red"}, {"deviceName": "theirs"}):
        check(cast.product, params, per_page=3)


def test_a_stale_name_sample_changes_the_plan_never_the_rows(cast, fleet, monkeypatch):
    """The sample is taken once and kept: names renamed after it still match, through whichever plan the
    stale sample picks."""
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    device_ids, _other = fleet
    selectors._name_samples.clear()
    check(cast.product, {"deviceName": "omega"}, per_page=3)  # in no name: sampled, and gathered
    Device.objects.filter(pk__in=device_ids[:40]).update(name="omega-1")
    Device.objects.filter(pk__in=device_ids[40:45]).update(name="zeta-omega")
    check(cast.product, {"deviceName": "omega"}, per_page=3)  # the sample still says "none": gathered, all 45
    check(cast.product, {"deviceName": "alpha"}, per_page=3)  # the sample says 12 of 53; 0 now


@pytest.fixture
def sensors(fleet):
    """The fleet renamed around the term `sensor_9`: names starting with it in three cases, names holding it
    further in (one holds it twice), names sorting before and after them; the quarantined, the denied and the
    other tenant's devices hold it too."""
    device_ids, other_ids = fleet
    shapes = ["sensor_9{n:03d}", "sensor_9{n:03d}x", "sensor_9z{n}", "sensor_9{n}", "Sensor_9{n}", "SENSOR_9{n}",
              "my-sensor_9{n}", "sensor_1{n}", "sensor_a{n}", "sensor_9/sensor_9{n}"]
    for n, device_id in enumerate(device_ids):
        Device.objects.filter(pk=device_id).update(name=shapes[n % 10].format(n=n))
    Device.objects.filter(pk__in=other_ids).update(name="sensor_9-theirs")
    selectors._name_samples.clear()
    return device_ids, other_ids


def _walks(statement: str) -> bool:
    """Whether a statement is a walk: the first rows of the sort index, filtered (selectors._walk)."""
    return re.search(r"LIMIT \d+\) x WHERE", statement) is not None


def _split_ran(statements: list[str]) -> bool:
    return any("substr(" in s for s in statements)


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("term", ["sensor_9", "SENSOR_9", "Sensor_9/", "nsor_9", "sensor_", "my-s", "zzz"])
def test_a_name_sorted_search_merges_the_names_starting_with_the_term_and_those_holding_it(
        cast, sensors, monkeypatch, term, direction):
    # The list is longer than a walk here: on PostgreSQL the names starting with the term are read as one range
    # of the name index and merged with the names holding it further in (the tail index); the rows, their order
    # and the exact totals are the plain filter-and-sort's, in every case of the term and both directions.
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    params = {"deviceName": term, "sortAttr": "deviceName", "sortDir": direction}
    pages = check(cast.product, params, per_page=3)
    query = selectors.DeviceListQuery.from_params({**params, "perPage": 3})
    statements = _queries(lambda: selectors.product_device_page(product=cast.product, query=query))
    if connection.vendor == "postgresql":  # SQLite walks, and may estimate a common term's total
        assert _split_ran(statements), "\n".join(statements)
        assert not any(p.estimated for p in pages)


def test_a_name_sorted_search_estimates_past_its_count_cap_and_gives_way_to_many_tail_matches(
        cast, sensors, monkeypatch):
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    params = {"deviceName": "sensor_9", "sortAttr": "deviceName"}
    # More names start with the term than the cap counts: the total is the sample's estimate, and said to be.
    monkeypatch.setattr(selectors, "HEAD_COUNT_CAP", 2)
    pages = check(cast.product, params, per_page=3)
    if connection.vendor == "postgresql":
        assert pages[0].estimated and _split_ran(_queries(lambda: page_through(cast.product, params, 3)))
    # The sample says more names hold the term past their start than a gather should take: the usual plan.
    monkeypatch.setattr(selectors, "HEAD_COUNT_CAP", 20_000)
    monkeypatch.setattr(selectors, "TAIL_GATHER_MAX", 0)
    check(cast.product, params, per_page=3)
    query = selectors.DeviceListQuery.from_params({**params, "perPage": 3})
    assert not _split_ran(_queries(lambda: selectors.product_device_page(product=cast.product, query=query)))
    # The sample expected few, but more than the plan reads hold the term further in: it gives way, same rows.
    monkeypatch.setattr(selectors, "TAIL_GATHER_MAX", 3_000)
    monkeypatch.setattr(selectors, "TAIL_READ_MAX", 1)
    check(cast.product, params, per_page=3)
    statements = _queries(lambda: selectors.product_device_page(product=cast.product, query=query))
    if connection.vendor == "postgresql":  # the tail was read, then the walk or the gather answered
        assert _split_ran(statements) and any(_walks(q) or "WITH x AS" in q for q in statements)
    # A page deeper than the plan reads of the range: the usual plan, same rows.
    monkeypatch.setattr(selectors, "TAIL_READ_MAX", 12_000)
    monkeypatch.setattr(selectors, "HEAD_ROWS_MAX", 5)
    check(cast.product, params, per_page=3)


def test_names_sort_by_their_ascii_lower_case_on_every_door(cast, fleet, client):
    # "alpha" and "Alpha-2" sort together, digits and punctuation before letters, a non-ASCII letter as it is
    # (after every ASCII one); ties by id. The API and the console agree.
    device_ids, _other = fleet
    names = ["beta", "Alpha-2", "alpha", "_x", "Zed", "zed2", "\u00e9t\u00e9", "9lives"]
    listed = [d for d in device_ids[:50]][:len(names)]
    for device_id, name in zip(listed, names, strict=True):
        Device.objects.filter(pk=device_id).update(name=name)
    expected = ["9lives", "_x", "alpha", "Alpha-2", "beta", "Zed", "zed2", "\u00e9t\u00e9"]
    api = Api(user_token(cast.owner))
    body = api.get(f"/v1/products/{cast.product.slug}/devices", {"sortAttr": "deviceName", "perPage": 100}).json()
    shown = [d["name"] for d in body["devices"] if d["name"] in names]
    assert shown == expected
    descending = api.get(f"/v1/products/{cast.product.slug}/devices",
                         {"sortAttr": "deviceName", "sortDir": "desc", "perPage": 100}).json()
    assert [d["name"] for d in descending["devices"] if d["name"] in names] == expected[::-1]
    client.force_login(cast.owner)
    html = client.get(f"/products/{cast.product.slug}/devices/?sort=name&per_page=100").content.decode()
    positions = [html.index(f">{name}<") for name in expected]
    assert positions == sorted(positions)


def test_another_tenants_devices_never_appear(cast, fleet, monkeypatch):
    _mine, theirs = fleet
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    for params in ({"deviceName": "alpha"}, {"deviceName": "a"}, {"groups": "red"}, {"deviceId": theirs[0][:6]},
                   {"deviceId": theirs[0]}):
        for page in page_through(cast.product, params, per_page=5):
            assert not {d.id for d in page.devices} & set(theirs), params
    # Through the API, the other product is a 404 for the cast's owner.
    other = Device.objects.get(pk=theirs[0]).product
    api = cast.api("owner")
    assert api.get(f"/v1/products/{other.slug}/devices", {"deviceName": "alpha"}).status_code == 404


def _queries(fn) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return [q["sql"] for q in captured.captured_queries]


# (params, queries of a request): token and product, [the group names], the page's ids (the walk, and where
# it ended when a sampled rate sized it; or the gather, also after a walk that found too few), the page's rows,
# their groups.
API_QUERY_COUNTS = [
    ({}, 5),
    ({"page": 9}, 5),
    ({"sortAttr": "deviceName", "sortDir": "desc"}, 5),
    ({"deviceName": "e"}, 6),  # common: the walk fills the page, then where it ended is counted (the estimate)
    ({"deviceName": "zeta"}, 6),  # 6 of 53 in the name sample: a walk sized to where the page should fill (all 53 rows)
    ({"deviceName": "qqq"}, 3),  # in no name: the gather alone, no rows to load
    ({"deviceId": "<a device's first 3 digits>"}, 5),  # ids are random hex: a 3-digit prefix goes straight to the gather
    ({"serialNumber": "ZZZ"}, 4),
    ({"groups": "blue"}, 6),  # the group's size is known (19 of 53 members): a walk sized to fill the page
    ({"groups": "red,blue"}, 6),
    ({"groups": "nope"}, 4),  # no such group: the gather finds nothing
    ({"groups": "red", "deviceName": "a"}, 7),
    ({"quarantined": "true"}, 6),  # + the quarantine's count
]


@pytest.mark.parametrize("params,expected", API_QUERY_COUNTS,
                         ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else "")
def test_queries_per_api_list_request(cast, fleet, monkeypatch, params, expected):
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "PROBE_WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    if "deviceId" in params:
        params = {**params, "deviceId": fleet[0][0][:3]}
    api = Api(user_token(cast.owner))
    url = f"/v1/products/{cast.product.slug}/devices"
    api.get(url, {"perPage": 3, **params})
    statements = _queries(lambda: api.get(url, {"perPage": 3, **params}))
    assert len(statements) == expected, "\n".join(statements)


@pytest.mark.parametrize("prefix,expected,walks", [(3, 7, True), (None, 6, False)], ids=["common", "one"])
def test_queries_of_a_serial_search_count_its_prefix_first(cast, fleet, monkeypatch, prefix, expected, walks):
    # Token, product, the prefix's serials counted (capped), then the walk and where it ended (common) or the
    # gather (few: no walk probing the serial table row after row to find nothing), the rows, their groups.
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "PROBE_WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    device_ids, _other = fleet
    serial = Device.objects.get(pk=device_ids[5]).serial_entry.serial
    api = Api(user_token(cast.owner))
    url = f"/v1/products/{cast.product.slug}/devices"
    params = {"perPage": 3, "serialNumber": serial[:prefix]}
    api.get(url, params)
    statements = _queries(lambda: api.get(url, params))
    assert len(statements) == expected, "\n".join(statements)
    assert any(_walks(s) for s in statements) is walks, "\n".join(statements)
    assert [d["id"] for d in api.get(url, params).json()["devices"]] == reference(cast.product, params)[:3]


@pytest.mark.parametrize("q,expected", [("", 5), ("zeta", 5), ("qqq", 3)])
def test_queries_per_console_list_request(cast, fleet, monkeypatch, q, expected, client):
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "WALK_SAMPLE", 3)
    client.force_login(cast.owner)
    url = f"/products/{cast.product.slug}/devices/" + (f"?q={q}" if q else "")
    client.get(url)
    plain = len(_queries(lambda: client.get(url)))
    baseline = len(_queries(lambda: client.get(f"/products/{cast.product.slug}/devices/")))
    # The page's own queries (session, product, groups, quarantine badge, ...) are the same for every search;
    # only the list's share moves, exactly as in the API.
    assert plain - baseline == expected - 5


def test_the_console_list_reads_each_row_once_whatever_it_shows(cast, fleet, client):
    """The console list reads only the fields a row shows (LIST_FIELDS): a field shown but not read would
    cost a query per row. So a page of 50 rows takes as many queries as a page of 25, in either tab, and
    shows the owner, customer, locked firmware and last IP it read with the rows."""
    from devices.models import Customer

    device_ids, _other = fleet
    by_id = sorted(device_ids[:50])  # members all (the fixture quarantines 50-54, denies 55-56), by id
    # Owned and customer devices on rows 26-35 of the id order: on the page of 50, not on the page of 25.
    Device.objects.filter(pk__in=by_id[25:30]).update(owner=cast.developer)
    customer = Customer.objects.create(product=cast.product, email="buyer@example.com")
    Device.objects.filter(pk__in=by_id[30:35]).update(customer=customer, desired_firmware_version=3)
    Device.objects.filter(pk__in=device_ids[50:53]).update(last_ip_address="10.0.0.9")
    client.force_login(cast.owner)
    listed = f"/products/{cast.product.slug}/devices/?sort=id"
    client.get(listed)
    # A field or relation read row by row would add queries for the 25 rows only the longer page shows
    # (the owned and customer devices among them).
    assert len(_queries(lambda: client.get(listed + "&per_page=50"))) == len(_queries(lambda: client.get(listed)))
    page = client.get(listed + "&per_page=50").content.decode()
    assert page.count("<tr data-device=") == 50
    assert "developer@example.com" in page and "buyer@example.com" in page and "Locked to v3" in page

    quarantine = f"/products/{cast.product.slug}/devices/?quarantined=true"
    five = _queries(lambda: client.get(quarantine))
    Device.objects.filter(pk__in=device_ids[52:55]).update(quarantined=False)
    two = _queries(lambda: client.get(quarantine))
    assert len(five) == len(two)
    page = client.get(quarantine).content.decode()
    assert page.count("<tr data-device=") == 2 and "10.0.0.9" in page


def test_the_api_list_reads_each_row_once_and_shows_what_a_whole_device_shows(cast, fleet):
    """The API list reads only what device_body shows (DEVICE_BODY_FIELDS): a field it shows but the list did
    not read would cost a query per row, and its body would differ from a whole device's. Owned, customer
    devices sit on rows 4-7 of the id order and SIMs on rows 8-10, on the page of 10 only."""
    from devices.api.serializers import device_body
    from devices.models import Customer, SimCard

    device_ids, _other = fleet
    by_id = sorted(device_ids[:50] + device_ids[57:])  # the members (the fixture quarantines 50-54, denies 55-56)
    Device.objects.filter(pk__in=by_id[3:5]).update(owner=cast.developer, notes="kept", last_ip_address="10.1.2.3")
    customer = Customer.objects.create(product=cast.product, email="buyer@example.com")
    Device.objects.filter(pk__in=by_id[5:7]).update(customer=customer, desired_firmware_version=3)
    SimCard.objects.filter(device_id__in=by_id[:7]).update(device=None)  # SIMs on rows 8-10 alone
    api = Api(user_token(cast.owner))
    url = f"/v1/products/{cast.product.slug}/devices"
    api.get(url, {"sortAttr": "deviceId", "perPage": 3})
    three = _queries(lambda: api.get(url, {"sortAttr": "deviceId", "perPage": 3}))
    ten = _queries(lambda: api.get(url, {"sortAttr": "deviceId", "perPage": 10}))
    assert len(ten) == len(three), "\n".join(ten)
    body = api.get(url, {"sortAttr": "deviceId", "perPage": 10}).json()
    whole = {d.id: d for d in Device.objects.filter(pk__in=by_id[:10])}
    groups = selectors.groups_of(by_id[:10])
    assert [d["id"] for d in body["devices"]] == by_id[:10]
    for shown in body["devices"]:
        assert shown == device_body(whole[shown["id"]], groups.get(shown["id"], [])), shown["id"]
    assert {d["owner"] for d in body["devices"]} >= {"developer@example.com", "buyer@example.com"}
    iccids = set(SimCard.objects.filter(device_id__in=by_id[:10]).values_list("iccid", flat=True))
    assert iccids and {d["iccid"] for d in body["devices"]} - {None} == iccids
    assert body["customers"] == [{"id": str(customer.pk), "username": "buyer@example.com"}]


def test_queries_per_sandbox_list_request(cast, fleet, client):
    device_ids, _other = fleet
    Device.objects.filter(pk__in=device_ids[:30]).update(owner=cast.developer)
    api = Api(user_token(cast.developer))
    api.get("/v1/devices")
    assert len(_queries(lambda: api.get("/v1/devices"))) == 3  # token, devices, their groups
    client.force_login(cast.developer)
    client.get("/devices/")
    few = _queries(lambda: client.get("/devices/"))
    # Session, user, accounts (the sandbox among them), the two device counts in one query and the free
    # limit's, the page's rows (only the fields shown), the products the user may open, the transfers.
    assert len(few) == 8, "\n".join(few)
    Device.objects.filter(pk__in=device_ids[30:50]).update(owner=cast.developer)
    assert len(_queries(lambda: client.get("/devices/?page=1"))) == len(few)
    page = client.get("/devices/").content.decode()
    device = Device.objects.select_related("platform").get(pk=device_ids[0])
    assert cast.product.name in page and device.platform.name in page and device.name in page


def test_a_later_sandbox_page_reads_its_ids_first_and_keeps_the_order(cast, fleet, client, monkeypatch):
    """Past the first page the sandbox list takes its ids off the owner's index, then those rows: the same
    devices in the same order as the joined query's OFFSET, in one query more than the first page."""
    import re

    from devices.web import sandbox as sandbox_views

    monkeypatch.setattr(sandbox_views, "SANDBOX_PER_PAGE", 7)
    device_ids, _other = fleet
    Device.objects.filter(pk__in=device_ids[:30]).update(owner=cast.developer)
    order = list(selectors.sandbox_devices(user=cast.developer).values_list("id", flat=True))
    client.force_login(cast.developer)
    shown = lambda html: re.findall(r'<tr data-device="([0-9a-f]{24})"', html)  # noqa: E731
    client.get("/devices/")
    first = len(_queries(lambda: client.get("/devices/")))
    for n in (1, 2, 5):
        assert shown(client.get(f"/devices/?page={n}").content.decode()) == order[(n - 1) * 7:n * 7], n
    assert len(_queries(lambda: client.get("/devices/?page=2"))) == first + 1


def test_the_export_streams_window_by_window_with_the_filters(cast, fleet, monkeypatch, client):
    from django.http import StreamingHttpResponse

    monkeypatch.setattr(selectors, "EXPORT_WINDOW", 6)
    monkeypatch.setattr(selectors, "EXPORT_GATHER", 5)  # more match than a gather takes: read window by window
    client.force_login(cast.owner)
    r = client.get(f"/products/{cast.product.slug}/devices/export.csv?q=a&by=name")
    assert isinstance(r, StreamingHttpResponse)
    with CaptureQueriesContext(connection) as captured:
        table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    statements = [q["sql"] for q in captured.captured_queries]
    assert [row[0] for row in table[1:]] == sorted(reference(cast.product, {"deviceName": "a"}))
    # 53 members, 6 index entries a window: nine windows with rows and a tenth that finds the end, each its
    # own query; none reads the list at once.
    windows = [s for s in statements if "WITH w AS" in s]
    assert len(windows) == 10
    assert all("LIMIT 6)" in s for s in windows)


def test_the_export_of_a_small_group_gathers_it_at_once(cast, fleet, monkeypatch, client):
    monkeypatch.setattr(selectors, "EXPORT_WINDOW", 6)
    client.force_login(cast.owner)
    r = client.get(f"/products/{cast.product.slug}/devices/export.csv?q=a&by=name&groups=red")
    with CaptureQueriesContext(connection) as captured:
        table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [row[0] for row in table[1:]] == sorted(reference(cast.product, {"deviceName": "a", "groups": "red"}))
    # The group's stored size is small: one query for its matching ids, none walking the id index.
    assert not [q for q in captured.captured_queries if "WITH w AS" in q["sql"]]


@pytest.mark.parametrize("q", ["zeta", "qqq", "ZE"])
def test_the_export_of_a_rare_name_gathers_it_through_the_name_index(cast, fleet, monkeypatch, client, q):
    # A term no device or a few devices have: looked up in the name index once, not read window by window
    # through the whole id index to find so few.
    monkeypatch.setattr(selectors, "EXPORT_WINDOW", 6)
    client.force_login(cast.owner)
    r = client.get(f"/products/{cast.product.slug}/devices/export.csv?q={q}&by=name")
    with CaptureQueriesContext(connection) as captured:
        table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [row[0] for row in table[1:]] == sorted(reference(cast.product, {"deviceName": q}))
    assert not [s for s in captured.captured_queries if "WITH w AS" in s["sql"]]


def test_an_export_whose_name_matches_more_than_a_gather_takes_reads_windows(cast, fleet, monkeypatch, client):
    monkeypatch.setattr(selectors, "EXPORT_WINDOW", 6)
    monkeypatch.setattr(selectors, "EXPORT_GATHER", 2)
    client.force_login(cast.owner)
    r = client.get(f"/products/{cast.product.slug}/devices/export.csv?q=zeta&by=name")
    with CaptureQueriesContext(connection) as captured:
        table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [row[0] for row in table[1:]] == sorted(reference(cast.product, {"deviceName": "zeta"}))
    assert len([s for s in captured.captured_queries if "WITH w AS" in s["sql"]]) == 10


def _export(product, params: dict, size: int = 7):
    query = selectors.DeviceListQuery.from_params(params)
    return [(row, row.groups) for rows in selectors.product_device_batches(
        product=product, query=query, size=size) for row in rows]


@pytest.mark.parametrize("params", [{}, {"deviceName": "zeta"}, {"groups": "blue"}, {"deviceName": "a"}])
def test_export_rows_are_the_devices_fields_their_groups_in_name_order_and_last_heard_in_iso(cast, fleet, params):
    """Each exported row holds what the ORM reads for that device: its owner's or customer's email, its
    groups in name order (PostgreSQL takes them from the row's group ids, SQLite from the memberships), its
    last contact as datetime.isoformat() writes it — with and without microseconds, and empty if never."""
    from datetime import datetime, timezone as tz

    from devices.models import Customer

    device_ids, _other = fleet
    DeviceGroup.objects.create(product=cast.product, name="amber")  # sorts first, has no members yet
    group_services.devices_batch_groups(principal=Principal.for_user(cast.owner), product=cast.product,
                                        device_ids=device_ids[1:4], add=["amber"])
    Device.objects.filter(pk=device_ids[1]).update(last_heard=datetime(2026, 3, 1, 4, 5, 6, tzinfo=tz.utc))
    Device.objects.filter(pk=device_ids[2]).update(last_heard=datetime(2026, 3, 1, 4, 5, 6, 7, tzinfo=tz.utc))
    Device.objects.filter(pk=device_ids[4]).update(owner=cast.developer)
    customer = Customer.objects.create(product=cast.product, email="=cmd@example.com")
    Device.objects.filter(pk=device_ids[8]).update(customer=customer)

    exported = _export(cast.product, params)
    assert [row.id for row, _ in exported] == sorted(reference(cast.product, params))
    devices = Device.objects.select_related("owner", "customer").in_bulk([row.id for row, _ in exported])
    for row, groups in exported:
        d = devices[row.id]
        assert row[:-1] == (d.id, d.name, d.serial_number, d.owner.email if d.owner else None,
                       d.customer.email if d.customer else None, d.firmware_version,
                       d.last_heard.isoformat() if d.last_heard else "", d.online, d.development)
        assert list(groups) == sorted(DeviceGroupMembership.objects.filter(device=d).values_list("group__name",
                                                                                                  flat=True))
    if not params:
        assert list({row.id: groups for row, groups in exported}[device_ids[3]]) == ["amber", "blue", "red"]
        assert {row.id: row.last_heard for row, _ in exported if row.id in device_ids[1:3]} == {
            device_ids[1]: "2026-03-01T04:05:06+00:00", device_ids[2]: "2026-03-01T04:05:06.000007+00:00"}
        assert any(row.last_heard == "" for row, _ in exported)  # never heard (the fixture's n % 7 == 3)


def test_export_rows_leave_out_a_device_no_longer_in_the_list(cast, fleet):
    """Between the query that finds an export's ids and the one that reads their rows a device can move to
    another product, or be quarantined or denied: the rows are read within the list, so it is left out (and
    never shown to this tenant)."""
    device_ids, other_ids = fleet
    gone = [other_ids[0], device_ids[50], device_ids[55]]  # another tenant's, quarantined, denied
    read = [row.id for rows in selectors._export_rows(cast.product, selectors.DeviceListQuery(),
                                                      sorted([*device_ids[:5], *gone]), 3,
                                                      selectors.group_namer(cast.product)) for row in rows]
    assert read == sorted(device_ids[:5])


def _device_statements(product, params: dict, size: int = 4):
    """The exported ids, and the statements that read the device table."""
    with CaptureQueriesContext(connection) as captured:
        rows = [row.id for row, _ in _export(product, params, size=size)]
    return rows, [q["sql"] for q in captured.captured_queries if "devices_device " in q["sql"]]


@pytest.mark.parametrize("params", [{"deviceName": "a"}, {"serialNumber": "<the fleet's serial prefix>"}])
def test_an_export_of_more_rows_than_it_reads_at_once_reads_them_by_id(cast, fleet, monkeypatch, params):
    """On PostgreSQL a gathered export expected to match at most EXPORT_ROWS_AT_ONCE is read whole by the
    gathering query; past that (the name sample's rate says so; a serial prefix is tried and found to be
    too many) its ids are gathered and their rows read a batch at a time. Every way gives the same rows."""
    device_ids, _other = fleet
    if "serialNumber" in params:
        params = {"serialNumber": Device.objects.select_related("serial_entry").get(pk=device_ids[0])
                  .serial_entry.serial[:3]}
    expected = sorted(reference(cast.product, params))
    assert len(expected) > 6
    selectors._name_sample(cast.product)  # kept by the process: read by an earlier request
    whole, whole_sql = _device_statements(cast.product, params)
    monkeypatch.setattr(selectors, "EXPORT_ROWS_AT_ONCE", 6)
    by_id, by_id_sql = _device_statements(cast.product, params)
    assert whole == by_id == expected
    if connection.vendor == "postgresql":
        assert len(whole_sql) == 1 and "LIMIT 5001" in whole_sql[0]
        batches = -(-len(expected) // 4)
        if "deviceName" in params:  # expected to be many: the ids at once, then a batch of rows per 4 ids
            assert len(by_id_sql) == 1 + batches and "LIMIT 7" not in by_id_sql[0]
        else:  # the try that finds too many, the ids, then the batches
            assert len(by_id_sql) == 2 + batches and "LIMIT 7" in by_id_sql[0]
        assert all("= ANY(" in sql for sql in by_id_sql[-batches:])


def test_a_windowed_export_names_groups_with_one_query(cast, fleet, monkeypatch):
    monkeypatch.setattr(selectors, "EXPORT_WINDOW", 6)
    monkeypatch.setattr(selectors, "EXPORT_GATHER", 5)
    with CaptureQueriesContext(connection) as captured:
        exported = _export(cast.product, {"deviceName": "a"})
    assert [row.id for row, _ in exported] == sorted(reference(cast.product, {"deviceName": "a"}))
    if connection.vendor == "postgresql":  # SQLite reads the memberships of each batch
        assert len([q for q in captured.captured_queries if "products_devicegroup" in q["sql"]]) == 1


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_last_heard_is_written_by_postgresql_as_isoformat_writes_it():
    from datetime import datetime, timezone as tz

    moments = [datetime(2026, 3, 1, 4, 5, 6, us, tzinfo=tz.utc) for us in (0, 1, 500_000, 999_999)]
    moments += [datetime(999, 1, 2, 3, 4, 5, tzinfo=tz.utc), datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=tz.utc),
                datetime(2026, 10, 25, 1, 30, tzinfo=tz(timedelta(hours=2))), None]
    sql = (f"SELECT {selectors._ISO_UTC.format('t.at')} FROM (VALUES "
           + ", ".join(["(%s::timestamptz, %s)"] * len(moments)) + ") t(at, n) ORDER BY t.n")
    with connection.cursor() as c:
        c.execute("SET TIME ZONE 'Europe/Berlin'")  # the session's zone must not matter
        try:
            c.execute(sql, [v for n, m in enumerate(moments) for v in (m, n)])
            written = [r[0] for r in c.fetchall()]
        finally:
            c.execute("SET TIME ZONE 'UTC'")
    assert written == [m.astimezone(tz.utc).isoformat() if m else "" for m in moments]


def test_the_device_export_neutralises_cells_that_start_like_a_formula(cast, fleet, client):
    from devices.models import Customer

    device_ids, _other = fleet
    Device.objects.filter(pk=device_ids[0]).update(name="=HYPERLINK(\"http://x\")")
    Device.objects.filter(pk=device_ids[0]).update(
        customer=Customer.objects.create(product=cast.product, email="+cmd@example.com"))
    client.force_login(cast.owner)
    r = client.get(f"/products/{cast.product.slug}/devices/export.csv")
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    line = next(row for row in table if row[0] == device_ids[0])
    assert line[1] == "'=HYPERLINK(\"http://x\")" and line[4] == "'+cmd@example.com"


def test_group_namer_leaves_out_a_group_it_does_not_know(cast, fleet):
    names = selectors.group_namer(cast.product)
    red, blue = (DeviceGroup.objects.get(product=cast.product, name=n).pk for n in ("red", "blue"))
    names([red])  # the groups are read now
    late = DeviceGroup.objects.create(product=cast.product, name="aardvark")
    assert names([red, late.pk, blue]) == ("blue", "red") == names([blue, red])
    assert names(None) == () and names([]) == ()


def test_a_known_share_sizes_the_walk_and_sends_a_page_past_it_to_the_gather(cast, fleet, monkeypatch):
    # A group's stored size says where its page should fill: the walk reads that far for the page alone and
    # the total is the stored size, marked an estimate (two of the red members are quarantined). A page that
    # would need a walk longer than LONG_WALK_ROWS is gathered, and counted exactly.
    monkeypatch.setattr(selectors, "WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "PROBE_WALK_ROWS", 8)
    monkeypatch.setattr(selectors, "LONG_WALK_ROWS", 20)
    monkeypatch.setattr(selectors, "SHARE_WALK_ROWS", 20)  # a walk without probes (PostgreSQL) stops there too
    red = DeviceGroup.objects.get(product=cast.product, name="red")
    expected = reference(cast.product, {"groups": "red"})
    assert red.device_count == 20 and len(expected) == 18

    def page(n: int):
        query = selectors.DeviceListQuery.from_params({"groups": "red", "perPage": 3, "page": n})
        with CaptureQueriesContext(connection) as captured:
            result = selectors.product_device_page(product=cast.product, query=query)
        return result, [q["sql"] for q in captured.captured_queries]

    first, statements = page(1)
    assert [d.id for d in first.devices] == expected[:3]
    assert (first.total, first.estimated) == (20, True)
    assert [s for s in statements if _walks(s)] and not [s for s in statements if "WITH x AS" in s]
    deep, statements = page(5)
    assert [d.id for d in deep.devices] == expected[12:15]
    assert (deep.total, deep.estimated) == (18, False)
    assert not [s for s in statements if _walks(s)]


@pytest.mark.parametrize("quarantined", [False, True])
@pytest.mark.parametrize("sort", selectors.SORTS)
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_where_a_walk_ended_is_counted_exactly_in_every_order(cast, fleet, sort, direction, quarantined):
    # The fleet has ties on every sort column, blank names, devices never heard and devices without firmware:
    # the count of rows up to a row is its place in the list, whatever the row holds.
    params = {"sortAttr": sort, "sortDir": direction, **({"quarantined": "true"} if quarantined else {})}
    query = selectors.DeviceListQuery.from_params(params)
    ids = selectors._walk(cast.product, query, None, window=1000, want=None)
    assert ids == reference(cast.product, params)
    places = [selectors._position(cast.product, query, device_id, 1000) for device_id in ids]
    assert places == list(range(1, len(ids) + 1))
    assert selectors._position(cast.product, query, "f" * 24, 1000) is None  # deleted since the walk
