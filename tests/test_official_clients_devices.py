"""Devices, SIMs, customers and claiming through the official npm clients against a live Cyan server.

particle-api-js@12.0.3 runs through tests/clients/apijs-devices.js (tests/clients/apijs.js unchanged, plus a
`{"$buffer": "..."}` marker so `addDeviceToProduct({file})` can upload a Buffer); particle-cli@3.43.1 runs as a
subprocess with its own HOME (tests/support/clients.py drives both; tests/conftest.py has the fixtures: the one-off npm
install, the live-server base URL and the CLI with a scratch HOME).

Facts checked here: particle-api.md Part A §1, §6, §7, §8 and Part B §0, §1.2-1.5, §3.
"""

from __future__ import annotations


import json
import re
import subprocess
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from devices.models import ClaimCode, Customer, Device, SimCard, SimUsage
from tests.factories import UserFactory, make_org, make_product
from tests.support.clients import (
    TOKEN_RE, ApiJsProduct, api_login, failed, js, js_batch, ok, show, text_file,
)
from tests.support.env import need, node_available
from tests.support.fleet import manufacture
from tests.support.presence import connect

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]

UNKNOWN_ID = "0123456789abcdef01234567"  # well-formed, never manufactured


def ids_of(devices: list[dict]) -> list[str]:
    return [d["id"] for d in devices]


# --- the product every test starts from -----------------------------------------------------------


@pytest.fixture
def apijs_product(base_url) -> ApiJsProduct:
    """An org product with its owner logged in through api-js and registered, not yet imported, devices."""
    return ApiJsProduct(base_url)


# --- particle-api-js: import into a product ------------------------------------------------------------


