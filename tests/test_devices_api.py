"""Devices over the API: import verdicts, the product list, edits, groups, claim, remove, deny, limits."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.models import AuditEntry
from devices.models import Device, DeviceGroupMembership, SimCard
from products.models import DeviceGroup, Product
from tests.support.api import Api, user_token
from tests.support.fleet import ids, manufacture
from tests.factories import UserFactory, make_product
from tests.support.presence import connect

pytestmark = pytest.mark.django_db


def upload(api: Api, product, content: bytes, name: str = "file"):
    return api.client.post(f"/v1/products/{product.slug}/devices", {"file": SimpleUploadedFile(name, content)},
                           HTTP_AUTHORIZATION=f"Bearer {api.token}")


@pytest.fixture
def borons(db):
    return manufacture(13, 30)


def test_import_one_id_json(cast, borons):
    r = cast.api("developer").post(f"/v1/products/{cast.product.pk}/devices", {"id": borons[0].device_id})
    assert r.status_code == 200
    assert r.json()["updatedDeviceIds"] == [borons[0].device_id] and r.json()["updated"] == 1
    device = Device.objects.get(pk=borons[0].device_id)
    assert device.product == cast.product
    assert device.sim.status == SimCard.Status.ACTIVE and device.sim.product == cast.product
    cast.product.refresh_from_db()
    assert cast.product.device_count == 1


def test_import_file_mixed_lines_reports_each_rejection(cast, borons):
    argon = manufacture(12, 1)[0].device_id
    other = make_product(cast.outsider_product.account, name="Elsewhere", platform_id=13)
    Device.objects.filter(pk=borons[5].device_id).update(product=other)
    lines = [borons[0].device_id, "not-an-id!", "0123456789abcdef01234567", argon, borons[5].device_id,
             borons[1].serial_number, borons[2].iccid, borons[0].device_id.upper()]
    r = upload(cast.api("owner"), cast.product, "\n".join(lines).encode(), name="wholesale-order.csv")
    body = r.json()
    assert r.status_code == 200, body
    assert sorted(body["updatedDeviceIds"]) == sorted([borons[0].device_id, borons[1].device_id, borons[2].device_id])
    assert body["nonmemberDeviceIds"] == [borons[5].device_id]
    assert body["wrongPlatformDeviceIds"] == [argon]
    reasons = {(x["line"], x["reason"]) for x in body["rejected"]}
    assert reasons == {(2, "invalid"), (3, "unknown"), (4, "wrong_platform"), (5, "other_product"), (8, "duplicate")}
    assert Device.objects.get(pk=borons[5].device_id).product == other  # untouched


def test_reimport_is_existing_and_counts_do_not_double(cast, borons):
    api = cast.api("owner")
    api.post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(borons[:3])})
    r = api.post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(borons[:4])})
    assert sorted(r.json()["existingDeviceIds"]) == sorted(ids(borons[:3]))
    assert r.json()["updatedDeviceIds"] == [borons[3].device_id]
    cast.product.refresh_from_db()
    assert cast.product.device_count == 4


@pytest.mark.parametrize("content,needle", [
    (b"\x00\x01\x02binary\xff", "binary"),
    (b"\xff\xfe\xfa not utf8", "UTF-8"),
])
def test_binary_files_are_refused_whole(cast, content, needle):
    r = upload(cast.api("owner"), cast.product, content)
    assert r.status_code == 400 and needle in r.json()["error_description"]
    assert not Device.objects.filter(product=cast.product).exists()


def test_ten_megabytes_of_junk_reports_and_writes_nothing(cast, borons):
    junk = ("x" * 99 + "\n").encode() * 100_000  # 10 MB, 100,000 junk lines
    r = upload(cast.api("owner"), cast.product, junk)
    assert r.status_code == 200
    body = r.json()
    assert body["updated"] == 0 and len(body["rejected"]) == 100_000
    assert not Device.objects.filter(product=cast.product).exists()


def test_import_needs_developer(cast, borons):
    for who in ("support", "viewer"):
        r = cast.api(who).post(f"/v1/products/{cast.product.pk}/devices", {"id": borons[0].device_id})
        assert r.status_code == 403
    assert cast.api("outsider").post(f"/v1/products/{cast.product.pk}/devices",
                                     {"id": borons[0].device_id}).status_code == 404
    assert not Device.objects.filter(product=cast.product).exists()


def test_free_limit_refuses_the_whole_import(db):
    user = UserFactory(email="maker@example.com")
    from console.services.users import sandbox_of

    product = make_product(sandbox_of(user), name="Hobby", platform_id=13)
    made = manufacture(13, 101)
    api = Api(user_token(user))
    r = api.post(f"/v1/products/{product.slug}/devices", {"ids": ids(made)})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "device_limit_reached" and "100" in body["error_description"]
    assert not Device.objects.filter(product=product).exists()
    assert api.post(f"/v1/products/{product.slug}/devices", {"ids": ids(made[:100])}).json()["updated"] == 100
    # A claimed sandbox device now has no room either.
    spare = manufacture(12, 1)[0].device_id
    connect(spare)  # claiming by id needs the device online
    r = api.post("/v1/devices", {"id": spare})
    assert r.status_code == 400 and r.json()["error"] == "device_limit_reached"


def test_org_products_have_no_free_limit(cast):
    made = manufacture(13, 120)
    assert cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(made)}).json()["updated"] == 120


@pytest.mark.parametrize("how", ["json", "form", "query"])
def test_import_with_import_sims_false_leaves_the_sims_alone(cast, borons, how):
    """import_sims=false (particle-api.md §6.2): the devices join the product, their SIMs are not activated."""
    made = borons[:2]
    path = f"/v1/products/{cast.product.pk}/devices"
    sims_before = list(SimCard.objects.filter(pk__in=[m.iccid for m in made]).order_by("pk").values_list(
        "pk", "product_id", "status", "activations_count"))
    api = cast.api("developer")
    if how == "json":
        r = api.post(path, {"ids": ids(made), "import_sims": False})
    elif how == "form":
        r = api.call("POST", path, {"ids[]": ids(made), "import_sims": "false"}, form=True)
    else:
        r = api.post(f"{path}?import_sims=false", {"ids": ids(made)})
    assert r.status_code == 200 and sorted(r.json()["updatedDeviceIds"]) == sorted(ids(made)), r.content
    assert Device.objects.filter(pk__in=ids(made), product=cast.product).count() == 2
    assert list(SimCard.objects.filter(pk__in=[m.iccid for m in made]).order_by("pk").values_list(
        "pk", "product_id", "status", "activations_count")) == sims_before
    # the default still activates them
    r = api.post(path, {"id": borons[2].device_id})
    assert r.status_code == 200
    sim = SimCard.objects.get(pk=borons[2].iccid)
    assert sim.status == SimCard.Status.ACTIVE and sim.product_id == cast.product.pk


@pytest.fixture
def imported_borons(cast, borons) -> list[str]:
    """The ids of 12 of the module's 30 Borons, imported into Trackers by the owner over the API."""
    cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(borons[:12])})
    return [m.device_id for m in borons[:12]]


