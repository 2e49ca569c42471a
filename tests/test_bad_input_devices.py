"""Bad input on the device, SIM, group, customer and claim routes.

Rule: every bad request is a JSON 4xx with a clear `error_description` (or, for an import, a per-line report
that names each rejected line's number and reason) and writes nothing: the snapshot of devices, SIMs, groups,
memberships, customers, claim codes, tokens and counters is the same before and after. A refused request does
not leave an audit row either; an accepted import whose lines were all rejected may log that it ran.
"""

from __future__ import annotations


import json
import random
import string

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.services import users as user_services
from console.models import AuditEntry
from console.scoping import Principal
from devices.services.importing import MAX_LINES, device_import
from devices.models import Customer, Device, SimCard
from products.models import DeviceGroup
from tests.support.api import Api, user_token
from tests.support.db_state import assert_device_counts, device_state
from tests.support.fleet import ids, import_devices, manufacture
from tests.factories import UserFactory, make_product
from tests.support.presence import connect

pytestmark = pytest.mark.django_db


def upload(api: Api, path: str, content: bytes, name: str = "devices.txt", **fields):
    return api.client.post(path, {"file": SimpleUploadedFile(name, content), **fields},
                           HTTP_AUTHORIZATION=f"Bearer {api.token}")


def raw(api: Api, method: str, path: str, payload: str | bytes, content_type: str = "application/json"):
    return getattr(api.client, method.lower())(path, payload, content_type=content_type,
                                               HTTP_AUTHORIZATION=f"Bearer {api.token}")


def tenant_state() -> dict:
    """The snapshot without the audit log (an accepted import whose every line was rejected may log its run)."""
    state = device_state()
    state.pop("audit")
    return state


def refused(r, before: dict, *, status: int = 400, needle: str | None = None) -> dict:
    """A JSON 4xx (exactly `status`) with a clear description, and nothing written (audit included)."""
    assert r.status_code == status, (r.status_code, r.content[:300])
    assert r["Content-Type"].startswith("application/json"), (r.status_code, r["Content-Type"], r.content[:200])
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    desc = body.get("error_description")
    assert isinstance(desc, str) and len(desc.strip()) >= 10, body
    if needle:
        assert needle.lower() in desc.lower(), body
    after = device_state()
    assert after == before, "a refused request wrote to the database"
    assert_device_counts()
    return body


def reported(r, before: dict, lines: int) -> dict:
    """A per-line report: 200, nothing added, every line rejected with its number and a reason."""
    assert r.status_code == 200, (r.status_code, r.content[:300])
    body = r.json()
    assert body["updated"] == 0 and body["updatedDeviceIds"] == [], body
    assert len(body["rejected"]) == lines, (len(body["rejected"]), body["rejected"][:3])
    for entry in body["rejected"]:
        assert isinstance(entry["line"], int) and entry["line"] >= 1, entry
        assert entry["reason"] and entry["message"], entry
        assert len(entry["value"]) <= 64, entry  # long junk is not echoed back whole
    before = dict(before)
    before.pop("audit", None)
    assert tenant_state() == before, "an import whose every line was rejected wrote to the database"
    assert_device_counts()
    return body


@pytest.fixture
def dev(cast) -> Api:
    return cast.api("developer")


@pytest.fixture
def import_path(cast) -> str:
    return f"/v1/products/{cast.product.pk}/devices"


# --- files that are not text lists are refused whole ------------------------------------------------


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"


