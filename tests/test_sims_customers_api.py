"""SIM cards, customers and claim codes over the API."""

from __future__ import annotations

import pytest

from console.models import AccessToken
from console.services import clients as client_services
from console.scoping import Principal
from devices.models import ClaimCode, Customer, Device, SimCard
from tests.support.api import Api
from tests.support.fleet import ids, manufacture

pytestmark = pytest.mark.django_db


@pytest.fixture
def six_borons_four_imported(cast):
    """Six manufactured Borons (with their SIMs); the first four imported into Trackers over the API."""
    made = manufacture(13, 6)
    cast.api("owner").post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(made[:4])})
    return made


def test_product_sim_list_filters_and_pages(cast, six_borons_four_imported):
    api = cast.api("viewer")
    body = api.get(f"/v1/products/{cast.product.pk}/sims", {"per_page": 3}).json()
    assert len(body["sims"]) == 3 and body["meta"]["total_pages"] == 2
    sim = body["sims"][0]
    assert sim["_id"] == sim["iccid"] and sim["status"] == "active" and sim["product_id"] == str(cast.product.pk)
    one = api.get(f"/v1/products/{cast.product.pk}/sims", {"iccid": six_borons_four_imported[1].iccid}).json()["sims"]
    assert [s["iccid"] for s in one] == [six_borons_four_imported[1].iccid]
    by_device = api.get(f"/v1/products/{cast.product.pk}/sims", {"deviceId": six_borons_four_imported[2].device_id}).json()["sims"]
    assert [s["last_device_id"] for s in by_device] == [six_borons_four_imported[2].device_id]


def test_head_sim_is_204_or_404(cast, six_borons_four_imported):
    assert cast.api("viewer").call("HEAD", f"/v1/sims/{six_borons_four_imported[0].iccid}").status_code == 204
    assert cast.api("outsider").call("HEAD", f"/v1/sims/{six_borons_four_imported[0].iccid}").status_code == 404
    assert cast.api("viewer").call("HEAD", "/v1/sims/8901000000000000000").status_code == 404


def test_sim_state_changes_by_role(cast, six_borons_four_imported):
    path = f"/v1/products/{cast.product.pk}/sims/{six_borons_four_imported[0].iccid}"
    assert cast.api("viewer").put(path, {"action": "deactivate"}).status_code == 403
    r = cast.api("support").put(path, {"action": "deactivate"})
    assert r.status_code == 200 and r.json()["status"] == "inactive"
    assert cast.api("support").put(path, {"action": "deactivate"}).status_code == 400
    assert cast.api("support").put(path, {"action": "reactivate"}).json()["status"] == "active"
    assert cast.api("support").put(path, {"action": "explode"}).status_code == 400
    assert cast.api("support").put(path, {"mb_limit": 900}).status_code == 400
    assert cast.api("support").delete(path).status_code == 403  # release needs Developer
    assert cast.api("developer").delete(path).status_code == 204
    sim = SimCard.objects.get(pk=six_borons_four_imported[0].iccid)
    assert sim.product is None and sim.status == SimCard.Status.INACTIVE


def test_sim_import_imports_the_device(cast, six_borons_four_imported):
    r = cast.api("developer").post(f"/v1/products/{cast.product.pk}/sims",
                                   {"sims": [six_borons_four_imported[4].iccid, "8901999", six_borons_four_imported[0].iccid]})
    body = r.json()
    assert r.status_code == 200 and body["ok"] is True
    assert body["imported"] == [six_borons_four_imported[4].iccid] and body["existing"] == [six_borons_four_imported[0].iccid]
    assert body["devices_imported"] == [six_borons_four_imported[4].device_id]
    assert Device.objects.get(pk=six_borons_four_imported[4].device_id).product == cast.product