def test_list_paginates_with_meta(cast, imported_borons):
    api = cast.api("viewer")
    r = api.get(f"/v1/products/{cast.product.slug}/devices", {"per_page": 5, "page": 3})
    body = r.json()
    assert r.status_code == 200 and len(body["devices"]) == 2
    assert body["meta"]["total_pages"] == 3 and body["meta"]["total"] == 12
    seen = []
    for page in (1, 2, 3):
        seen += [d["id"] for d in api.get(f"/v1/products/{cast.product.slug}/devices",
                                          {"perPage": 5, "page": page, "sortAttr": "deviceId", "sortDir": "asc"}).json()["devices"]]
    assert seen == sorted(imported_borons)


def test_list_filters(cast, imported_borons):
    api = cast.api("owner")
    p = cast.product.slug
    api.put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"name": "kitchen_sensor"})
    api.put(f"/v1/products/{p}/devices/{imported_borons[1]}", {"name": "garage_sensor", "groups": ["beta"]})
    names = lambda **q: sorted(d["id"] for d in api.get(f"/v1/products/{p}/devices", q).json()["devices"])  # noqa: E731
    assert names(deviceName="SENSOR") == sorted(imported_borons[:2])
    assert names(groups="beta") == [imported_borons[1]]
    assert names(groups="beta,nothing") == [imported_borons[1]]
    assert names(deviceId=imported_borons[3][:10]) == [imported_borons[3]]
    serial = Device.objects.get(pk=imported_borons[4]).serial_number
    assert names(serialNumber=serial[:12].lower()) == [imported_borons[4]]  # a case-insensitive prefix
    assert names(quarantined="true") == []