@pytest.mark.parametrize("name,content", [
    ("nul-bytes", b"0123456789abcdef01234567\n\x00\x00\x00\n"),
    ("invalid-utf8", b"\xc3\x28 \xa0\xa1 \xe2\x28\xa1\n"),
    ("png", _png()),
    ("jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
    ("gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04"),
    ("elf", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8),
    ("latin1", "caf\xe9 devices\n".encode("latin-1")),
])
def test_binary_and_non_utf8_files_are_refused_whole(cast, dev, import_path, name, content):
    valid = manufacture(13, 1)[0].device_id
    before = device_state()
    r = upload(dev, import_path, valid.encode() + b"\n" + content, name=f"{name}.bin")
    refused(r, before)


def test_ten_megabytes_of_random_bytes_is_refused(cast, dev, import_path):
    junk = random.Random(7).randbytes(10_000_000)
    before = device_state()
    refused(upload(dev, import_path, junk, name="junk.bin"), before)


def test_ten_megabytes_of_printable_junk_is_reported_line_by_line(cast, dev, import_path):
    rnd = random.Random(11)
    alphabet = "".join(c for c in string.ascii_letters + string.punctuation if c not in ",;#")  # no separators
    line = lambda: "".join(rnd.choice(alphabet) for _ in range(999))  # noqa: E731
    junk = "\n".join(line() for _ in range(10_000)).encode()
    assert len(junk) >= 10_000_000 - 10_000
    before = device_state()
    r = upload(dev, import_path, junk, name="junk.txt")
    body = reported(r, before, 10_000)
    assert [e["line"] for e in body["rejected"]] == list(range(1, 10_001))


def test_a_file_over_the_size_limit_is_refused(cast, dev, import_path):
    big = (("f" * 24 + "\n") * 700_000).encode()  # 17.5 MB
    before = device_state()
    # 17.5 MB of file: the import's own size check answers 400 (a JSON body that size is Django's 413, below).
    refused(upload(dev, import_path, big), before, status=400)


@pytest.mark.parametrize("content", [b"", b"\n\n\r\n", b"   \n\t\n", b"# just a comment\n\n# another\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(cast, dev, import_path, content):
    before = device_state()
    refused(upload(dev, import_path, content), before)


def test_more_than_200000_lines_is_refused_whole(cast, dev, import_path):
    valid = manufacture(13, 2)
    lines = ids(valid) + [f"{i:024x}" for i in range(MAX_LINES)]  # 200,002 lines, two of them real devices
    before = device_state()
    body = refused(upload(dev, import_path, "\n".join(lines).encode()), before)
    assert "200,000" in body["error_description"] or "200000" in body["error_description"], body


def test_more_than_200000_ids_in_json_is_refused_whole(cast, dev, import_path):
    valid = manufacture(13, 1)
    before = device_state()
    r = dev.post(import_path, {"ids": ids(valid) + [f"{i:024x}" for i in range(MAX_LINES)]})
    refused(r, before)


def test_a_json_body_over_the_request_limit_is_a_json_error(cast, dev, import_path):
    """17 MB of JSON: Django refuses the body itself; the answer must still be Particle's JSON error, not HTML."""
    payload = json.dumps({"ids": ["f" * 24] * 650_000})
    assert len(payload) > 16_000_000
    before = device_state()
    refused(raw(dev, "POST", import_path, payload), before, status=413)


# --- mixed files: each rejected line named, the valid ones committed -----------------------------------


def test_mixed_valid_and_invalid_lines_report_each_line_and_commit_the_rest(cast, dev, import_path):
    borons = manufacture(13, 5)
    argon = manufacture(12, 1)[0].device_id
    elsewhere = import_devices(cast.outsider_product, 1)[0]
    already = import_devices(cast.product, 1)[0]
    lines = [
        "# wholesale order 42",                     # 1 comment
        f"  {borons[0].device_id}  ",               # 2 ok (padded)
        "",                                         # 3 blank
        "not-a-device!",                            # 4 invalid
        "0123456789abcdef01234567",                 # 5 unknown
        argon,                                      # 6 wrong platform
        elsewhere,                                  # 7 another product
        borons[1].serial_number,                    # 8 ok by serial
        borons[2].iccid,                            # 9 ok by ICCID
        borons[0].device_id.upper(),                # 10 duplicate of line 2
        already,                                    # 11 already a member
        f"{borons[3].device_id}   # trailing note",  # 12 ok with a comment
    ]
    before_elsewhere = Device.objects.get(pk=elsewhere).product_id
    r = upload(dev, import_path, "\r\n".join(lines).encode(), name="order.csv")
    assert r.status_code == 200, r.content
    body = r.json()
    assert sorted(body["updatedDeviceIds"]) == sorted([borons[i].device_id for i in (0, 1, 2, 3)])
    assert body["existingDeviceIds"] == [already]
    got = {(e["line"], e["reason"]) for e in body["rejected"]}
    assert got == {(4, "invalid"), (5, "unknown"), (6, "wrong_platform"), (7, "other_product"), (10, "duplicate")}, got
    assert all(e["message"] for e in body["rejected"])
    assert Device.objects.get(pk=elsewhere).product_id == before_elsewhere  # never moved
    assert Device.objects.get(pk=argon).product_id is None
    assert borons[4].device_id not in body["updatedDeviceIds"]
    assert_device_counts()


def test_ids_of_another_platform_are_rejected_and_nothing_is_written(cast, dev, import_path):
    argons = manufacture(12, 3)
    before = device_state()
    body = reported(dev.post(import_path, {"ids": ids(argons)}), before, 3)
    assert {e["reason"] for e in body["rejected"]} == {"wrong_platform"}
    assert sorted(body["invalidDeviceIds"]) == sorted(ids(argons))


def test_a_device_in_another_product_is_not_moved(cast, dev, import_path):
    theirs = import_devices(cast.outsider_product, 2)
    before = device_state()
    body = reported(dev.post(import_path, {"ids": theirs}), before, 2)
    assert {e["reason"] for e in body["rejected"]} == {"other_product"}
    assert set(Device.objects.filter(pk__in=theirs).values_list("product_id", flat=True)) == {cast.outsider_product.pk}


def test_exceeding_the_free_limit_imports_nothing_at_all(db):
    user = UserFactory(email="hobbyist@example.com")
    product = make_product(user_services.sandbox_of(user), name="Hobby", platform_id=13)
    api = Api(user_token(user))
    members_ = manufacture(13, 98)
    device_import(principal=Principal.for_user(user), product=product, values=list(enumerate(ids(members_), 1)))
    fresh = manufacture(13, 3)
    lines = [fresh[0].device_id, "junk-line!", fresh[1].device_id, "0123456789abcdef01234567", fresh[2].device_id]
    before = device_state()
    body = refused(upload(api, f"/v1/products/{product.pk}/devices", "\n".join(lines).encode()), before)
    assert body["error"] == "device_limit_reached" and "100" in body["error_description"], body
    # the same through ids[] in a form body
    r = api.call("POST", f"/v1/products/{product.pk}/devices", {"ids[]": ids(fresh)}, form=True)
    refused(r, before, needle="100")


# --- ids that are not a list of strings -------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"ids": 5},
    {"ids": {"a": "0123456789abcdef01234567"}},
    {"ids": [1, 2]},
    {"ids": [None]},
    {"ids": [["0123456789abcdef01234567"]]},
    {"ids": True},
    {"ids": []},
    {"id": 12345},
    {"id": ["0123456789abcdef01234567"]},
    {"id": {"x": 1}},
    {},
    {"claim_user": "nobody@example.com", "id": "{valid}"},
    {"claim_user": ["owner@example.com"], "id": "{valid}"},
    {"claim_user": "outsider@example.com", "id": "{valid}"},  # a real user, not on the team
])
def test_ids_that_are_not_a_list_of_strings_are_refused(cast, dev, import_path, body):
    valid = manufacture(13, 1)[0].device_id
    body = {k: (v.replace("{valid}", valid) if isinstance(v, str) else v) for k, v in body.items()}
    before = device_state()
    refused(dev.post(import_path, body), before)


def test_a_form_body_with_ids_as_an_object_is_refused(cast, dev, import_path):
    before = device_state()
    refused(dev.call("POST", import_path, {"ids[a]": "0123456789abcdef01234567"}, form=True), before)


def test_unicode_and_very_long_ids_are_reported_per_line(cast, dev, import_path):
    weird = [
        "ünïcödé-device",
        "💥" * 30,
        "a" * 100_000,
        "０１２３４５６７８９ａｂｃｄｅｆ０１２３４５６７",  # full-width look-alike of a device id
        "٠١٢٣٤٥٦٧٨٩٠١٢٣٤",  # Arabic-Indic digits, 15 of them (an IMEI look-alike)
        "89" + "٠" * 18,  # an ICCID look-alike in Arabic-Indic digits
        "0123456789abcdef0123456\u200b",  # a zero-width space in an id
        "DROP TABLE devices_device;--",
        "bor13\u017f00001",  # upper() makes the long s an ASCII S: a serial look-alike
        "stra\u00dfe0001",  # and ß becomes SS
    ]
    before = device_state()
    r = dev.post(import_path, {"ids": weird})
    assert len(r.content) < 20_000, "the report echoes the 100,000-character line back"
    body = reported(r, before, len(weird))
    assert [e["line"] for e in body["rejected"]] == list(range(1, len(weird) + 1))
    assert {e["reason"] for e in body["rejected"]} == {"invalid"}  # never taken for someone's serial or IMEI


@pytest.mark.parametrize("payload", ['{"ids": [', '{"id": "abc"', "ids=abc", "[1, 2, 3]", '"just a string"', "{'id': 'x'}",
                                     "\x00\x01"])
def test_malformed_json_on_import_is_refused(cast, dev, import_path, payload):
    before = device_state()
    refused(raw(dev, "POST", import_path, payload), before)


@pytest.mark.parametrize("method,path,payload", [
    ("PUT", "{P}/devices", '{"action": "groups", "devices": ['),
    ("PUT", "{P}/devices/{id}", '{"name": '),
    ("DELETE", "{P}/devices/{id}", '{"deny": tru'),
    ("POST", "{P}/groups", '{"name": "x",}'),
    ("PUT", "{P}/groups/existing", "{"),
    ("POST", "{P}/sims", '{"sims": [}'),
    ("PUT", "{P}/sims/{iccid}", '{"action": "deactivate"'),
    ("PUT", "/v1/sims/{iccid}", "not json"),
    ("POST", "{P}/customers", '{"email": "x@example.com", "password": '),
    ("PUT", "{P}/customers/alice@example.com", '{"password": }'),
    ("POST", "/v1/devices", '{"id": '),
    ("PUT", "/v1/devices/{id}", "[["),
    ("POST", "/v1/device_claims", "{{"),
    ("POST", "{P}/device_claims", "{]"),
])
def test_malformed_json_is_refused_everywhere(cast, dev, method, path, payload):
    device = import_devices(cast.product, 1)[0]
    Device.objects.filter(pk=device).update(owner=cast.developer)
    DeviceGroup.objects.create(product=cast.product, name="existing")
    Customer.objects.create(product=cast.product, email="alice@example.com")
    iccid = Device.objects.get(pk=device).sim.iccid
    full = path.replace("{P}", f"/v1/products/{cast.product.pk}").replace("{id}", device).replace("{iccid}", iccid)
    before = device_state()
    refused(raw(dev, method, full, payload), before)


# --- product identifiers in the path ------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["\u00b2", "\u00bd", "99999999999999999999999999", "-1", "%00", "..", "a" * 300])
def test_odd_product_identifiers_are_a_json_404(cast, dev, ident):
    r = dev.get(f"/v1/products/{ident}/devices")
    assert r.status_code == 404, (ident, r.status_code, r.content[:200])
    assert r["Content-Type"].startswith("application/json") and r.json()["error_description"]


# --- list parameters ------------------------------------------------------------------------------------


BAD_PAGES = [{"page": "0"}, {"page": "-1"}, {"page": "abc"}, {"page": "1.5"}, {"page": "99999999999999"},
             {"perPage": "abc"}, {"perPage": "0"}, {"perPage": "-5"}, {"perPage": "100000"}, {"per_page": "100000"},
             {"perPage": "1e3"}, {"per_page": "\u00b2"}]


@pytest.mark.parametrize("query", BAD_PAGES, ids=[json.dumps(q) for q in BAD_PAGES])
@pytest.mark.parametrize("path", ["{P}/devices", "{P}/sims", "{P}/customers", "/v1/sims"])
def test_bad_pagination_is_refused(cast, dev, path, query):
    import_devices(cast.product, 2)
    before = device_state()
    r = dev.get(path.replace("{P}", f"/v1/products/{cast.product.pk}"), query)
    body = refused(r, before)
    assert any(k in body["error_description"] for k in ("page", "perPage", "per_page")), body


@pytest.mark.parametrize("query", [{"sortAttr": "color"}, {"sortAttr": "deviceName; DROP"}, {"sortDir": "sideways"},
                                   {"sortAttr": "deviceId", "sortDir": "up"}, {"sortAttr": ""}])
def test_unknown_sort_is_refused(cast, dev, query):
    import_devices(cast.product, 2)
    before = device_state()
    r = dev.get(f"/v1/products/{cast.product.pk}/devices", query)
    if query == {"sortAttr": ""}:  # empty = the default sort
        assert r.status_code == 200
        return
    body = refused(r, before)
    assert "sort" in body["error_description"], body


# --- groups ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    {"name": "Field"}, {"name": "has space"}, {"name": "a" * 101}, {"name": ""}, {"name": "café"},
    {"name": "a/b"}, {"name": ["x"]}, {"name": None}, {}, {"name": "tab\there"}, {"name": "new\nline"},
    {"name": "ok", "color": "blue"}, {"name": "ok", "color": "#12345"}, {"name": "ok", "color": "#1234567"},
    {"name": "ok", "color": "#GGGGGG"}, {"name": "ok", "color": "34495e"}, {"name": "ok", "color": 123456},
    {"name": "ok", "color": ["#123456"]}, {"name": "ok", "description": "d" * 501},
    {"name": "existing"},  # taken
])
def test_bad_group_create_is_refused(cast, dev, data):
    DeviceGroup.objects.create(product=cast.product, name="existing")
    before = device_state()
    refused(dev.post(f"/v1/products/{cast.product.pk}/groups", data), before)