def test_apijs_add_device_to_product_by_id(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    first, second = apijs_product.ids(0, 2)
    elsewhere = make_product(make_org(UserFactory(email="other@example.com"), "Other Corp"), platform_id=13)
    Device.objects.filter(pk=second).update(product=elsewhere)
    argon = apijs_product.argons[0].device_id
    p = apijs_product.product.slug

    added, again, by_pk, wrong_platform, foreign, unknown = js_batch(base_url, [
        ("addDeviceToProduct", {"product": p, "deviceId": first}),
        ("addDeviceToProduct", {"product": p, "deviceId": first}),
        ("addDeviceToProduct", {"product": apijs_product.product.pk, "deviceId": apijs_product.ids(2, 3)[0]}),
        ("addDeviceToProduct", {"product": p, "deviceId": argon}),
        ("addDeviceToProduct", {"product": p, "deviceId": second}),
        ("addDeviceToProduct", {"product": p, "deviceId": UNKNOWN_ID}),
    ], auth=apijs_product.token)

    body = ok(added)
    assert body["updated"] == 1 and body["updatedDeviceIds"] == [first]
    assert body["invalidDeviceIds"] == [] and body["nonmemberDeviceIds"] == [] and body["existingDeviceIds"] == []
    assert body["protectedDeviceIds"] == []
    device = Device.objects.get(pk=first)
    assert device.product_id == apijs_product.product.pk and not device.quarantined
    assert device.sim.status == SimCard.Status.ACTIVE and device.sim.product_id == apijs_product.product.pk  # §6.2

    body = ok(again)
    assert body["updated"] == 0 and body["updatedDeviceIds"] == [] and body["existingDeviceIds"] == [first]
    assert ok(by_pk)["updatedDeviceIds"] == apijs_product.ids(2, 3)

    body = ok(wrong_platform)  # §6.2: the platform must match the product's
    assert body["updatedDeviceIds"] == [] and body["invalidDeviceIds"] == [argon]
    body = ok(foreign)
    assert body["updatedDeviceIds"] == [] and body["nonmemberDeviceIds"] == [second]
    assert Device.objects.get(pk=second).product_id == elsewhere.pk  # untouched
    body = ok(unknown)
    assert body["updatedDeviceIds"] == [] and body["invalidDeviceIds"] == [UNKNOWN_ID]
    assert Device.objects.filter(product=apijs_product.product).count() == 2
    apijs_product.product.refresh_from_db()
    assert apijs_product.product.device_count == 2


def test_apijs_add_devices_from_a_file_buffer(base_url, apijs_product):
    """addDeviceToProduct({file: Buffer}) sends multipart part `file` with filename `file` (Part B §0.8, §1.2):
    one id, serial number or ICCID per line; each bad line lands in invalidDeviceIds / nonmemberDeviceIds."""
    need(node_available(), "node/npm not installed")
    by_id, by_serial, by_iccid, taken = apijs_product.borons[:4]
    elsewhere = make_product(make_org(UserFactory(email="other@example.com"), "Other Corp"), platform_id=13)
    Device.objects.filter(pk=taken.device_id).update(product=elsewhere)
    argon = apijs_product.argons[0].device_id
    lines = [by_id.device_id, by_serial.serial_number, "not-a-device!", by_iccid.iccid, "", argon, taken.device_id,
             UNKNOWN_ID]

    body = ok(js(base_url, "addDeviceToProduct", {"product": apijs_product.product.slug, "file": text_file(*lines)},
                 auth=apijs_product.token))
    assert sorted(body["updatedDeviceIds"]) == sorted([by_id.device_id, by_serial.device_id, by_iccid.device_id])
    assert body["updated"] == 3
    assert sorted(body["invalidDeviceIds"]) == sorted(["not-a-device!", argon, UNKNOWN_ID])
    assert body["nonmemberDeviceIds"] == [taken.device_id]
    assert set(Device.objects.filter(product=apijs_product.product).values_list("id", flat=True)) == {
        by_id.device_id, by_serial.device_id, by_iccid.device_id}

    # A file of nothing but bad lines: a 200 report that adds nothing (what the CLI turns into its error).
    body = ok(js(base_url, "addDeviceToProduct", {"product": apijs_product.product.pk,
                                                  "file": text_file("garbage", "zz")}, auth=apijs_product.token))
    assert body["updatedDeviceIds"] == [] and sorted(body["invalidDeviceIds"]) == ["garbage", "zz"]


def test_apijs_add_device_error_paths_are_json(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    p = apijs_product.product.slug
    hidden = make_product(make_org(UserFactory(email="other@example.com"), "Other Corp"), platform_id=13)
    empty, binary, nothing, foreign = js_batch(base_url, [
        ("addDeviceToProduct", {"product": p, "file": {"$buffer": "\n\n"}}),
        ("addDeviceToProduct", {"product": p, "file": {"$base64": "AAECAwQFBgcICQ=="}}),
        ("addDeviceToProduct", {"product": p}),  # neither deviceId nor file: api-js sends no body at all
        ("addDeviceToProduct", {"product": hidden.slug, "deviceId": apijs_product.ids(0, 1)[0]}),
    ], auth=apijs_product.token)
    failed(empty, 400)
    assert "binary" in failed(binary, 400)["error_description"]
    failed(nothing, 400)
    assert failed(foreign, 404)["error"] == "not_found"  # someone else's product does not exist for us
    assert not Device.objects.filter(product__isnull=False).exists()


# --- particle-api-js: product device list ------------------------------------------------------------------


def test_apijs_list_product_devices_pages_and_filters(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    ids = apijs_product.ids(0, 5)
    apijs_product.add(*ids)
    names = ["north-1", "north-2", "south-1", "east-1", "west-1"]
    now = timezone.now()
    for i, (device_id, name) in enumerate(zip(ids, names)):
        Device.objects.filter(pk=device_id).update(name=name, last_heard=now - timedelta(minutes=i))
    p = apijs_product.product.slug
    grouped = ok(js(base_url, "put", {"uri": f"/v1/products/{p}/devices", "data": {
        "action": "groups", "devices": ids[:2], "metadata": {"add": ["north"]}}}, auth=apijs_product.token))
    assert grouped == {"ok": True}
    ok(js(base_url, "put", {"uri": f"/v1/products/{p}/devices", "data": {
        "action": "groups", "devices": [ids[2]], "metadata": {"add": ["south"]}}}, auth=apijs_product.token))

    (page1, page2, page3, page4, by_name, by_groups, one_group, by_id, name_desc, name_asc, default, name_paged,
     docs_spelling) = js_batch(
        base_url, [
            ("listDevices", {"product": p, "page": 1, "perPage": 2}),
            ("listDevices", {"product": p, "page": 2, "perPage": 2}),
            ("listDevices", {"product": apijs_product.product.pk, "page": 3, "perPage": 2}),
            ("listDevices", {"product": p, "page": 4, "perPage": 2}),
            ("listDevices", {"product": p, "deviceName": "north"}),
            ("listDevices", {"product": p, "groups": ["north", "south"]}),
            ("listDevices", {"product": p, "groups": ["south"]}),
            ("listDevices", {"product": p, "deviceId": ids[3]}),
            ("listDevices", {"product": p, "sortAttr": "deviceName", "sortDir": "desc"}),
            ("listDevices", {"product": p, "sortAttr": "deviceName", "sortDir": "asc"}),
            ("listDevices", {"product": p}),
            ("listDevices", {"product": p, "deviceName": "north", "page": 2, "perPage": 1}),
            # The docs spell it perPage (api-js sends per_page): both must work (Part A §1).
            ("get", {"uri": f"/v1/products/{p}/devices", "query": {"perPage": 2, "page": 3}}),
        ], auth=apijs_product.token)

    pages = [ok(r) for r in (page1, page2, page3)]
    for body in pages:
        assert body["meta"]["total_pages"] == 3, body["meta"]
    assert [len(b["devices"]) for b in pages] == [2, 2, 1]
    # Default order: last connection, newest first (§6) — ids were given falling last_heard.
    assert [d for b in pages for d in ids_of(b["devices"])] == ids
    past = ok(page4)
    assert past["devices"] == [] and past["meta"]["total_pages"] == 3

    assert sorted(d["name"] for d in ok(by_name)["devices"]) == ["north-1", "north-2"]
    body = ok(by_groups)
    assert sorted(ids_of(body["devices"])) == sorted(ids[:3]) and body["meta"]["total_pages"] == 1
    assert {d["id"]: d["groups"] for d in body["devices"]} == {ids[0]: ["north"], ids[1]: ["north"],
                                                                ids[2]: ["south"]}
    assert ids_of(ok(one_group)["devices"]) == [ids[2]]
    assert ids_of(ok(by_id)["devices"]) == [ids[3]]
    assert [d["name"] for d in ok(name_desc)["devices"]] == sorted(names, reverse=True)
    assert [d["name"] for d in ok(name_asc)["devices"]] == sorted(names)

    body = ok(default)
    assert body["meta"]["total_pages"] == 1 and len(body["devices"]) == 5 and body["customers"] == []
    first = body["devices"][0]
    assert first["product_id"] == apijs_product.product.pk and first["platform_id"] == 13
    assert first["quarantined"] is False and first["development"] is False and first["cellular"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["last_heard"]), first["last_heard"]

    body = ok(name_paged)  # a filtered list counts the matches, not the whole product
    assert body["meta"]["total_pages"] == 2 and [d["name"] for d in body["devices"]] == ["north-2"]
    body = ok(docs_spelling)
    assert body["meta"]["total_pages"] == 3 and ids_of(body["devices"]) == ids[4:]


def test_apijs_list_devices_of_someone_elses_product_is_a_json_404(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    stranger = UserFactory(email="stranger@example.com")
    token = api_login(base_url, stranger.email)
    apijs_product.add(*apijs_product.ids(0, 1))
    device_id = apijs_product.ids(0, 1)[0]
    for result in js_batch(base_url, [
        ("listDevices", {"product": apijs_product.product.slug}),
        ("listDevices", {"product": apijs_product.product.pk, "page": 1, "perPage": 5}),
        ("getDevice", {"product": apijs_product.product.slug, "deviceId": device_id}),
        ("getDevice", {"deviceId": device_id}),
        ("renameDevice", {"product": apijs_product.product.slug, "deviceId": device_id, "name": "mine-now"}),
        ("removeDevice", {"product": apijs_product.product.slug, "deviceId": device_id}),
    ], auth=token):
        assert failed(result, 404)["error"] == "not_found"
    device = Device.objects.get(pk=device_id)
    assert device.product_id == apijs_product.product.pk and device.name == ""


def test_apijs_list_devices_rejects_bad_pagination_with_json(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    p = apijs_product.product.slug
    zero, junk, sort = js_batch(base_url, [
        ("listDevices", {"product": p, "page": 0}),
        ("listDevices", {"product": p, "perPage": "lots"}),
        ("listDevices", {"product": p, "sortAttr": "colour"}),
    ], auth=apijs_product.token)
    for result in (zero, junk, sort):
        failed(result, 400)


# --- particle-api-js: one device ------------------------------------------------------------------------------


def test_apijs_get_device_product_and_sandbox_forms(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    in_product, claimed = apijs_product.borons[0], apijs_product.argons[0]
    apijs_product.add(in_product.device_id)
    Device.objects.filter(pk=in_product.device_id).update(
        online=True, name="pump-7", functions=["reset"], variables={"temp": "double"}, firmware_version=4)
    p = apijs_product.product.slug
    connect(claimed.device_id)  # claiming by id needs the device online
    ok(js(base_url, "claimDevice", {"deviceId": claimed.device_id}, auth=apijs_product.token))

    product_form, by_pk, dev_form, sandbox = js_batch(base_url, [
        ("getDevice", {"product": p, "deviceId": in_product.device_id}),
        ("getDevice", {"product": apijs_product.product.pk, "deviceId": in_product.device_id}),
        ("getDevice", {"deviceId": in_product.device_id}),  # §6: the dev form reaches a product device too
        ("getDevice", {"deviceId": claimed.device_id}),
    ], auth=apijs_product.token)
    body = ok(product_form)
    assert body["id"] == in_product.device_id and body["name"] == "pump-7"
    assert body["online"] is True and body["connected"] is True  # `connected` mirrors `online` (§6.1)
    assert body["product_id"] == apijs_product.product.pk and body["platform_id"] == 13
    assert body["serial_number"] == in_product.serial_number and body["iccid"] == in_product.iccid
    assert body["functions"] == ["reset"] and body["variables"] == {"temp": "double"}
    assert body["firmware_version"] == 4 and body["desired_firmware_version"] is None
    assert body["groups"] == [] and body["quarantined"] is False and body["denied"] is False
    assert body["owner"] is None
    assert ok(by_pk) == body
    assert ok(dev_form)["id"] == in_product.device_id and ok(dev_form)["product_id"] == apijs_product.product.pk

    body = ok(sandbox)
    assert body["id"] == claimed.device_id and body["owner"] == apijs_product.owner.email
    assert body["product_id"] == 12 and body["platform_id"] == 12  # a non-product device: its platform id
    assert body["cellular"] is False and "quarantined" not in body

    Device.objects.filter(pk=in_product.device_id).update(online=False)
    body = ok(js(base_url, "getDevice", {"product": p, "deviceId": in_product.device_id}, auth=apijs_product.token))
    assert body["online"] is False and body["connected"] is False

    # Not a member of this product (never imported), or not a device at all.
    missing, unknown = js_batch(base_url, [
        ("getDevice", {"product": p, "deviceId": apijs_product.ids(1, 2)[0]}),
        ("getDevice", {"product": p, "deviceId": UNKNOWN_ID}),
    ], auth=apijs_product.token)
    assert failed(missing, 404)["error"] == "not_found"
    assert failed(unknown, 404)["error"] == "not_found"


def test_apijs_update_device_and_its_wrappers(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    device_id = apijs_product.ids(0, 1)[0]
    apijs_product.add(device_id)
    p = apijs_product.product.slug
    args = {"product": p, "deviceId": device_id}
    (renamed, notes, dev_on, locked, unlocked, dev_off, several, signal, bad_name, bad_version,
     after) = js_batch(base_url, [
        ("renameDevice", {**args, "name": "pump_7"}),
        ("setDeviceNotes", {**args, "notes": "in the basement"}),
        ("markAsDevelopmentDevice", {**args}),  # api-js defaults development=true
        ("lockDeviceProductFirmware", {**args, "desiredFirmwareVersion": 3, "flash": False}),
        ("unlockDeviceProductFirmware", {**args}),
        ("markAsDevelopmentDevice", {**args, "development": False}),
        ("updateDevice", {**args, "name": "pump-8", "notes": "moved", "development": True,
                          "desiredFirmwareVersion": 5}),
        ("signalDevice", {**args, "signal": True}),
        ("renameDevice", {**args, "name": "no spaces allowed"}),
        ("lockDeviceProductFirmware", {**args, "desiredFirmwareVersion": 0}),
        ("getDevice", {**args}),
    ], auth=apijs_product.token)

    body = ok(renamed)
    assert body["id"] == device_id and body["name"] == "pump_7" and body["updated_at"].endswith("Z")  # §6 rename
    assert ok(notes)["notes"] == "in the basement"
    assert ok(dev_on)["development"] is True
    assert ok(locked)["desired_firmware_version"] == 3
    body = ok(unlocked)
    assert "desired_firmware_version" in body and body["desired_firmware_version"] is None
    assert ok(dev_off)["development"] is False
    body = ok(several)
    assert (body["name"], body["notes"], body["development"], body["desired_firmware_version"]) == (
        "pump-8", "moved", True, 5)
    body = ok(signal)
    # No gateway holds the device here: the signal goes nowhere, and the answer says so (tests/test_device_remote_e2e.py
    # signals a connected one)
    assert body == {"id": device_id, "connected": False, "signaling": False}, body
    assert failed(bad_name, 400)
    assert failed(bad_version, 400)

    body = ok(after)
    assert (body["name"], body["notes"], body["development"], body["desired_firmware_version"]) == (
        "pump-8", "moved", True, 5)
    device = Device.objects.get(pk=device_id)
    assert (device.name, device.notes, device.development, device.desired_firmware_version) == (
        "pump-8", "moved", True, 5)

    # The sandbox form: only name/signal/notes are sent (Part B §1.3).
    argon = apijs_product.argons[0].device_id
    connect(argon)  # claiming by id needs the device online
    ok(js(base_url, "claimDevice", {"deviceId": argon}, auth=apijs_product.token))
    renamed, noted = js_batch(base_url, [
        ("renameDevice", {"deviceId": argon, "name": "desk-lamp"}),
        ("setDeviceNotes", {"deviceId": argon, "notes": "on my desk"}),
    ], auth=apijs_product.token)
    assert ok(renamed)["name"] == "desk-lamp" and ok(noted)["notes"] == "on my desk"
    assert Device.objects.get(pk=argon).name == "desk-lamp"


# --- particle-api-js: remove, deny, unclaim, claim ------------------------------------------------------------


def test_apijs_remove_device_from_product(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    keep, gone = apijs_product.ids(0, 2)
    apijs_product.add(keep, gone)
    p = apijs_product.product.slug
    customer = Customer.objects.create(product=apijs_product.product, email="carol@example.com")
    Device.objects.filter(pk=gone).update(customer=customer)
    removed, get_after, remove_again, listed = js_batch(base_url, [
        ("removeDevice", {"product": p, "deviceId": gone}),
        ("getDevice", {"product": p, "deviceId": gone}),
        ("removeDevice", {"product": p, "deviceId": gone}),
        ("listDevices", {"product": p}),
    ], auth=apijs_product.token)
    assert ok(removed, 204) == {}  # §1: 204, which api-js turns into {}
    assert failed(get_after, 404)["error"] == "not_found"
    assert failed(remove_again, 404)["error"] == "not_found"
    assert ids_of(ok(listed)["devices"]) == [keep]
    device = Device.objects.get(pk=gone)
    assert device.product_id is None and not device.denied
    assert device.customer_id is None  # §6: removal also unclaims a customer owner
    apijs_product.product.refresh_from_db()
    assert apijs_product.product.device_count == 1


def test_apijs_quarantine_list_approve_and_deny(base_url, apijs_product):
    """§6.2: quarantined devices list with quarantined=true (no api-js option: generic get), approve = import,
    deny = DELETE with {deny:true} → 204, after which the device reads denied:true and leaves every list."""
    need(node_available(), "node/npm not installed")
    member, approve, deny = apijs_product.ids(0, 3)
    apijs_product.add(member)
    Device.objects.filter(pk__in=[approve, deny]).update(product=apijs_product.product, quarantined=True)
    p = apijs_product.product.slug
    (in_quarantine, quarantined, members, approved, denied, after_deny, members_after,
     quarantined_after) = js_batch(base_url, [
        ("getDevice", {"product": p, "deviceId": approve}),
        ("get", {"uri": f"/v1/products/{p}/devices", "query": {"quarantined": "true"}}),
        ("listDevices", {"product": p}),
        ("addDeviceToProduct", {"product": p, "deviceId": approve}),
        ("removeDevice", {"product": p, "deviceId": deny, "deny": True}),
        ("getDevice", {"product": p, "deviceId": deny}),
        ("listDevices", {"product": p}),
        ("get", {"uri": f"/v1/products/{p}/devices", "query": {"quarantined": "true"}}),
    ], auth=apijs_product.token)
    body = ok(in_quarantine)
    assert body["quarantined"] is True and body["denied"] is False and body["product_id"] == apijs_product.product.pk
    body = ok(quarantined)
    assert sorted(ids_of(body["devices"])) == sorted([approve, deny]) and body["meta"]["total_pages"] == 1
    assert all(d["quarantined"] is True for d in body["devices"])
    assert ids_of(ok(members)["devices"]) == [member]
    assert ok(approved)["updatedDeviceIds"] == [approve]
    assert ok(denied, 204) == {}
    body = ok(after_deny)
    assert body["denied"] is True and body["quarantined"] is False
    assert sorted(ids_of(ok(members_after)["devices"])) == sorted([member, approve])
    assert ok(quarantined_after)["devices"] == []
    assert Device.objects.get(pk=deny).denied is True
    assert Device.objects.get(pk=approve).quarantined is False

    # A denied device cannot be claimed (§6.2: it stays blocked).
    connect(deny)  # claiming by id needs the device online
    result = js(base_url, "claimDevice", {"deviceId": deny}, auth=apijs_product.token)
    assert failed(result, 403)


def test_apijs_remove_device_owner_keeps_it_in_the_product(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    device_id = apijs_product.ids(0, 1)[0]
    apijs_product.add(device_id)
    p = apijs_product.product.slug
    connect(device_id)  # claiming by id needs the device online
    claimed, before, unclaimed, after, sandbox = js_batch(base_url, [
        ("claimDevice", {"deviceId": device_id}),
        ("getDevice", {"product": p, "deviceId": device_id}),
        ("removeDeviceOwner", {"product": p, "deviceId": device_id}),
        ("getDevice", {"product": p, "deviceId": device_id}),
        ("listDevices", {}),
    ], auth=apijs_product.token)
    assert ok(claimed)["deviceID"] == device_id
    assert ok(before)["owner"] == apijs_product.owner.email
    assert ok(unclaimed) == {"ok": True}  # §6 unclaim → {"ok":true}
    body = ok(after)
    assert body["owner"] is None and body["product_id"] == apijs_product.product.pk
    assert ok(sandbox) == []
    device = Device.objects.get(pk=device_id)
    assert device.owner_id is None and device.product_id == apijs_product.product.pk


def test_apijs_claim_device_and_sandbox_list(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    a, b = manufacture(12, 2)
    rival = UserFactory(email="rival@example.com")
    rival_token = api_login(base_url, rival.email)
    product_device = apijs_product.ids(0, 1)[0]
    apijs_product.add(product_device)
    now = timezone.now()
    connect(a.device_id, b.device_id, product_device)  # claiming by id needs the device online

    claim_a, claim_b, claim_product, twice = js_batch(base_url, [
        ("claimDevice", {"deviceId": a.device_id}),
        ("claimDevice", {"deviceId": b.device_id.upper()}),
        ("claimDevice", {"deviceId": product_device}),
        ("claimDevice", {"deviceId": a.device_id}),  # already mine: still fine
    ], auth=apijs_product.token)
    body = ok(claim_a)
    assert body["ok"] is True and body["deviceID"] == a.device_id and body["claimed"] is True
    assert ok(claim_b)["deviceID"] == b.device_id
    assert ok(claim_product)["deviceID"] == product_device
    assert ok(twice)["deviceID"] == a.device_id
    Device.objects.filter(pk=a.device_id).update(last_handshake_at=now - timedelta(hours=1))
    Device.objects.filter(pk=b.device_id).update(last_handshake_at=now)

    listed, stolen, unknown, released, after, rival_list = js_batch(base_url, [
        ("listDevices", {}),
        ("claimDevice", {"deviceId": a.device_id, "auth": rival_token}),
        ("claimDevice", {"deviceId": UNKNOWN_ID, "auth": rival_token}),
        ("removeDevice", {"deviceId": a.device_id}),
        ("listDevices", {}),
        ("listDevices", {"auth": rival_token}),
    ], auth=apijs_product.token)
    devices = ok(listed)
    assert isinstance(devices, list)  # the sandbox list is a bare array (§1, Part B §1.3)
    # Newest handshake first; devices that never handshook come last.
    assert ids_of(devices) == [b.device_id, a.device_id, product_device]
    assert devices[0]["product_id"] == 12 and devices[2]["product_id"] == apijs_product.product.pk
    assert failed(stolen, 403)
    assert failed(unknown, 404)["error"] == "not_found"
    assert ok(released) == {"ok": True}
    assert ids_of(ok(after)) == [b.device_id, product_device]
    assert ok(rival_list) == []
    assert Device.objects.get(pk=a.device_id).owner_id is None


def test_apijs_claim_with_request_transfer_asks_the_owner(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    from devices.models import DeviceTransfer

    mine = manufacture(12, 1)[0].device_id
    connect(mine)  # claiming by id needs the device online
    ok(js(base_url, "claimDevice", {"deviceId": mine}, auth=apijs_product.token))
    rival = UserFactory(email="asker@example.com")
    refused, asked = js_batch(base_url, [
        ("claimDevice", {"deviceId": mine}),
        ("claimDevice", {"deviceId": mine, "requestTransfer": True}),
    ], auth=api_login(base_url, rival.email))
    assert failed(refused, 403)["error"] == "That belongs to someone else."  # what the CLI keys its prompt on
    body = ok(asked)
    assert body["ok"] is True and body["claimed"] is False and body["deviceID"] == mine
    transfer = DeviceTransfer.objects.get(pk=int(body["transfer_id"]))
    assert transfer.requested_by == rival and transfer.owner == apijs_product.owner and transfer.state == "pending"
    assert Device.objects.get(pk=mine).owner == apijs_product.owner


# --- particle-api-js: SIMs -------------------------------------------------------------------------------------------


def test_apijs_product_sims_list_check_usage_and_remove(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    apijs_product.add(*apijs_product.ids(0, 3))
    sims = [m.iccid for m in apijs_product.borons[:3]]
    today = timezone.now().date()
    SimUsage.objects.create(sim_id=sims[0], date=today, mbs_used=Decimal("1.500"))
    SimUsage.objects.create(sim_id=sims[1], date=today, mbs_used=Decimal("0.250"))
    p = apijs_product.product.slug

    (listed, page1, page2, by_iccid, checked, unknown, usage, product_usage, fleet_usage, removed, gone_check,
     after) = js_batch(base_url, [
        ("listSIMs", {"product": p}),
        ("listSIMs", {"product": p, "page": 1, "perPage": 2}),
        ("listSIMs", {"product": apijs_product.product.pk, "page": 2, "perPage": 2}),
        ("listSIMs", {"product": p, "iccid": sims[1]}),
        ("checkSIM", {"iccid": sims[0]}),
        ("checkSIM", {"iccid": "8901000000000000000"}),
        ("getSIMDataUsage", {"iccid": sims[0]}),
        ("getSIMDataUsage", {"iccid": sims[1], "product": p}),
        ("getFleetDataUsage", {"product": p}),
        ("removeSIM", {"iccid": sims[2], "product": p}),
        ("checkSIM", {"iccid": sims[2]}),
        ("listSIMs", {"product": p}),
    ], auth=apijs_product.token)

    body = ok(listed)
    assert sorted(s["_id"] for s in body["sims"]) == sorted(sims) and body["meta"]["total_pages"] == 1
    first = body["sims"][0]
    assert first["iccid"] == first["_id"] and first["status"] == "active"
    assert first["product_id"] == str(apijs_product.product.pk)  # §7: a string id
    assert [len(ok(r)["sims"]) for r in (page1, page2)] == [2, 1]
    assert ok(page1)["meta"]["total_pages"] == 2 and ok(page2)["meta"]["total_pages"] == 2
    assert [s["_id"] for s in ok(by_iccid)["sims"]] == [sims[1]]

    assert ok(checked, 204) == {}  # HEAD must be 204: api-js cannot read a bodiless 200 (Part B §0.6)
    assert not unknown["ok"] and unknown["statusCode"] == 404, unknown

    body = ok(usage)
    assert body["iccid"] == sims[0]
    assert body["usage_by_day"][-1]["date"] == today.isoformat()
    assert body["usage_by_day"][-1]["mbs_used"] == 1.5 and body["usage_by_day"][-1]["mbs_used_cumulative"] == 1.5
    assert ok(product_usage)["usage_by_day"][-1]["mbs_used"] == 0.25
    body = ok(fleet_usage)
    assert body["total_mbs_used"] == 1.75 and body["total_active_sim_cards"] == 3
    assert body["usage_by_day"][-1]["mbs_used"] == 1.75

    assert ok(removed, 204) == {}
    assert not gone_check["ok"] and gone_check["statusCode"] == 404, gone_check
    assert sorted(s["_id"] for s in ok(after)["sims"]) == sorted(sims[:2])
    sim = SimCard.objects.get(pk=sims[2])
    assert sim.product_id is None and sim.status == SimCard.Status.INACTIVE


def test_apijs_sandbox_sims(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    loose = manufacture(13, 1)[0]
    someone = UserFactory(email="someone@example.com")
    token = api_login(base_url, someone.email)
    before, activated, listed, listed_filtered, checked, usage, removed, after, owner_check = js_batch(base_url, [
        ("listSIMs", {}),
        ("put", {"uri": f"/v1/sims/{loose.iccid}", "data": {"action": "activate"}}),  # no api-js method
        ("listSIMs", {}),
        ("listSIMs", {"iccid": "nothing-matches"}),  # api-js drops the filters on the sandbox form
        ("checkSIM", {"iccid": loose.iccid}),
        ("getSIMDataUsage", {"iccid": loose.iccid}),
        ("removeSIM", {"iccid": loose.iccid}),
        ("listSIMs", {}),
        ("checkSIM", {"iccid": loose.iccid, "auth": apijs_product.token}),
    ], auth=token)
    assert ok(before)["sims"] == []
    assert ok(activated)["status"] == "active"
    body = ok(listed)
    assert [s["_id"] for s in body["sims"]] == [loose.iccid] and body["sims"][0]["owner"] == someone.email
    assert [s["_id"] for s in ok(listed_filtered)["sims"]] == [loose.iccid]
    assert ok(checked, 204) == {}
    assert ok(usage)["iccid"] == loose.iccid
    assert ok(removed, 204) == {}
    assert ok(after)["sims"] == []
    assert not owner_check["ok"] and owner_check["statusCode"] == 404  # never the owner's to see


def test_apijs_sandbox_sim_list_is_not_cut_at_one_page(base_url):
    """Part A §1: the sandbox lists (GET /v1/devices, GET /v1/sims) are unpaginated, and Part B §1.4: api-js
    listSIMs() without a product sends no query at all, so it has no way to ask for a second page."""
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="ada@example.com")
    token = api_login(base_url, owner.email)
    made = manufacture(13, 30)
    SimCard.objects.filter(iccid__in=[m.iccid for m in made]).update(user=owner, status=SimCard.Status.ACTIVE)
    body = ok(js(base_url, "listSIMs", auth=token))
    sims = body["sims"] if isinstance(body, dict) else body  # §7 shape {sims, meta}; §1 says a bare array
    assert sorted(s["_id"] for s in sims) == sorted(m.iccid for m in made)


# --- particle-api-js: customers --------------------------------------------------------------------------------------


def _product_client(base_url: str, apijs_product: ApiJsProduct) -> dict:
    created = ok(js(base_url, "createOAuthClient", {"name": "fleet app", "type": "installed",
                                                    "product": apijs_product.product.slug}, auth=apijs_product.token), 201)
    return created.get("client", created)


def test_apijs_customers_create_token_login_and_own_devices(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    client = _product_client(base_url, apijs_product)
    cid, secret = client["id"], client["secret"]
    p = apijs_product.product.slug

    # createCustomer: a form with email, password and the product client's credentials (Part B §1.1).
    created = js(base_url, "createCustomer", {"email": "Carol@Example.com", "password": "carol-secret-1",
                                              "product": p}, client_id=cid, client_secret=secret)
    body = ok(created, 201)
    assert body["token_type"] == "bearer" and TOKEN_RE.fullmatch(body["access_token"]) and body["refresh_token"]
    carol_first = body["access_token"]
    # A second customer, created by a team member's token (api-js still sends its default particle-api client).
    body = ok(js(base_url, "createCustomer", {"email": "dave@example.com", "password": "dave-secret-1",
                                              "product": apijs_product.product.pk}, auth=apijs_product.token), 201)
    dave = body["access_token"]
    duplicate = js(base_url, "createCustomer", {"email": "carol@example.com", "password": "another-pass-1",
                                                "product": p}, client_id=cid, client_secret=secret)
    failed(duplicate, 400)
    carol = Customer.objects.get(product=apijs_product.product, email="carol@example.com")

    # Devices: one for each customer, one unowned.
    mine, theirs, nobody = apijs_product.ids(0, 3)
    apijs_product.add(mine, theirs, nobody)
    Device.objects.filter(pk=mine).update(customer=carol)
    Device.objects.filter(pk=theirs).update(customer=Customer.objects.get(email="dave@example.com"))

    # A customer token for an existing customer: client_credentials + scope=customer=<email> (§8); api-js has
    # no method with a scope, so the generic request helper posts the form.
    scoped = ok(js(base_url, "request", {"uri": "/oauth/token", "method": "post", "form": {
        "grant_type": "client_credentials", "client_id": cid, "client_secret": secret,
        "scope": "customer=carol@example.com"}}))
    assert TOKEN_RE.fullmatch(scoped["access_token"]) and scoped["access_token"] != carol_first
    # A customer's password login: api-js `login` with the product client set on the Particle instance.
    logged = ok(js(base_url, "login", {"username": "carol@example.com", "password": "carol-secret-1"},
                   client_id=cid, client_secret=secret))
    wrong = js(base_url, "login", {"username": "carol@example.com", "password": "not-her-password"},
               client_id=cid, client_secret=secret)
    assert failed(wrong, 400)["error"] == "invalid_grant"

    for token in (carol_first, scoped["access_token"], logged["access_token"]):
        listed, own, other, product_route = js_batch(base_url, [
            ("listDevices", {}),
            ("getDevice", {"deviceId": mine}),
            ("getDevice", {"deviceId": theirs}),
            ("listDevices", {"product": p}),  # customers get no product routes (§8)
        ], auth=token)
        devices = ok(listed)
        assert isinstance(devices, list) and ids_of(devices) == [mine]
        assert devices[0]["owner"] == "carol@example.com"
        assert ok(own)["id"] == mine
        assert failed(other, 404)
        failed(product_route, 404)
    assert ids_of(ok(js(base_url, "listDevices", auth=dave))) == [theirs]

    # The team sees both customers, with their devices (generic get: there is no api-js method).
    body = ok(js(base_url, "get", {"uri": f"/v1/products/{p}/customers"}, auth=apijs_product.token))
    assert {c["username"]: c["devices"] for c in body["customers"]} == {"carol@example.com": [mine],
                                                                        "dave@example.com": [theirs]}
    assert body["meta"]["total_pages"] == 1
    listed = ok(js(base_url, "listDevices", {"product": p}, auth=apijs_product.token))
    assert sorted(c["username"] for c in listed["customers"]) == ["carol@example.com", "dave@example.com"]
    assert {d["id"]: d["owner"] for d in listed["devices"]} == {mine: "carol@example.com",
                                                               theirs: "dave@example.com", nobody: None}

    # An unknown customer cannot get a token.
    unknown = js(base_url, "request", {"uri": "/oauth/token", "method": "post", "form": {
        "grant_type": "client_credentials", "client_id": cid, "client_secret": secret,
        "scope": "customer=nobody@example.com"}})
    failed(unknown, 400)


def test_apijs_claim_codes(base_url, apijs_product):
    need(node_available(), "node/npm not installed")
    client = _product_client(base_url, apijs_product)
    p = apijs_product.product.slug
    carol = ok(js(base_url, "createCustomer", {"email": "carol@example.com", "password": "carol-secret-1",
                                               "product": p}, client_id=client["id"],
                  client_secret=client["secret"]), 201)["access_token"]
    mine = apijs_product.ids(0, 1)[0]
    apijs_product.add(mine)
    Device.objects.filter(pk=mine).update(customer=Customer.objects.get(email="carol@example.com"))
    argon = apijs_product.argons[0].device_id
    connect(argon)  # claiming by id needs the device online
    ok(js(base_url, "claimDevice", {"deviceId": argon}, auth=apijs_product.token))

    customer_code, user_code, again = js_batch(base_url, [
        ("getClaimCode", {"product": p, "auth": carol}),  # the product form takes a customer token (§1.2)
        ("getClaimCode", {}),  # the sandbox form, with the user's token
        ("getClaimCode", {"product": apijs_product.product.pk, "auth": carol}),
    ], auth=apijs_product.token)
    body = ok(customer_code)
    assert body["claim_code"] and body["device_ids"] == [mine]
    body = ok(user_code)
    assert body["claim_code"] and body["device_ids"] == [argon]
    assert ok(again)["claim_code"] != ok(customer_code)["claim_code"]
    stored = ClaimCode.objects.get(code=ok(customer_code)["claim_code"])
    assert stored.customer.email == "carol@example.com" and stored.product_id == apijs_product.product.pk
    assert abs((stored.expires_at - stored.created_at).total_seconds() - 3600) < 5  # valid 1 hour (Numbers)
    assert ClaimCode.objects.get(code=ok(user_code)["claim_code"]).user_id == apijs_product.owner.pk


# --- particle-cli 3.43.1 ---------------------------------------------------------------------------------------------


def _out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def test_cli_product_device_add_by_id_and_by_file(cli, base_url, tmp_path):
    need(node_available(), "node/npm not installed")
    apijs_product = ApiJsProduct(base_url)
    cli.login(apijs_product.owner.email)
    one, by_serial, by_id, taken = apijs_product.borons[:4]
    elsewhere = make_product(make_org(UserFactory(email="other@example.com"), "Other Corp"), platform_id=13)
    Device.objects.filter(pk=taken.device_id).update(product=elsewhere)

    proc = cli.run("product", "device", "add", apijs_product.product.slug, one.device_id)
    assert proc.returncode == 0, show(proc)
    assert "Success!" in proc.stdout and f"Product {apijs_product.product.slug} Includes:" in proc.stdout, show(proc)
    assert f"  {one.device_id}" in proc.stdout, show(proc)
    assert Device.objects.get(pk=one.device_id).product_id == apijs_product.product.pk

    listing = tmp_path / "devices.txt"
    listing.write_text(f"{by_id.device_id}\n{by_serial.serial_number}\nnot-a-device!\n{taken.device_id}\n")
    proc = cli.run("product", "device", "add", str(apijs_product.product.pk), "--file", str(listing))
    assert proc.returncode == 0, show(proc)
    out = proc.stdout
    includes = out.split(f"Product {apijs_product.product.pk} Includes:")[1].split("Skipped")[0]
    assert by_id.device_id in includes and by_serial.serial_number in includes, show(proc)
    assert "not-a-device!" not in includes and taken.device_id not in includes, show(proc)
    assert re.search(rf"Skipped Non-Member IDs:\s+{taken.device_id}", out), show(proc)
    assert re.search(r"Skipped Invalid IDs:\s+not-a-device!", out), show(proc)
    assert set(Device.objects.filter(product=apijs_product.product).values_list("id", flat=True)) == {
        one.device_id, by_id.device_id, by_serial.device_id}

    # Nothing importable: the CLI fails, listing what was skipped.
    argon = apijs_product.argons[0].device_id
    proc = cli.run("product", "device", "add", apijs_product.product.slug, argon)
    assert proc.returncode != 0, show(proc)
    assert re.search(rf"Skipped Invalid IDs:\s+{argon}", _out(proc)), show(proc)

    # Someone else's product: the server's 404 message comes through.
    proc = cli.run("product", "device", "add", elsewhere.slug, apijs_product.ids(5, 6)[0])
    assert proc.returncode != 0, show(proc)
    assert "Error adding device(s) to product" in _out(proc) and "not found" in _out(proc).lower(), show(proc)
    assert Device.objects.get(pk=apijs_product.ids(5, 6)[0]).product_id is None


def test_cli_product_device_list_detail_and_remove(cli, base_url):
    need(node_available(), "node/npm not installed")
    apijs_product = ApiJsProduct(base_url)
    ids = apijs_product.ids(0, 5)
    apijs_product.add(*ids)
    names = ["north-1", "north-2", "south-1", "east-1", "west-1"]
    now = timezone.now()
    for i, (device_id, name) in enumerate(zip(ids, names)):
        Device.objects.filter(pk=device_id).update(name=name, last_heard=now - timedelta(minutes=i))
    Device.objects.filter(pk=ids[0]).update(online=True, functions=["reset"], variables={"temp": "double"})
    p = apijs_product.product.slug
    ok(js(base_url, "put", {"uri": f"/v1/products/{p}/devices", "data": {
        "action": "groups", "devices": [ids[0], ids[2]], "metadata": {"add": ["alpha"]}}}, auth=apijs_product.token))
    ok(js(base_url, "put", {"uri": f"/v1/products/{p}/devices", "data": {
        "action": "groups", "devices": [ids[3]], "metadata": {"add": ["beta"]}}}, auth=apijs_product.token))
    cli.login(apijs_product.owner.email)

    def listed(*extra: str) -> list[str]:
        proc = cli.run("product", "device", "list", *extra)
        assert proc.returncode == 0, show(proc)
        return re.findall(r"\[([0-9a-f]{24})\]", proc.stdout)

    assert listed(p) == ids  # newest connection first
    proc = cli.run("product", "device", "list", p)
    assert re.search(rf"north-1 \[{ids[0]}\] \(.*\) is online", proc.stdout), show(proc)
    assert re.search(rf"west-1 \[{ids[4]}\] \(.*\) is offline", proc.stdout), show(proc)
    assert "temp (double)" in proc.stdout and "int reset (String args)" in proc.stdout, show(proc)

    assert listed(p, "--limit", "2") == ids[:2]
    assert listed(p, "--page", "2", "--limit", "2") == ids[2:4]
    assert listed(str(apijs_product.product.pk), "--page", "3", "--limit", "2") == ids[4:]
    assert listed(p, "--name", "north") == ids[:2]
    assert listed(p, "--groups", "alpha", "beta") == [ids[0], ids[2], ids[3]]
    assert listed(p, "--groups", "beta") == [ids[3]]

    proc = cli.run("product", "device", "list", p, "--json")
    assert proc.returncode == 0, show(proc)
    parsed = json.loads(proc.stdout)
    assert [d["id"] for d in parsed["data"]] == ids and parsed["meta"]["current"] == 1

    proc = cli.run("product", "device", "list", p, ids[0])
    assert proc.returncode == 0, show(proc)
    assert re.search(rf"north-1 \[{ids[0]}\] \(.*\) is online", proc.stdout), show(proc)
    assert "temp (double)" in proc.stdout, show(proc)
    proc = cli.run("product", "device", "list", p, ids[1], "--json")
    assert proc.returncode == 0, show(proc)
    detail = json.loads(proc.stdout)["data"]
    assert detail["id"] == ids[1] and detail["name"] == "north-2" and detail["groups"] == []
    assert detail["product_id"] == apijs_product.product.pk

    proc = cli.run("product", "device", "remove", p, ids[4])
    assert proc.returncode == 0, show(proc)
    assert f"Success! Removed device {ids[4]} from product {p}" in proc.stdout, show(proc)
    assert Device.objects.get(pk=ids[4]).product_id is None
    assert listed(p) == ids[:4]

    proc = cli.run("product", "device", "remove", p, ids[4])
    assert proc.returncode != 0, show(proc)
    assert "Error removing device from product" in _out(proc), show(proc)
    proc = cli.run("product", "device", "list", p, ids[4])
    assert proc.returncode != 0 and "Error showing product device detail" in _out(proc), show(proc)

    # A product this user cannot see.
    hidden = make_product(make_org(UserFactory(email="other@example.com"), "Other Corp"), platform_id=13)
    proc = cli.run("product", "device", "list", hidden.slug)
    assert proc.returncode != 0, show(proc)
    assert "Error listing product devices" in _out(proc) and "not found" in _out(proc).lower(), show(proc)


def test_cli_device_add_claims_and_list_shows_it(cli, base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    cli.login("ada@example.com")
    lamp, sensor = manufacture(12, 2)

    proc = cli.run("list")
    assert proc.returncode == 0, show(proc)
    assert "No devices found." in proc.stdout, show(proc)

    connect(lamp.device_id, sensor.device_id)  # claiming by id needs the device online
    proc = cli.run("device", "add", lamp.device_id)
    assert proc.returncode == 0, show(proc)
    assert f"Successfully claimed device {lamp.device_id}" in proc.stdout, show(proc)
    proc = cli.run("device", "add", sensor.device_id)
    assert proc.returncode == 0, show(proc)
    assert set(Device.objects.filter(owner__email="ada@example.com").values_list("id", flat=True)) == {
        lamp.device_id, sensor.device_id}

    # The CLI fetches GET /v1/devices/:id for connected devices to show their variables and functions.
    Device.objects.filter(pk=lamp.device_id).update(name="lamp", online=True, variables={"level": "int32"},
                                                    functions=["toggle"])
    Device.objects.filter(pk=sensor.device_id).update(name="sensor")
    proc = cli.run("list")
    assert proc.returncode == 0, show(proc)
    assert re.search(rf"lamp \[{lamp.device_id}\] \(Argon\) is online", proc.stdout), show(proc)
    assert re.search(rf"sensor \[{sensor.device_id}\] \(Argon\) is offline", proc.stdout), show(proc)
    assert "level (int32)" in proc.stdout and "int toggle (String args)" in proc.stdout, show(proc)

    # Someone else's device, and one that was never made.
    taken = manufacture(12, 1)[0]
    Device.objects.filter(pk=taken.device_id).update(owner=UserFactory(email="bob@example.com"))
    # The server's error names the owner conflict in the words the CLI looks for, so it offers a transfer.
    connect(taken.device_id)
    proc = cli.run("device", "add", taken.device_id, input="n\n")
    assert "belongs to someone else" in _out(proc), show(proc)
    assert proc.returncode != 0, show(proc)
    assert Device.objects.get(pk=taken.device_id).owner.email == "bob@example.com"
    proc = cli.run("device", "add", UNKNOWN_ID)
    assert proc.returncode != 0 and "Failed to claim device" in _out(proc), show(proc)