def test_filtered_totals_agree_on_full_short_and_empty_pages(cast, imported_borons):
    # A short page is the last one, so its total comes from the page itself; full and past-the-end pages
    # count. All three must tell the same total.
    Device.objects.filter(pk__in=imported_borons[:7]).update(name="tank_level")
    api = cast.api("viewer")
    url = f"/v1/products/{cast.product.slug}/devices"
    pages = [api.get(url, {"deviceName": "tank", "perPage": 5, "page": n}).json() for n in (1, 2, 3)]
    assert [len(p["devices"]) for p in pages] == [5, 2, 0]
    assert [p["meta"]["total"] for p in pages] == [7, 7, 7]
    assert [p["meta"]["total_pages"] for p in pages] == [2, 2, 2]
    assert sorted(d["id"] for p in pages for d in p["devices"]) == sorted(imported_borons[:7])
    empty = api.get(url, {"deviceName": "nothing-matches"}).json()
    assert empty["devices"] == [] and empty["meta"]["total"] == 0


def test_deleting_a_product_releases_its_devices(cast, imported_borons):
    # Device.product has no database constraint (bench/README.md); the ORM's SET_NULL must still apply.
    product = cast.product
    product.delete()
    assert Device.objects.filter(pk__in=imported_borons, product__isnull=True).count() == len(imported_borons)


def test_an_import_into_a_product_deleted_meanwhile_writes_nothing(cast, borons):
    from console.scoping import Principal
    from devices.services.importing import device_import

    stale = Product.objects.get(pk=cast.product.pk)  # what a running job or request holds
    Product.objects.get(pk=cast.product.pk).delete()
    from console.errors import NotFound

    with pytest.raises(NotFound):
        device_import(principal=Principal.for_user(cast.owner), product=stale, values=[(1, borons[0].device_id)])
    assert Device.objects.get(pk=borons[0].device_id).product_id is None


def test_import_moves_quarantined_and_denied_rows_but_explains_the_rest(cast, borons):
    p = cast.product
    Device.objects.filter(pk=borons[0].device_id).update(product=p, quarantined=True)
    Device.objects.filter(pk=borons[1].device_id).update(product=p, denied=True)
    Device.objects.filter(pk=borons[2].device_id).update(product=p)
    argon = manufacture(12, 1)[0].device_id
    Device.objects.filter(pk=argon).update(product=p, quarantined=True)  # wrong platform even in quarantine
    r = cast.api("developer").post(f"/v1/products/{p.pk}/devices", {"ids": ids(borons[:3]) + [argon]})
    body = r.json()
    assert r.status_code == 200, body
    assert body["updatedDeviceIds"] == ids(borons[:2])
    assert body["existingDeviceIds"] == [borons[2].device_id]
    assert body["wrongPlatformDeviceIds"] == [argon]
    assert Device.objects.filter(pk__in=ids(borons[:2]), quarantined=False, denied=False, product=p).count() == 2
    assert Device.objects.get(pk=argon).quarantined


def test_list_rejects_bad_params(cast, imported_borons):
    api = cast.api("owner")
    for q in ({"sortAttr": "color"}, {"sortDir": "sideways"}, {"page": "0"}, {"perPage": "abc"}):
        r = api.get(f"/v1/products/{cast.product.slug}/devices", q)
        assert r.status_code == 400 and r.json()["error"] == "invalid_request", q


def test_list_query_count_is_fixed(cast, imported_borons, django_assert_max_num_queries):
    api = cast.api("owner")
    api.put(f"/v1/products/{cast.product.slug}/devices/{imported_borons[0]}", {"groups": ["a", "b"]})
    with django_assert_max_num_queries(8):
        r = api.get(f"/v1/products/{cast.product.slug}/devices", {"perPage": 25})
    assert len(r.json()["devices"]) == 12


def test_get_device_fields(cast, imported_borons):
    body = cast.api("viewer").get(f"/v1/products/{cast.product.pk}/devices/{imported_borons[0]}").json()
    for key in ("id", "name", "owner", "last_heard", "product_id", "online", "connected", "platform_id", "cellular",
                "serial_number", "iccid", "groups", "firmware_version", "desired_firmware_version", "development",
                "quarantined", "denied", "functions", "variables", "status"):
        assert key in body, key
    assert body["connected"] == body["online"] and body["product_id"] == cast.product.pk


def test_update_fields_and_history(cast, imported_borons):
    api = cast.api("developer")
    p = cast.product.pk
    r = api.put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"notes": "on the roof", "development": True,
                                                         "desired_firmware_version": 7})
    assert r.status_code == 200
    assert r.json()["notes"] == "on the roof" and r.json()["development"] is True
    assert api.put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"desired_firmware_version": None}).json()[
        "desired_firmware_version"] is None
    assert AuditEntry.objects.filter(action="device.update", target=imported_borons[0]).count() == 2
    assert api.put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"name": "bad name!"}).status_code == 400
    assert cast.api("viewer").put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"notes": "x"}).status_code == 403