@pytest.mark.parametrize("data", [{}, {"name": "Renamed"}, {"name": "other"}, {"color": "red"}, {"name": "x" * 101},
                                  {"description": ["x"]}])
def test_bad_group_update_is_refused(cast, dev, data):
    DeviceGroup.objects.create(product=cast.product, name="existing")
    DeviceGroup.objects.create(product=cast.product, name="other")
    before = device_state()
    refused(dev.put(f"/v1/products/{cast.product.pk}/groups/existing", data), before)


@pytest.mark.parametrize("groups", [["Bad Name"], ["ok", "Bad"], "Bad,Names", [5], {"a": "b"}, ["x" * 101]])
def test_bad_group_names_on_a_device_create_nothing(cast, dev, groups):
    device = import_devices(cast.product, 1)[0]
    before = device_state()
    refused(dev.put(f"/v1/products/{cast.product.pk}/devices/{device}", {"groups": groups, "name": "renamed"}), before)


@pytest.mark.parametrize("data,status", [
    # a device that is not a member of the product (unknown, or another tenant's): 404, the whole batch refused
    ({"action": "groups", "devices": ["0123456789abcdef01234567"], "metadata": {"add": ["new"]}}, 404),
    ({"action": "groups", "devices": ["{m0}", "0123456789abcdef01234567"], "metadata": {"add": ["new"]}}, 404),
    ({"action": "groups", "devices": ["{theirs}"], "metadata": {"add": ["new"]}}, 404),
    ({"action": "groups", "devices": "{m0}", "metadata": {"add": ["new"]}}, 400),
    ({"action": "groups", "devices": {"id": "{m0}"}, "metadata": {"add": ["new"]}}, 400),
    ({"action": "groups", "devices": [], "metadata": {"add": ["new"]}}, 400),
    ({"action": "groups", "devices": [5], "metadata": {"add": ["new"]}}, 400),
    ({"action": "groups", "devices": ["{m0}"], "metadata": "add new"}, 400),
    ({"action": "groups", "devices": ["{m0}"], "metadata": {"add": ["Bad Name"]}}, 400),
    ({"action": "groups", "devices": ["{m0}"], "metadata": {"add": ["new"], "remove": [5]}}, 400),
    ({"action": "groups", "devices": ["{m0}"], "metadata": {"add": 5}}, 400),
    ({"action": "explode", "devices": ["{m0}"], "metadata": {"add": ["new"]}}, 400),
    ({"devices": ["{m0}"], "metadata": {"add": ["new"]}}, 400),
])
def test_bad_batch_groups_is_refused_and_creates_nothing(cast, dev, data, status):
    m0 = import_devices(cast.product, 1)[0]
    theirs = import_devices(cast.outsider_product, 1)[0]

    def fill(v):
        if isinstance(v, str):
            return v.replace("{m0}", m0).replace("{theirs}", theirs)
        if isinstance(v, list):
            return [fill(x) for x in v]
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return v

    before = device_state()
    r = dev.put(f"/v1/products/{cast.product.pk}/devices", fill(data))
    body = refused(r, before, status=status)
    assert theirs not in body["error_description"] or theirs in json.dumps(fill(data))


