"""Nobody takes another person's device without asking (issue 11, defects 2-4).

* An import took a device claimed in someone else's sandbox — by id, serial or ICCID, with or without
  `claim_user` — and the owner lost it; activating a SIM took the SIM of another user's device.
* A customer token set groups, development, the firmware lock and forced updates on its device.
* A Developer who claimed a product device and was then removed from the team kept setting them.
"""

from __future__ import annotations

import pytest

from console.scoping import Principal
from devices.models import Customer, Device, DeviceGroupMembership, SimCard
from devices.services import claims, customers
from devices.services.importing import device_import
from products.models import DeviceGroup, ProductMembership
from tests.support.api import Api, user_token
from tests.support.fleet import manufacture
from tests.factories import UserFactory
from tests.support.presence import connect

pytestmark = pytest.mark.django_db


@pytest.fixture
def victims_device(db):
    """A Boron claimed by a maker in her own sandbox (in no product)."""
    victim = UserFactory(email="maker@example.com")
    made = manufacture(13, 1)[0]
    connect(made.device_id)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(victim), device_id=made.device_id)
    return victim, made


def _untouched(made, victim) -> None:
    device = Device.objects.get(pk=made.device_id)
    assert device.owner_id == victim.pk and device.product_id is None, (device.owner_id, device.product_id)


@pytest.mark.parametrize("by", ["id", "serial", "iccid"])
@pytest.mark.parametrize("claim", [True, False])
def test_an_import_refuses_a_device_claimed_by_someone_outside_the_team(cast, victims_device, by, claim):
    victim, made = victims_device
    line = {"id": made.device_id, "serial": made.serial_number, "iccid": made.iccid}[by]
    body = {"ids": [line]} | ({"claim_user": cast.owner.email} if claim else {})
    r = cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", body)
    assert r.status_code == 200, r.content
    report = r.json()
    assert report["updated"] == 0 and report["claimedDeviceIds"] == [line]
    assert report["nonmemberDeviceIds"] == [line]  # particle-cli lists these as skipped
    assert report["rejected"] == [{"line": 1, "value": line, "reason": "claimed",
                                   "message": report["rejected"][0]["message"]}]
    assert "outside this product's team" in report["rejected"][0]["message"]
    _untouched(made, victim)
    assert SimCard.objects.get(iccid=made.iccid).product_id is None


def test_the_import_service_refuses_it_for_every_door(cast, victims_device):
    victim, made = victims_device
    report = device_import(principal=Principal.for_user(cast.owner), product=cast.product,
                           values=[(1, made.device_id)], claim_user=cast.developer.email)
    assert report.updated_ids == [] and report.claimed_ids == [made.device_id]
    _untouched(made, victim)


def test_a_device_claimed_by_a_team_member_is_imported_and_keeps_its_owner(cast):
    made = manufacture(13, 1)[0]
    connect(made.device_id)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(cast.developer), device_id=made.device_id)
    r = cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", {"id": made.device_id})
    assert r.json()["updatedDeviceIds"] == [made.device_id], r.content
    device = Device.objects.get(pk=made.device_id)
    assert device.product_id == cast.product.pk and device.owner_id == cast.developer.pk


def test_activating_a_sim_does_not_take_the_sim_of_another_users_device(cast, victims_device):
    victim, made = victims_device
    r = cast.api("outsider").put(f"/v1/sims/{made.iccid}", {"action": "activate"})
    assert r.status_code == 404, r.content
    sim = SimCard.objects.get(iccid=made.iccid)
    assert sim.user_id is None and sim.status == SimCard.Status.NEVER_ACTIVATED
    mine = Api(user_token(victim)).put(f"/v1/sims/{made.iccid}", {"action": "activate"})
    assert mine.status_code == 200 and mine.json()["owner"] == victim.email, mine.content


def test_a_sim_import_refuses_the_sim_of_a_device_claimed_outside_the_team(cast, victims_device):
    victim, made = victims_device
    r = cast.api("owner").post(f"/v1/products/{cast.product.pk}/sims", {"sims": [made.iccid]})
    assert r.status_code == 200, r.content
    assert r.json()["imported"] == [] and r.json()["rejected"][0]["reason"] == "claimed"
    assert SimCard.objects.get(iccid=made.iccid).product_id is None
    _untouched(made, victim)


PRODUCT_FIELDS = [
    ("groups", ["vip"]),
    ("development", True),
    ("desired_firmware_version", 3),
    ("firmware_updates_forced", True),
]


def _product_device(cast) -> Device:
    made = manufacture(13, 1)[0]
    device_import(principal=Principal.for_user(cast.owner), product=cast.product, values=[(1, made.device_id)])
    return Device.objects.get(pk=made.device_id)


def _snapshot(device_id: str) -> tuple:
    d = Device.objects.get(pk=device_id)
    return (d.development, d.desired_firmware_version, d.firmware_updates_forced,
            sorted(DeviceGroupMembership.objects.filter(device=d).values_list("group__name", flat=True)),
            DeviceGroup.objects.filter(name="vip").exists())


@pytest.mark.parametrize("field,value", PRODUCT_FIELDS)
def test_a_customer_may_not_write_product_settings_on_its_device(cast, field, value):
    device = _product_device(cast)
    alice = Customer.objects.create(product=cast.product, email="alice@example.com")
    Device.objects.filter(pk=device.pk).update(customer=alice)
    token = customers.customer_issue_token(alice, client=None).access_token
    before = _snapshot(device.pk)
    r = Api(token).put(f"/v1/devices/{device.pk}", {field: value})
    assert r.status_code == 403, r.content
    assert "Customers may rename" in r.json()["error_description"]
    assert _snapshot(device.pk) == before


def test_a_customer_may_rename_its_device_and_add_notes(cast):
    device = _product_device(cast)
    alice = Customer.objects.create(product=cast.product, email="alice@example.com")
    Device.objects.filter(pk=device.pk).update(customer=alice)
    token = customers.customer_issue_token(alice, client=None).access_token
    r = Api(token).put(f"/v1/devices/{device.pk}", {"name": "kitchen", "notes": "by the window"})
    assert r.status_code == 200, r.content
    device.refresh_from_db()
    assert (device.name, device.notes) == ("kitchen", "by the window")


@pytest.mark.parametrize("field,value", PRODUCT_FIELDS)
def test_a_removed_member_keeps_no_control_over_product_settings(cast, field, value):
    device = _product_device(cast)
    connect(device.pk)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(cast.developer), device_id=device.pk)
    api = cast.api("developer")
    assert api.put(f"/v1/devices/{device.pk}", {"notes": "still on my desk"}).status_code == 200
    ProductMembership.objects.filter(product=cast.product, user=cast.developer).delete()
    before = _snapshot(device.pk)
    r = api.put(f"/v1/devices/{device.pk}", {field: value})
    assert r.status_code == 403, r.content
    assert "role on the device's product" in r.json()["error_description"]
    assert _snapshot(device.pk) == before
    # what an owner may always do with a device claimed to them
    assert api.put(f"/v1/devices/{device.pk}", {"name": "desk-unit"}).status_code == 200


def test_a_current_developer_still_sets_them(cast):
    device = _product_device(cast)
    connect(device.pk)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(cast.developer), device_id=device.pk)
    r = cast.api("developer").put(f"/v1/devices/{device.pk}", {"development": True, "groups": ["vip"]})
    assert r.status_code == 200, r.content
    assert _snapshot(device.pk)[0] is True and _snapshot(device.pk)[3] == ["vip"]