def test_batch_groups_keeps_counts(cast, imported_borons):
    api = cast.api("developer")
    p = cast.product.pk
    r = api.put(f"/v1/products/{p}/devices", {"action": "groups", "devices": imported_borons[:5], "metadata": {"add": ["eu"]}})
    assert r.json() == {"ok": True}
    assert DeviceGroup.objects.get(product=cast.product, name="eu").device_count == 5
    api.put(f"/v1/products/{p}/devices", {"action": "groups", "devices": imported_borons[:2], "metadata": {"remove": ["eu"]}})
    assert DeviceGroup.objects.get(product=cast.product, name="eu").device_count == 3
    r = api.put(f"/v1/products/{p}/devices", {"action": "groups", "devices": ["ffffffffffffffffffffffff"],
                                              "metadata": {"add": ["eu"]}})
    assert r.status_code == 404


def test_groups_crud(cast, imported_borons):
    api = cast.api("developer")
    p = cast.product.slug
    r = api.post(f"/v1/products/{p}/groups", {"name": "field-test", "color": "#34495E", "description": "first"})
    assert r.status_code == 201 and r.json()["group"]["color"] == "#34495e"
    assert api.post(f"/v1/products/{p}/groups", {"name": "Field Test"}).status_code == 400
    assert api.post(f"/v1/products/{p}/groups", {"name": "field-test"}).status_code == 400
    assert api.post(f"/v1/products/{p}/groups", {"name": "ok", "color": "blue"}).status_code == 400
    api.put(f"/v1/products/{p}/devices/{imported_borons[0]}", {"groups": ["field-test"]})
    assert api.get(f"/v1/products/{p}/groups/field-test").json()["group"]["device_count"] == 1
    assert api.put(f"/v1/products/{p}/groups/field-test", {"name": "renamed"}).json()["group"]["name"] == "renamed"
    assert api.delete(f"/v1/products/{p}/groups/renamed").status_code == 204
    assert not DeviceGroupMembership.objects.exists()
    assert cast.api("viewer").post(f"/v1/products/{p}/groups", {"name": "nope"}).status_code == 403


def test_remove_from_product_unclaims_customer_and_frees_count(cast, imported_borons):
    from devices.models import Customer

    customer = Customer.objects.create(product=cast.product, email="c@example.com")
    Device.objects.filter(pk=imported_borons[0]).update(customer=customer)
    r = cast.api("developer").delete(f"/v1/products/{cast.product.pk}/devices/{imported_borons[0]}", {})
    assert r.status_code == 204
    device = Device.objects.get(pk=imported_borons[0])
    assert device.product is None and device.customer is None
    cast.product.refresh_from_db()
    assert cast.product.device_count == 11


def test_quarantine_approve_and_deny(cast, borons):
    q1, q2 = borons[20].device_id, borons[21].device_id
    Device.objects.filter(pk__in=[q1, q2]).update(product=cast.product, quarantined=True)
    api = cast.api("developer")
    listed = [d["id"] for d in api.get(f"/v1/products/{cast.product.pk}/devices", {"quarantined": "true"}).json()["devices"]]
    assert sorted(listed) == sorted([q1, q2])
    assert api.post(f"/v1/products/{cast.product.pk}/devices", {"id": q1}).json()["updatedDeviceIds"] == [q1]
    assert api.delete(f"/v1/products/{cast.product.pk}/devices/{q2}", {"deny": True}).status_code == 204
    assert Device.objects.get(pk=q2).denied is True
    assert api.get(f"/v1/products/{cast.product.pk}/devices/{q2}").json()["denied"] is True
    assert q2 not in [d["id"] for d in api.get(f"/v1/products/{cast.product.pk}/devices").json()["devices"]]
    cast.product.refresh_from_db()
    assert cast.product.device_count == 1


def test_claim_unclaim_and_sandbox_list(cast, borons):
    me = cast.api("outsider")
    argon = manufacture(12, 2)
    connect(argon[0].device_id)  # claiming by id needs the device online
    assert me.post("/v1/devices", {"id": argon[0].device_id}).json()["claimed"] is True
    assert cast.api("viewer").post("/v1/devices", {"id": argon[0].device_id}).status_code == 403
    listed = me.get("/v1/devices").json()
    assert isinstance(listed, list) and [d["id"] for d in listed] == [argon[0].device_id]
    assert listed[0]["product_id"] == 12  # a non-product device reports its platform id
    assert me.delete(f"/v1/devices/{argon[0].device_id}").json() == {"ok": True}
    assert me.get("/v1/devices").json() == []
    assert me.post("/v1/devices", {"id": "0123456789abcdef01234567"}).status_code == 404