# --- device edits ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    {}, {"name": "has space"}, {"name": "n" * 64}, {"name": ["x"]}, {"notes": "n" * 751},
    {"desired_firmware_version": "abc"}, {"desired_firmware_version": 0}, {"desired_firmware_version": 70000},
    {"development": "maybe"}, {"firmware_updates_forced": "perhaps"},
    {"name": "fine_name", "development": "maybe"},  # one bad field: the good one is not saved either
])
@pytest.mark.parametrize("form", ["product", "dev"])
def test_bad_device_updates_are_refused(cast, dev, data, form):
    device = import_devices(cast.product, 1)[0]
    path = f"/v1/products/{cast.product.pk}/devices/{device}" if form == "product" else f"/v1/devices/{device}"
    before = device_state()
    refused(dev.put(path, data), before)


@pytest.mark.parametrize("deny", ["maybe", "yes please", 2, ["true"], {"x": 1}],
                         ids=["maybe", "yes-please", "int-2", "list", "object"])
def test_a_garbage_deny_flag_does_not_remove_the_device(cast, dev, deny):
    """DELETE …/devices/:id {deny: <garbage>} must be a 400, not a silent removal from the product."""
    device = import_devices(cast.product, 1)[0]
    before = device_state()
    r = dev.delete(f"/v1/products/{cast.product.pk}/devices/{device}", {"deny": deny})
    refused(r, before)