def test_sandbox_sim_activation_and_usage(cast, six_borons_four_imported):
    me = cast.api("outsider")
    r = me.put(f"/v1/sims/{six_borons_four_imported[5].iccid}", {"action": "activate"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert [s["iccid"] for s in me.get("/v1/sims").json()["sims"]] == [six_borons_four_imported[5].iccid]
    # Product SIMs are not the user's sandbox SIMs: /v1/sims lists only the latter, whole and unpaged.
    assert cast.api("owner").get("/v1/sims").json()["sims"] == []
    usage = me.get(f"/v1/sims/{six_borons_four_imported[5].iccid}/data_usage").json()
    assert usage["iccid"] == six_borons_four_imported[5].iccid and usage["usage_by_day"]
    fleet_usage = cast.api("viewer").get(f"/v1/products/{cast.product.pk}/sims/data_usage").json()
    assert fleet_usage["total_active_sim_cards"] == 4
    # Someone else's SIM cannot be taken by activating it.
    assert cast.api("viewer").put(f"/v1/sims/{six_borons_four_imported[5].iccid}", {"action": "activate"}).status_code == 404


def test_customer_created_by_team_and_by_client(cast, six_borons_four_imported, api):
    r = cast.api("developer").post(f"/v1/products/{cast.product.pk}/customers",
                                   {"email": "alice@example.com", "password": "alice-password"})
    assert r.status_code == 201 and r.json()["token_type"] == "bearer"
    client, secret = client_services.client_create(principal=Principal.for_user(cast.owner), product_id=cast.product.pk,
                                            product_slug=cast.product.slug, name="app", type="installed")
    r = api.call("POST", f"/v1/products/{cast.product.pk}/customers",
                 {"email": "shadow@example.com", "no_password": "true", "client_id": client.client_id,
                  "client_secret": secret}, form=True)
    assert r.status_code == 201, r.content
    shadow_token = r.json()["access_token"]
    r = api.call("POST", "/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                          "client_secret": secret, "scope": "customer=shadow@example.com"}, form=True)
    assert r.status_code == 200
    r = api.call("POST", "/oauth/token", {"grant_type": "password", "username": "alice@example.com",
                                          "password": "alice-password", "client_id": client.client_id,
                                          "client_secret": secret}, form=True)
    assert r.status_code == 200
    alice = Api(r.json()["access_token"])
    # A customer sees only its own devices.
    Device.objects.filter(pk=six_borons_four_imported[0].device_id).update(customer=Customer.objects.get(email="alice@example.com"))
    assert [d["id"] for d in alice.get("/v1/devices").json()] == [six_borons_four_imported[0].device_id]
    assert alice.get(f"/v1/devices/{six_borons_four_imported[1].device_id}").status_code == 404
    assert alice.get(f"/v1/products/{cast.product.pk}/devices").status_code == 404
    assert alice.put(f"/v1/devices/{six_borons_four_imported[0].device_id}", {"name": "my_lamp"}).status_code == 200
    assert Api(shadow_token).get("/v1/devices").json() == []
    listed = cast.api("viewer").get(f"/v1/products/{cast.product.pk}/customers").json()
    assert {c["username"] for c in listed["customers"]} == {"alice@example.com", "shadow@example.com"}


def test_customer_bad_input_and_duplicates(cast):
    api = cast.api("developer")
    path = f"/v1/products/{cast.product.pk}/customers"
    assert api.post(path, {"email": "bob@example.com"}).status_code == 400
    assert api.post(path, {"email": "bob@example.com", "password": "short"}).status_code == 400
    assert api.post(path, {"email": "bob@example.com", "password": "long-enough-pw"}).status_code == 201
    r = api.post(path, {"email": "BOB@example.com", "password": "long-enough-pw"})
    assert r.status_code == 400 and r.json()["error"] == "customer_exists"
    assert cast.api("viewer").post(path, {"email": "v@example.com", "password": "long-enough-pw"}).status_code == 403
    assert Customer.objects.count() == 1


def test_customer_delete_revokes_tokens_and_releases_devices(cast, six_borons_four_imported):
    api = cast.api("developer")
    token = api.post(f"/v1/products/{cast.product.pk}/customers",
                     {"email": "carol@example.com", "password": "carol-password"}).json()["access_token"]
    customer = Customer.objects.get(email="carol@example.com")
    Device.objects.filter(pk=six_borons_four_imported[0].device_id).update(customer=customer)
    assert Api(token).post(f"/v1/products/{cast.product.pk}/device_claims", {}).status_code == 200
    assert api.put(f"/v1/products/{cast.product.pk}/customers/carol@example.com", {"password": "another-pw-1"}).json() == {"ok": True}
    assert cast.api("support").delete(f"/v1/products/{cast.product.pk}/customers/carol@example.com").status_code == 403
    assert api.delete(f"/v1/products/{cast.product.pk}/customers/carol@example.com").json() == {"ok": True}
    assert Api(token).get("/v1/devices").status_code == 401
    assert not AccessToken.objects.filter(customer_id=customer.pk).exists()
    assert not ClaimCode.objects.exists()
    assert Device.objects.get(pk=six_borons_four_imported[0].device_id).customer is None


def test_claim_code_for_user(cast):
    r = cast.api("outsider").post("/v1/device_claims", {})
    assert r.status_code == 200 and len(r.json()["claim_code"]) >= 40 and r.json()["device_ids"] == []
    code = ClaimCode.objects.get(code=r.json()["claim_code"])
    assert 3590 <= (code.expires_at - code.created_at).total_seconds() <= 3610