def test_dev_form_reaches_product_devices_the_caller_can_reach(cast, imported_borons):
    assert cast.api("viewer").get(f"/v1/devices/{imported_borons[0]}").status_code == 200
    assert cast.api("outsider").get(f"/v1/devices/{imported_borons[0]}").status_code == 404


def test_user_device_counts(cast, borons):
    me = cast.api("outsider")
    spare = manufacture(12, 1)[0].device_id
    connect(spare)  # claiming by id needs the device online
    me.post("/v1/devices", {"id": spare})
    body = me.get("/v1/user").json()
    assert body["wifi_device_count"] == 1 and body["cellular_device_count"] == 0


@pytest.mark.parametrize("sort", ["lastConnection", "deviceName", "firmwareVersion", "deviceId"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_every_sort_pages_through_valued_and_blank_devices_in_one_total_order(cast, imported_borons, sort, direction):
    """Devices without a value (never connected, unnamed, never flashed) are a second run of the list;
    paging must cross from one run into the other without losing or repeating a device."""
    from datetime import timedelta

    from django.utils import timezone

    for n, device_id in enumerate(imported_borons[:7]):  # 7 of 12 have values, 5 do not
        Device.objects.filter(pk=device_id).update(name=f"dev_{n % 3}_{n}", firmware_version=n % 4 + 1,
                                                   last_heard=timezone.now() - timedelta(minutes=n % 3))
    api = cast.api("viewer")
    seen = []
    for page in (1, 2, 3, 4):
        seen += [d["id"] for d in api.get(f"/v1/products/{cast.product.pk}/devices",
                                          {"sortAttr": sort, "sortDir": direction, "perPage": 4,
                                           "page": page}).json()["devices"]]
    assert sorted(seen) == sorted(imported_borons) and len(seen) == 12
    rows = {d.id: d for d in Device.objects.filter(pk__in=imported_borons)}
    key = {
        "lastConnection": lambda i: (rows[i].last_heard is None, rows[i].last_heard and -rows[i].last_heard.timestamp(), i),
        "deviceName": lambda i: (rows[i].name, i),
        "firmwareVersion": lambda i: (rows[i].firmware_version is None, rows[i].firmware_version or 0, i),
        "deviceId": lambda i: i,
    }[sort]
    expected = sorted(imported_borons, key=key)
    if sort == "lastConnection":
        # desc is the natural order here (NULLs last, ties by id); asc is its exact reverse.
        expected = expected if direction == "desc" else list(reversed(expected))
    elif direction == "desc":
        expected = list(reversed(expected))
    assert seen == expected


def test_device_by_name_in_the_path(cast, imported_borons):
    api = cast.api("owner")
    api.put(f"/v1/products/{cast.product.pk}/devices/{imported_borons[0]}", {"name": "porch_light"})
    assert api.get("/v1/devices/porch_light").json()["id"] == imported_borons[0]
    assert api.get(f"/v1/products/{cast.product.pk}/devices/porch_light").json()["id"] == imported_borons[0]
    assert cast.api("outsider").get("/v1/devices/porch_light").status_code == 404


def test_serial_number_lookup(cast, imported_borons):
    device = Device.objects.get(pk=imported_borons[0])
    r = cast.api("viewer").get(f"/v1/serial_numbers/{device.serial_number.lower()}")
    assert r.status_code == 200
    assert r.json()["device_id"] == imported_borons[0] and r.json()["platform_id"] == 13 and r.json()["iccid"]
    assert cast.api("outsider").get(f"/v1/serial_numbers/{device.serial_number}").status_code == 404


def test_serial_number_lookups_are_limited_per_caller(cast, imported_borons):
    from devices.selectors.devices import SERIAL_LOOKUPS_PER_HOUR

    serial = Device.objects.get(pk=imported_borons[0]).serial_number
    viewer, owner = cast.api("viewer"), cast.api("owner")
    for _ in range(SERIAL_LOOKUPS_PER_HOUR):
        assert viewer.get(f"/v1/serial_numbers/{serial}").status_code == 200
    r = viewer.get(f"/v1/serial_numbers/{serial}")
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert owner.get(f"/v1/serial_numbers/{serial}").status_code == 200  # another caller, another allowance


def test_claiming_someone_elses_device_says_what_the_cli_looks_for(cast):
    argon = manufacture(12, 1)[0].device_id
    connect(argon)  # claiming by id needs the device online
    cast.api("viewer").post("/v1/devices", {"id": argon})
    r = cast.api("outsider").post("/v1/devices", {"id": argon})
    assert r.status_code == 403 and "That belongs to someone else." in r.json()["error"]