# --- SIMs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    {"action": "explode"}, {"action": ""}, {}, {"action": ["deactivate"]}, {"action": "DEACTIVATE "},
    {"mb_limit": 0}, {"mb_limit": 501}, {"mb_limit": -5}, {"mb_limit": "abc"}, {"mb_limit": "1.5"},
    {"mb_limit": True}, {"mb_limit": []}, {"mb_limit": 10**30},
    {"action": "explode", "mb_limit": 100},  # a good limit with a bad action: nothing saved
    {"action": "reactivate"},  # the SIM is active: not a state change that exists
])
@pytest.mark.parametrize("form", ["product", "sandbox"])
def test_bad_sim_actions_are_refused(cast, data, form):
    device = import_devices(cast.product, 1)[0]
    iccid = Device.objects.get(pk=device).sim.iccid
    path = f"/v1/products/{cast.product.pk}/sims/{iccid}" if form == "product" else f"/v1/sims/{iccid}"
    before = device_state()
    refused(cast.api("support").put(path, data), before)


@pytest.mark.parametrize("data", [{"sims": 5}, {"sims": {"a": "b"}}, {"sims": [5]}, {"sims": []}, {}, {"sims": [None]}])
def test_bad_sim_imports_are_refused(cast, dev, data):
    before = device_state()
    refused(dev.post(f"/v1/products/{cast.product.pk}/sims", data), before)


def test_garbage_sim_lines_are_reported_and_nothing_is_written(cast, dev):
    before = device_state()
    r = dev.post(f"/v1/products/{cast.product.pk}/sims", {"sims": ["hello", "8901", "89" + "9" * 18, "💥" * 40]})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["imported"] == [] and len(body["rejected"]) == 4, body
    assert all(e["line"] and e["reason"] and len(e["value"]) <= 64 for e in body["rejected"]), body
    state = tenant_state()
    before = dict(before)
    before.pop("audit")
    assert state == before


def test_a_binary_sim_file_is_refused(cast, dev):
    before = device_state()
    refused(upload(dev, f"/v1/products/{cast.product.pk}/sims", _png(), name="sims.png"), before)


# --- customers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,needle", [
    ({"email": "Alice@Example.com", "password": "long-enough-pw"}, None),  # taken, in another case
    ({"email": "  alice@example.com ", "password": "long-enough-pw"}, None),
    ({"email": "new@example.com", "password": "short"}, "password"),
    ({"email": "new@example.com", "password": "long-enough-pw", "no_password": True}, None),
    ({"email": "new@example.com", "password": "long-enough-pw", "no_password": "true"}, None),
    ({"email": "new@example.com"}, "password"),
    ({"email": "new@example.com", "no_password": False}, "password"),
    ({"password": "long-enough-pw"}, "email"),
    ({"email": ["new@example.com"], "password": "long-enough-pw"}, "email"),
    ({"email": "e" * 255, "password": "long-enough-pw"}, "email"),
    ({"email": "new@example.com\nBcc: x@example.com", "password": "long-enough-pw"}, "email"),
    ({"email": "new@example.com", "password": "p" * 129}, "password"),
    ({"email": "new@example.com", "password": ["long-enough-pw"]}, "password"),
])
def test_bad_customer_creation_is_refused(cast, dev, data, needle):
    Customer.objects.create(product=cast.product, email="alice@example.com")
    before = device_state()
    refused(dev.post(f"/v1/products/{cast.product.pk}/customers", data), before, needle=needle)


@pytest.mark.parametrize("data", [{"password": "short"}, {}, {"password": ["long-enough-pw"]}, {"password": "p" * 129}])
def test_bad_customer_password_change_is_refused(cast, dev, data):
    Customer.objects.create(product=cast.product, email="alice@example.com", password="x")
    before = device_state()
    refused(dev.put(f"/v1/products/{cast.product.pk}/customers/alice@example.com", data), before)


def test_unknown_customer_is_a_404(cast, dev):
    before = device_state()
    refused(dev.put(f"/v1/products/{cast.product.pk}/customers/nobody@example.com", {"password": "long-enough-pw"}),
            before, status=404)
    refused(dev.delete(f"/v1/products/{cast.product.pk}/customers/nobody@example.com"), before, status=404)


# --- claiming ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,status", [
    ({"id": "0123456789abcdef01234567"}, 404),  # never manufactured
    ({"id": "ffffffffffffffffffffffff"}, 404),
    ({"id": "not-an-id"}, 404),  # a string that is no device id is looked up like any name: not found
    ({"id": "ünïcödé"}, 404),
    ({"id": "a" * 10_000}, 400),
    ({"id": ["0123456789abcdef01234567"]}, 400),
    ({"id": None}, 400),
    ({}, 400),
    ({"product_id": 5}, 404),  # self-provision into a product nobody has
    ({"product_id": "no such product!"}, 404),
    ({"product_id": ["1"]}, 404),
])
def test_bad_claims_are_refused(cast, data, status):
    before = device_state()
    r = cast.api("outsider").post("/v1/devices", data)
    body = refused(r, before, status=status)
    assert len(r.content) < 2_000, body  # a 10,000-character id is not echoed back


@pytest.mark.parametrize("role,status", [("outsider", 404), ("viewer", 403), ("support", 403)])
def test_self_provision_into_a_product_one_may_not_import_into_is_refused(cast, role, status):
    before = device_state()
    body = refused(cast.api(role).post("/v1/devices", {"product_id": cast.product.pk}), before, status=status)
    if role == "outsider":
        assert cast.product.name not in body["error_description"]


def test_claiming_a_denied_device_is_refused(cast, dev):
    device = import_devices(cast.product, 1)[0]
    assert dev.delete(f"/v1/products/{cast.product.pk}/devices/{device}", {"deny": True}).status_code == 204
    before = device_state()
    connect(device)  # claiming by id needs the device online
    refused(dev.post("/v1/devices", {"id": device}), before, status=403)  # the developer sees it: 403, not 404


# --- nothing here is ever an HTML page or a 500 ----------------------------------------------------------------------


def test_audit_log_is_untouched_by_refused_writes(cast, dev):
    """A spot check across the refusals above: refused writes leave no audit entry."""
    device = import_devices(cast.product, 1)[0]
    count = AuditEntry.objects.count()
    dev.put(f"/v1/products/{cast.product.pk}/devices/{device}", {"name": "has space"})
    dev.post(f"/v1/products/{cast.product.pk}/groups", {"name": "Bad"})
    dev.post(f"/v1/products/{cast.product.pk}/customers", {"email": "x@example.com", "password": "short"})
    cast.api("support").put(f"/v1/products/{cast.product.pk}/sims/{Device.objects.get(pk=device).sim.iccid}",
                            {"action": "explode"})
    assert AuditEntry.objects.count() == count
    assert SimCard.objects.filter(product=cast.product).count() == 1
