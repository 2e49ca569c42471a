"""Who may call what on the device, SIM, group, customer and claim routes, against the whole cast.

The cast (tests/conftest.py): an org "Acme" owning the Boron product "Trackers"; `owner` created the org;
`admin` and `viewer` hold org seats; `developer` and `support` hold product seats; `outsider` owns another org
and its product. On top of that, every cell gets:

* `api_with` / `api_without`: a fresh product API user holding exactly the route's scope / every device, SIM,
  group and customer scope *except* the route's (the fixture's own API users only hold devices:list);
* `product_token`: the product OAuth client's client_credentials token;
* `customer`: a token of the product's customer alice@example.com (who owns one device of the product);
* `own_customer`: the same customer, with the device the route addresses made hers first (a customer may
  read, rename, annotate and unclaim its own device, and nothing of the product's);
* `ex_member`: former@example.com, a Developer who claimed the device the route addresses and was then
  removed from the team: the device stays claimed to them, the product is none of their business any more
  (product routes 404, product-level fields on their device 403).

Rules (particle-api.md §6-§9, §11, "Numbers"; DESIGN.md §3; seeds 000/002):
* outsiders get 404, indistinguishable from "no such thing", and never read the product's name/slug or the id
  of any of its devices or SIMs;
* View-only reads everything but every write is a 403 that leaves the database unchanged; Support adds ping,
  functions, variables and SIM state; Developer adds import/remove/update/release of devices, SIMs, groups and
  customers; Administrator and Owner do all of it;
* API users act within their scopes (403 on their product without the scope, 404 on other products), product
  tokens act as a Developer on their own product only, and neither may call a user-only (sandbox) route (400
  `unauthorized`, particle-api.md §1);
* customers reach only `/v1/devices/...` for their own devices (and the product's claim-code route): every other
  product route is a 404, another customer's device is a 404.
Every refused request leaves the database as it was; after every accepted write Product.device_count and
DeviceGroup.device_count equal fresh COUNT queries.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.contrib.auth.hashers import check_password

from console.services import users as user_services
from console.models import User
from console.roles import Role
from console.scoping import Principal
from console.services.teams import api_user_create, team_remove
from devices.selectors.limits import FREE_DEVICE_LIMIT, sandbox_device_count
from devices.services import claims
from devices.services import groups as device_services
from devices.services.importing import device_import
from devices.models import ClaimCode, Customer, Device, DeviceGroupMembership, SimCard
from products.models import DeviceGroup, Product
from products.services import product_move, product_team
from tests.support.api import Api, user_token
from tests.support.cast import Cast
from tests.support.db_state import assert_device_counts, device_state
from tests.support.errors import assert_json_error
from tests.support.fleet import customer_token, ids, import_devices, manufacture
from tests.support.routes import DEVICE_MATRIX_ROUTES
from tests.factories import UserFactory, make_org, make_product, seat
from tests.support.presence import connect

pytestmark = pytest.mark.django_db

ROLES = ("owner", "admin", "developer", "support", "viewer", "outsider", "api_with", "api_without",
         "product_token", "customer", "own_customer", "ex_member")
HUMANS = ROLES[:6] + ("ex_member",)
CUSTOMERS = ("customer", "own_customer")

# Every scope these routes use; `api_without` holds all of them but the route's own.
DEVICE_SCOPES = [
    "devices:list", "devices:get", "devices:import", "devices:update", "devices:remove", "devices:release",
    "devices:ping", "devices.variable:get", "devices.function:call",
    "groups:list", "groups:get", "groups:create", "groups:update", "groups:remove",
    "sims:list", "sims:get", "sims:import", "sims:update", "sims:remove", "sims.usage:get",
    "customers:list", "customers:create", "customers:update", "customers:remove",
]


# --- the world every cell starts from ----------------------------------------------------------


@dataclass
class World:
    cast: Cast
    alice: Customer  # the `customer` column
    bob: Customer  # another customer of the same product
    alice_device: str
    outsider_device: str  # a member of the outsider's product
    loose_device: str  # an unclaimed registry device in no product: nobody's business
    former: User  # the `ex_member` column, still a Developer until the cell removes them
    tokens: dict = field(default_factory=dict)

    @property
    def p(self) -> int:
        return self.cast.product.pk

    def api(self, role: str) -> Api:
        return Api(self.tokens[role])


@pytest.fixture
def world(cast) -> World:
    alice = Customer.objects.create(product=cast.product, email="alice@example.com")
    bob = Customer.objects.create(product=cast.product, email="bob@example.com")
    alice_device = import_devices(cast.product)[0]
    Device.objects.filter(pk=alice_device).update(customer=alice)
    outsider_device = import_devices(cast.outsider_product, by=cast.outsider)[0]
    loose_device = manufacture(13, 1)[0].device_id
    tokens = dict(cast.tokens)
    tokens["customer"] = tokens["own_customer"] = customer_token(alice)
    former = UserFactory(email="former@example.com")
    seat(cast.product, former, Role.DEVELOPER)
    tokens["ex_member"] = user_token(former)
    return World(cast=cast, alice=alice, bob=bob, alice_device=alice_device, outsider_device=outsider_device,
                 loose_device=loose_device, former=former, tokens=tokens)


def hand_over(world: World, role: str, device_id: str | None) -> None:
    """Make the device the route addresses the caller's, for the columns that are about one's own device:
    `own_customer` gets it as a customer; `ex_member` claims it while still a Developer (as developers claim
    the test devices on their desks) and is then removed from the team."""
    if role == "own_customer" and device_id:
        Device.objects.filter(pk=device_id).update(customer=world.alice, owner=None)
    elif role == "ex_member":
        if device_id:
            Device.objects.filter(pk=device_id).update(customer=None, owner=None)
            connect(device_id)  # claiming by id needs the device online
            claims.device_claim(principal=Principal.for_user(world.former), device_id=device_id)
        team_remove(principal=Principal.for_user(world.cast.owner), team=product_team(world.cast.product),
                    username=world.former.email)


def api_user_token(cast: Cast, scopes: list[str], product: Product | None = None) -> str:
    product = product or cast.product
    _, token = api_user_create(principal=Principal.for_user(product.account.owner), team=product_team(product),
                               friendly_name="matrix robot", scopes=scopes)
    return token


# --- helpers -------------------------------------------------------------------------------------


def product_secrets(world: World) -> list[str]:
    """What an outsider must never read: names, slugs, and the ids of the product's devices and SIMs."""
    cast = world.cast
    words = [cast.product.name, cast.product.slug, cast.org.name, cast.org.slug]
    words += list(Device.objects.filter(product=cast.product).values_list("id", flat=True))
    words += list(SimCard.objects.filter(product=cast.product).values_list("iccid", flat=True))
    words += list(Customer.objects.filter(product=cast.product).values_list("email", flat=True))
    return words


def assert_no_leak(words: list[str], request_text: str, r, who: str) -> None:
    text = r.content.decode(errors="replace").lower()
    for word in words:
        if word.lower() in request_text.lower():
            continue  # echoing what the caller sent reveals nothing
        assert word.lower() not in text, f"{who}: response leaks {word!r}: {text[:300]}"


# --- the cells ---------------------------------------------------------------------------------


@dataclass
class Target:
    path: str
    body: dict | None = None
    scope: str | None = None  # the API-user scope this route needs
    verify: Callable[[World, str, object], None] | None = None  # after a 2xx
    write: bool = True
    device: str | None = None  # the one device the route addresses (own_customer and ex_member get it first)
    refusals: dict[str, str] = field(default_factory=dict)  # role -> what its error_description must say


def role_user(world: World, role: str) -> User | None:
    return {"owner": world.cast.owner, "admin": world.cast.admin, "developer": world.cast.developer,
            "support": world.cast.support, "viewer": world.cast.viewer, "outsider": world.cast.outsider,
            "ex_member": world.former}.get(role)


def product_device_ids(world: World) -> set[str]:
    return set(Device.objects.filter(product=world.cast.product).values_list("id", flat=True))


# product devices


def _p_devices_list(w: World) -> Target:
    member = import_devices(w.cast.product)[0]

    def verify(w, role, r):
        listed = [d["id"] for d in r.json()["devices"]]
        assert member in listed and set(listed) <= product_device_ids(w), listed

    return Target(f"/v1/products/{w.p}/devices", scope="devices:list", verify=verify, write=False)


def _p_devices_import(w: World) -> Target:
    fresh = manufacture(13, 1)[0]

    def verify(w, role, r):
        assert r.json()["updatedDeviceIds"] == [fresh.device_id], r.json()
        device = Device.objects.get(pk=fresh.device_id)
        assert device.product_id == w.p
        assert device.sim.product_id == w.p and device.sim.status == SimCard.Status.ACTIVE

    return Target(f"/v1/products/{w.p}/devices", {"id": fresh.device_id}, scope="devices:import", verify=verify)


def _p_devices_batch_groups(w: World) -> Target:
    members = import_devices(w.cast.product, 2)

    def verify(w, role, r):
        assert r.json() == {"ok": True}
        group = DeviceGroup.objects.get(product=w.cast.product, name="matrix")
        assert set(DeviceGroupMembership.objects.filter(group=group).values_list("device_id", flat=True)) == set(members)

    return Target(f"/v1/products/{w.p}/devices",
                  {"action": "groups", "devices": members, "metadata": {"add": ["matrix"]}},
                  scope="devices:update", verify=verify)


def _p_device_get(w: World) -> Target:
    member = import_devices(w.cast.product)[0]

    def verify(w, role, r):
        assert r.json()["id"] == member and r.json()["product_id"] == w.p

    return Target(f"/v1/products/{w.p}/devices/{member}", scope="devices:get", verify=verify, write=False,
                  device=member)


def _p_device_put(w: World) -> Target:
    member = import_devices(w.cast.product)[0]

    def verify(w, role, r):
        device = Device.objects.get(pk=member)
        assert device.name == "renamed_by_matrix" and device.notes == "matrix notes"

    return Target(f"/v1/products/{w.p}/devices/{member}", {"name": "renamed_by_matrix", "notes": "matrix notes"},
                  scope="devices:update", verify=verify, device=member)


def _p_device_remove(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)
    device_services.device_set_groups(principal=Principal.for_user(w.cast.owner),
                                      device=Device.objects.get(pk=member), names=["leaving"])

    def verify(w, role, r):
        device = Device.objects.get(pk=member)
        assert device.product_id is None and device.customer_id is None  # a customer owner is released too
        assert not DeviceGroupMembership.objects.filter(device_id=member).exists()
        listed = [d["id"] for d in w.api("owner").get(f"/v1/products/{w.p}/devices").json()["devices"]]
        assert member not in listed

    return Target(f"/v1/products/{w.p}/devices/{member}", {}, scope="devices:remove", verify=verify, device=member)


def _p_device_deny(w: World) -> Target:
    waiting = manufacture(13, 1)[0].device_id
    Device.objects.filter(pk=waiting).update(product=w.cast.product, quarantined=True)  # quarantine: not counted

    def verify(w, role, r):
        device = Device.objects.get(pk=waiting)
        assert device.denied is True and device.quarantined is False and device.product_id == w.p
        owner = w.api("owner")
        assert owner.get(f"/v1/products/{w.p}/devices/{waiting}").json()["denied"] is True
        for query in ({}, {"quarantined": "true"}):
            listed = [d["id"] for d in owner.get(f"/v1/products/{w.p}/devices", query).json()["devices"]]
            assert waiting not in listed, (query, listed)

    return Target(f"/v1/products/{w.p}/devices/{waiting}", {"deny": True}, scope="devices:remove", verify=verify,
                  device=waiting)


def _p_device_unclaim(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)

    def verify(w, role, r):
        assert r.json() == {"ok": True}
        device = Device.objects.get(pk=member)
        assert device.customer_id is None and device.owner_id is None and device.product_id == w.p

    return Target(f"/v1/products/{w.p}/devices/{member}/owner", scope="devices:release", verify=verify,
                  device=member)


# dev form


def _devices_list(w: World) -> Target:
    mine = import_devices(w.cast.product, 2)
    for device_id, role in zip(mine, ("developer", "viewer")):
        Device.objects.filter(pk=device_id).update(owner=role_user(w, role))

    def verify(w, role, r):
        listed = r.json()
        assert isinstance(listed, list)
        got = {d["id"] for d in listed}
        if role in CUSTOMERS:
            assert got == {w.alice_device}, got
            return
        assert got == set(Device.objects.filter(owner=role_user(w, role)).values_list("id", flat=True)), got

    return Target("/v1/devices", scope="devices:list", verify=verify, write=False)


def _devices_claim(w: World) -> Target:
    """Claim an unclaimed device of the product (seed 002: developers claim the test devices on their desks)."""
    member = import_devices(w.cast.product)[0]
    connect(member)  # claiming by id needs the device online

    def verify(w, role, r):
        assert r.json()["claimed"] is True and r.json()["deviceID"] == member
        assert Device.objects.get(pk=member).owner == role_user(w, role)

    return Target("/v1/devices", {"id": member}, scope="devices:import", verify=verify)


def _devices_self_provision(w: World) -> Target:
    """POST /v1/devices {product_id}: a new device id in the product, for whoever may import into it."""
    def verify(w, role, r):
        device = Device.objects.get(pk=r.json()["id"])
        assert device.product_id == w.p and device.platform_id == w.cast.product.platform_id
        assert device.owner_id is None and device.customer_id is None and r.json()["product_id"] == w.p

    return Target("/v1/devices", {"product_id": w.p}, scope="devices:import", verify=verify)


def _provisioning(w: World) -> Target:
    """POST /v1/provisioning/:id (particle keys send): the device's owner or the product's writers re-key it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from devices.keys import device_public_key

    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)
    public = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()

    def verify(w, role, r):
        assert r.json() == {"ok": True}
        assert device_public_key(member) == public.public_bytes(serialization.Encoding.DER,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)

    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return Target(f"/v1/provisioning/{member}", {"deviceID": member, "publicKey": pem, "algorithm": "rsa"},
                  scope="devices:update", verify=verify, device=member,
                  refusals={"own_customer": "Customers cannot change a device's key"})


def _device_get(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)  # someone else's, for the customer column

    def verify(w, role, r):
        assert r.json()["id"] == member

    return Target(f"/v1/devices/{member}", scope="devices:get", verify=verify, write=False, device=member)


def _device_put(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)

    def verify(w, role, r):
        device = Device.objects.get(pk=member)
        assert device.name == "renamed_by_matrix" and device.notes == "matrix notes"

    return Target(f"/v1/devices/{member}", {"name": "renamed_by_matrix", "notes": "matrix notes"},
                  scope="devices:update", verify=verify, device=member)


def _device_put_product_fields(w: World) -> Target:
    """The product-level fields of a product device, through the dev form: the product team's alone."""
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)

    def verify(w, role, r):
        device = Device.objects.get(pk=member)
        assert device.development is True and device.firmware_updates_forced is True
        assert list(DeviceGroupMembership.objects.filter(device=device).values_list("group__name", flat=True)) == [
            "vip"]

    return Target(f"/v1/devices/{member}", {"development": True, "firmware_updates_forced": True,
                                            "groups": ["vip"]},
                  scope="devices:update", verify=verify, device=member, refusals={
                      "own_customer": "Customers may rename their devices and add notes; ",
                      "ex_member": "needs a role on the device's product that may update devices"})


def _device_unclaim(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)

    def verify(w, role, r):
        assert r.json() == {"ok": True}
        device = Device.objects.get(pk=member)
        assert device.customer_id is None and device.owner_id is None and device.product_id == w.p

    return Target(f"/v1/devices/{member}", scope="devices:release", verify=verify, device=member)


# talking to the device: no gateway holds it here, so whoever may talk gets Particle's 408 at once (the
# access check is all these cells test; tests/test_device_remote*.py test the answers)


def _remote(w: World, prefix: str, suffix: str, scope: str, body: dict | None = None,
            verify: Callable | None = None) -> Target:
    member = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=w.bob)  # someone else's, for the customer column
    return Target(f"{prefix}/devices/{member}{suffix}", body, scope=scope, write=False, device=member,
                  verify=verify)


def _variable(w: World, prefix: str) -> Target:
    return _remote(w, prefix, "/temperature", "devices.variable:get")


def _function(w: World, prefix: str) -> Target:
    return _remote(w, prefix, "/led", "devices.function:call", {"arg": "on"})


def _ping(w: World, prefix: str) -> Target:
    def verify(w, role, r):
        assert r.json() == {"online": False, "ok": True}, r.json()

    return _remote(w, prefix, "/ping", "devices:ping", {}, verify)


def _signal(w: World, prefix: str) -> Target:
    def verify(w, role, r):
        assert r.json() == {"id": r.json()["id"], "connected": False, "signaling": False}, r.json()

    return _remote(w, prefix, "", "devices:ping", {"signal": "1"}, verify)


# groups


def _fresh_group(w: World, name: str = "existing", members: int = 0) -> DeviceGroup:
    group = DeviceGroup.objects.create(product=w.cast.product, name=name, color="#123456")
    if members:
        device_services.devices_batch_groups(principal=Principal.for_user(w.cast.owner), product=w.cast.product,
                                             device_ids=import_devices(w.cast.product, members), add=[name])
    return group


def _groups_list(w: World) -> Target:
    _fresh_group(w)

    def verify(w, role, r):
        assert [g["name"] for g in r.json()["groups"]] == ["existing"]

    return Target(f"/v1/products/{w.p}/groups", scope="groups:list", verify=verify, write=False)


def _group_create(w: World) -> Target:
    def verify(w, role, r):
        assert r.json()["group"]["name"] == "fresh-group"
        assert DeviceGroup.objects.get(product=w.cast.product, name="fresh-group").color == "#112233"

    return Target(f"/v1/products/{w.p}/groups", {"name": "fresh-group", "color": "#112233", "description": "d"},
                  scope="groups:create", verify=verify)


def _group_get(w: World) -> Target:
    _fresh_group(w, members=2)

    def verify(w, role, r):
        assert r.json()["group"]["name"] == "existing" and r.json()["group"]["device_count"] == 2

    return Target(f"/v1/products/{w.p}/groups/existing", scope="groups:get", verify=verify, write=False)


def _group_update(w: World) -> Target:
    group = _fresh_group(w)

    def verify(w, role, r):
        group.refresh_from_db()
        assert group.description == "changed" and group.color == "#445566"

    return Target(f"/v1/products/{w.p}/groups/existing", {"description": "changed", "color": "#445566"},
                  scope="groups:update", verify=verify)


def _group_delete(w: World) -> Target:
    group = _fresh_group(w, members=2)
    members = list(DeviceGroupMembership.objects.filter(group=group).values_list("device_id", flat=True))

    def verify(w, role, r):
        assert not DeviceGroup.objects.filter(pk=group.pk).exists()
        assert Device.objects.filter(pk__in=members, product=w.cast.product).count() == 2  # devices stay

    return Target(f"/v1/products/{w.p}/groups/existing", scope="groups:remove", verify=verify)


# SIMs


def _member_sim(w: World) -> tuple[str, str]:
    """A product member's SIM: (iccid, the device it is in)."""
    device = Device.objects.get(pk=import_devices(w.cast.product)[0])
    return device.sim.iccid, device.pk


def _sims_list(w: World) -> Target:
    """GET /v1/sims is the sandbox list: the user's own SIMs, never a product's."""
    iccid, _ = _member_sim(w)
    claimed = manufacture(13, 1)[0].iccid  # a sandbox SIM of the outsider
    SimCard.objects.filter(pk=claimed).update(user=w.cast.outsider, status=SimCard.Status.ACTIVE)

    def verify(w, role, r):
        listed = {s["iccid"] for s in r.json()["sims"]}
        assert iccid not in listed, listed
        assert listed == set(SimCard.objects.filter(user=role_user(w, role)).values_list("iccid", flat=True)), listed
        if role == "outsider":
            assert listed == {claimed}, listed

    return Target("/v1/sims", scope="sims:list", verify=verify, write=False)


def _sim_get(w: World, prefix: str) -> Target:
    iccid, device = _member_sim(w)

    def verify(w, role, r):
        assert r.json()["iccid"] == iccid

    return Target(f"{prefix}/sims/{iccid}", scope="sims:get", verify=verify, write=False, device=device)


def _sim_head(w: World) -> Target:
    iccid, device = _member_sim(w)
    return Target(f"/v1/sims/{iccid}", scope="sims:get", write=False, device=device)


def _sim_put(w: World, prefix: str) -> Target:
    iccid, device = _member_sim(w)

    def verify(w, role, r):
        assert SimCard.objects.get(pk=iccid).status == SimCard.Status.INACTIVE
        assert r.json()["status"] == "inactive"

    return Target(f"{prefix}/sims/{iccid}", {"action": "deactivate"}, scope="sims:update", verify=verify,
                  device=device)


def _sim_delete(w: World, prefix: str) -> Target:
    iccid, device = _member_sim(w)

    def verify(w, role, r):
        sim = SimCard.objects.get(pk=iccid)
        assert sim.product_id is None and sim.user_id is None and sim.status == SimCard.Status.INACTIVE

    return Target(f"{prefix}/sims/{iccid}", scope="sims:remove", verify=verify, device=device)


def _sim_usage(w: World, prefix: str) -> Target:
    iccid, device = _member_sim(w)

    def verify(w, role, r):
        assert r.json()["iccid"] == iccid and isinstance(r.json()["usage_by_day"], list)

    return Target(f"{prefix}/sims/{iccid}/data_usage", scope="sims.usage:get", verify=verify, write=False,
                  device=device)


def _p_sims_list(w: World) -> Target:
    iccid, _ = _member_sim(w)

    def verify(w, role, r):
        assert iccid in {s["iccid"] for s in r.json()["sims"]}

    return Target(f"/v1/products/{w.p}/sims", scope="sims:list", verify=verify, write=False)


def _p_sims_import(w: World) -> Target:
    fresh = manufacture(13, 1)[0]

    def verify(w, role, r):
        assert r.json()["imported"] == [fresh.iccid], r.json()
        assert SimCard.objects.get(pk=fresh.iccid).product_id == w.p
        assert Device.objects.get(pk=fresh.device_id).product_id == w.p  # the linked device comes along

    return Target(f"/v1/products/{w.p}/sims", {"sims": [fresh.iccid]}, scope="sims:import", verify=verify)


def _fleet_usage(w: World) -> Target:
    _member_sim(w)

    def verify(w, role, r):
        assert r.json()["total_active_sim_cards"] == SimCard.objects.filter(
            product=w.cast.product, status=SimCard.Status.ACTIVE).count()

    return Target(f"/v1/products/{w.p}/sims/data_usage", scope="sims.usage:get", verify=verify, write=False)


# customers


def _customers_list(w: World) -> Target:
    def verify(w, role, r):
        body = r.json()
        assert {c["username"] for c in body["customers"]} == {"alice@example.com", "bob@example.com"}
        assert {d["id"] for d in body["devices"]} == {w.alice_device}

    return Target(f"/v1/products/{w.p}/customers", scope="customers:list", verify=verify, write=False)


def _customer_create(w: World) -> Target:
    def verify(w, role, r):
        assert r.json()["token_type"] == "bearer" and r.json()["access_token"]
        assert Customer.objects.filter(product=w.cast.product, email="fresh@example.com").exists()

    return Target(f"/v1/products/{w.p}/customers", {"email": "fresh@example.com", "password": "long-enough-pw"},
                  scope="customers:create", verify=verify)


def _customer_password(w: World) -> Target:
    def verify(w, role, r):
        assert r.json() == {"ok": True}
        assert check_password("new-password-1", Customer.objects.get(pk=w.bob.pk).password)

    return Target(f"/v1/products/{w.p}/customers/bob@example.com", {"password": "new-password-1"},
                  scope="customers:update", verify=verify)


def _customer_delete(w: World) -> Target:
    carol = Customer.objects.create(product=w.cast.product, email="carol@example.com")
    carols = import_devices(w.cast.product)[0]
    Device.objects.filter(pk=carols).update(customer=carol)
    token = customer_token(carol)

    def verify(w, role, r):
        assert r.json() == {"ok": True}
        assert not Customer.objects.filter(pk=carol.pk).exists()
        assert Device.objects.get(pk=carols).customer_id is None
        assert Api(token).get("/v1/devices").status_code == 401

    return Target(f"/v1/products/{w.p}/customers/carol@example.com", scope="customers:remove", verify=verify)


# claim codes


def _claim_code(w: World) -> Target:
    def verify(w, role, r):
        code = ClaimCode.objects.get(code=r.json()["claim_code"])
        if role in CUSTOMERS:
            assert code.customer_id == w.alice.pk
        else:
            assert code.user == role_user(w, role)
        assert set(r.json()["device_ids"]) <= set(Device.objects.filter(
            **({"customer": w.alice} if role in CUSTOMERS else {"owner": role_user(w, role)})).values_list("id", flat=True))

    return Target("/v1/device_claims", {}, verify=verify)


def _product_claim_code(w: World) -> Target:
    def verify(w, role, r):
        code = ClaimCode.objects.get(code=r.json()["claim_code"])
        got = set(r.json()["device_ids"])
        if role in CUSTOMERS:
            assert code.customer_id == w.alice.pk and got == {w.alice_device}, got
        elif role in HUMANS:
            assert code.user == role_user(w, role)
            assert got <= set(Device.objects.filter(owner=role_user(w, role)).values_list("id", flat=True)), got
        else:
            # a token without a person owns no devices: whatever it lists must at least be this product's
            assert got <= product_device_ids(w), f"{role} was shown devices outside its product: {sorted(got)[:5]}"

    return Target(f"/v1/products/{w.p}/device_claims", {}, scope="devices:import", verify=verify)


# serial numbers


def _serial_lookup(w: World) -> Target:
    member = import_devices(w.cast.product)[0]
    serial = Device.objects.get(pk=member).serial_number

    def verify(w, role, r):
        assert r.json()["device_id"] == member and r.json()["serial_number"] == serial

    return Target(f"/v1/serial_numbers/{serial}", scope="devices:get", verify=verify, write=False, device=member)


def _sim_head_product(w: World) -> Target:
    iccid, device = _member_sim(w)
    return Target(f"/v1/products/{w.p}/sims/{iccid}", scope="sims:get", write=False, device=device)


# --- the table -----------------------------------------------------------------------------------

# Columns: owner admin developer support viewer outsider api_with api_without product_token customer, and then
# (own_customer, ex_member): the two callers whose own device the route addresses.
# A cell is the one status the route answers for that caller.
READ = (200, 200, 200, 200, 200, 404, 200, 403, 200, 404)


def DEV(ok):  # noqa: N802 - a table shorthand: Developer and up, API users with the scope, product tokens
    return (ok, ok, ok, 403, 403, 404, ok, 403, ok, 404)


def SUP(ok):  # noqa: N802 - Support and up
    return (ok, ok, ok, ok, 403, 404, ok, 403, ok, 404)


# The product's routes, and its SIMs, groups and customers, are not a customer's nor a former member's
# business, even for their own device: the same 404 as for a stranger.
NOT_THEIRS = (404, 404)

MATRIX: list[tuple[str, Callable[[World], Target], tuple[int, ...], tuple[int, int]]] = [
    # product devices
    ("GET /v1/products/:p/devices",                 _p_devices_list,          READ,     NOT_THEIRS),
    ("POST /v1/products/:p/devices",                _p_devices_import,        DEV(200), NOT_THEIRS),
    ("PUT /v1/products/:p/devices (groups)",        _p_devices_batch_groups,  DEV(200), NOT_THEIRS),
    ("GET /v1/products/:p/devices/:id",             _p_device_get,            READ,     NOT_THEIRS),
    ("PUT /v1/products/:p/devices/:id",             _p_device_put,            DEV(200), NOT_THEIRS),
    ("DELETE /v1/products/:p/devices/:id",          _p_device_remove,         DEV(204), NOT_THEIRS),
    ("DELETE /v1/products/:p/devices/:id (deny)",   _p_device_deny,           DEV(204), NOT_THEIRS),
    ("DELETE /v1/products/:p/devices/:id/owner",    _p_device_unclaim,        DEV(200), NOT_THEIRS),
    # the dev form: one's own device may be read, renamed, annotated and unclaimed; its product-level fields
    # stay the team's (403: the caller can see the device)
    ("GET /v1/devices",                             _devices_list,            (200,) * 6 + (400,) * 3 + (200,), (200, 200)),
    ("POST /v1/devices (a product device)",         _devices_claim,           (200, 200, 200, 403, 403, 404, 400, 400, 400, 400), (400, 404)),
    ("POST /v1/devices (self-provision)",           _devices_self_provision,  DEV(200), NOT_THEIRS),
    ("GET /v1/devices/:id",                         _device_get,              READ,     (200, 200)),
    ("PUT /v1/devices/:id",                         _device_put,              DEV(200), (200, 200)),
    ("PUT /v1/devices/:id (product fields)",        _device_put_product_fields, DEV(200), (403, 403)),
    ("DELETE /v1/devices/:id",                      _device_unclaim,          DEV(200), (200, 200)),
    # keys: the owner (a former member too) may re-key their device; a customer may not (403: it sees it)
    ("POST /v1/provisioning/:id",                   _provisioning,            DEV(200), (403, 200)),
    # groups
    ("GET /v1/products/:p/groups",                  _groups_list,             READ,     NOT_THEIRS),
    ("POST /v1/products/:p/groups",                 _group_create,            DEV(201), NOT_THEIRS),
    ("GET /v1/products/:p/groups/:name",            _group_get,               READ,     NOT_THEIRS),
    ("PUT /v1/products/:p/groups/:name",            _group_update,            DEV(200), NOT_THEIRS),
    ("DELETE /v1/products/:p/groups/:name",         _group_delete,            DEV(204), NOT_THEIRS),
    # SIMs, sandbox form (a product SIM reached through it; for the last two columns, the SIM in their device)
    ("GET /v1/sims",                                _sims_list,               (200,) * 6 + (400,) * 4, (400, 200)),
    ("GET /v1/sims/:iccid",                         lambda w: _sim_get(w, "/v1"),     READ,     NOT_THEIRS),
    ("HEAD /v1/sims/:iccid",                        _sim_head,                (204, 204, 204, 204, 204, 404, 204, 403, 204, 404), NOT_THEIRS),
    ("PUT /v1/sims/:iccid",                         lambda w: _sim_put(w, "/v1"),     SUP(200), NOT_THEIRS),
    ("DELETE /v1/sims/:iccid",                      lambda w: _sim_delete(w, "/v1"),  DEV(204), NOT_THEIRS),
    ("GET /v1/sims/:iccid/data_usage",              lambda w: _sim_usage(w, "/v1"),   READ,     NOT_THEIRS),
    # SIMs, product form
    ("GET /v1/products/:p/sims",                    _p_sims_list,             READ,     NOT_THEIRS),
    ("POST /v1/products/:p/sims",                   _p_sims_import,           DEV(200), NOT_THEIRS),
    ("GET /v1/products/:p/sims/:iccid",             lambda w: _sim_get(w, f"/v1/products/{w.p}"),    READ,     NOT_THEIRS),
    ("HEAD /v1/products/:p/sims/:iccid",            _sim_head_product,        (204, 204, 204, 204, 204, 404, 204, 403, 204, 404), NOT_THEIRS),
    ("PUT /v1/products/:p/sims/:iccid",             lambda w: _sim_put(w, f"/v1/products/{w.p}"),    SUP(200), NOT_THEIRS),
    ("DELETE /v1/products/:p/sims/:iccid",          lambda w: _sim_delete(w, f"/v1/products/{w.p}"), DEV(204), NOT_THEIRS),
    ("GET /v1/products/:p/sims/:iccid/data_usage",  lambda w: _sim_usage(w, f"/v1/products/{w.p}"),  READ,     NOT_THEIRS),
    ("GET /v1/products/:p/sims/data_usage",         _fleet_usage,             READ,     NOT_THEIRS),
    # customers
    ("GET /v1/products/:p/customers",               _customers_list,          READ,     NOT_THEIRS),
    ("POST /v1/products/:p/customers",              _customer_create,         DEV(201), NOT_THEIRS),
    ("PUT /v1/products/:p/customers/:email",        _customer_password,       DEV(200), NOT_THEIRS),
    ("DELETE /v1/products/:p/customers/:email",     _customer_delete,         DEV(200), NOT_THEIRS),
    # claim codes
    ("POST /v1/device_claims",                      _claim_code,              (200,) * 6 + (400,) * 3 + (200,), (200, 200)),
    ("POST /v1/products/:p/device_claims",          _product_claim_code,      (200, 200, 200, 403, 403, 404, 200, 403, 200, 200), (200, 404)),
    # serial numbers
    # (no product in the path: an API user without devices:get cannot reach the device at all, a 404, not a 403)
    ("GET /v1/serial_numbers/:sn",                  _serial_lookup,           (200, 200, 200, 200, 200, 404, 200, 404, 200, 404), (200, 200)),
    # variables, functions, ping, signal: Support and up (particle-api.md §9); a customer on its own device
    ("GET /v1/products/:p/devices/:id/:var",        lambda w: _variable(w, f"/v1/products/{w.p}"), SUP(408), NOT_THEIRS),
    ("POST /v1/products/:p/devices/:id/:fn",        lambda w: _function(w, f"/v1/products/{w.p}"), SUP(408), NOT_THEIRS),
    ("PUT /v1/products/:p/devices/:id/ping",        lambda w: _ping(w, f"/v1/products/{w.p}"),     SUP(200), NOT_THEIRS),
    ("PUT /v1/products/:p/devices/:id (signal)",    lambda w: _signal(w, f"/v1/products/{w.p}"),   SUP(200), NOT_THEIRS),
    ("GET /v1/devices/:id/:var",                    lambda w: _variable(w, "/v1"),  SUP(408), (408, 408)),
    ("POST /v1/devices/:id/:fn",                    lambda w: _function(w, "/v1"),  SUP(408), (408, 408)),
    ("PUT /v1/devices/:id/ping",                    lambda w: _ping(w, "/v1"),      SUP(200), (200, 200)),
    ("PUT /v1/devices/:id (signal)",                lambda w: _signal(w, "/v1"),    SUP(200), (200, 200)),
]

CELLS = [
    pytest.param(endpoint, arrange, role, (expected + own)[i], id=f"{endpoint} [{role}]")
    for endpoint, arrange, expected, own in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize("endpoint,arrange,role,expected", CELLS)
def test_device_role_matrix(world, endpoint, arrange, role, expected):
    method = endpoint.split()[0]
    target = arrange(world)
    hand_over(world, role, target.device)
    if role == "api_with" and target.scope:
        world.tokens[role] = api_user_token(world.cast, [target.scope])
    elif role == "api_without" and target.scope:
        world.tokens[role] = api_user_token(world.cast, [s for s in DEVICE_SCOPES if s != target.scope])
    secrets_before = product_secrets(world)
    before = device_state()
    r = world.api(role).call(method, target.path, target.body)
    assert (method, r.resolver_match.route) == DEVICE_MATRIX_ROUTES[endpoint], "tests/support/routes.py is out of date"
    assert r.status_code == expected, f"{endpoint} as {role}: {r.status_code} (want {expected}) {r.content[:300]!r}"
    if r.status_code >= 400:
        if method != "HEAD":
            body = assert_json_error(r)
            if r.status_code == 400:
                assert body["error"] == "unauthorized", body  # the only 400 here: a user-only route
            if role in target.refusals:
                assert target.refusals[role] in body["error_description"], body
        assert device_state() == before, f"{endpoint} as {role} was refused but wrote to the database"
    else:
        if target.write:
            assert device_state() != before, f"{endpoint} as {role} answered {r.status_code} but changed nothing"
        else:
            assert device_state() == before, f"{endpoint} is a read but wrote to the database"
        if target.verify is not None:
            target.verify(world, role, r)
    assert_device_counts()
    # Nobody is ever shown a device that is none of their business.
    text = r.content.decode(errors="replace")
    assert world.loose_device not in text, f"{endpoint} as {role} leaks an unrelated registry device"
    if role != "outsider":
        assert world.outsider_device not in text, f"{endpoint} as {role} leaks the outsider's device"
    if role == "outsider" or (r.status_code == 404 and role in (*CUSTOMERS, "ex_member")):
        assert_no_leak(secrets_before, target.path + repr(target.body), r, f"{endpoint} as {role}")


def test_the_route_registry_lists_exactly_this_matrix():
    """tests/support/routes.py's DEVICE_MATRIX_ROUTES is what tests/test_routes.py checks the URL conf against."""
    assert [endpoint for endpoint, *_ in MATRIX] == list(DEVICE_MATRIX_ROUTES)
    for endpoint, (method, _) in DEVICE_MATRIX_ROUTES.items():
        assert endpoint.split()[0] == method, endpoint


# --- outsiders: a 404 that looks exactly like "no such thing" -------------------------------------

FAKE_ID = "0123456789abcdef01234567"
FAKE_ICCID = "89014103211118510720"


@pytest.mark.parametrize("method,path,data", [
    ("GET", "/v1/products/{p}/devices/{id}", None),
    ("PUT", "/v1/products/{p}/devices/{id}", {"name": "pwned"}),
    ("DELETE", "/v1/products/{p}/devices/{id}", {"deny": True}),
    ("DELETE", "/v1/products/{p}/devices/{id}/owner", None),
    ("GET", "/v1/devices/{id}", None),
    ("PUT", "/v1/devices/{id}", {"name": "pwned"}),
    ("DELETE", "/v1/devices/{id}", None),
    ("GET", "/v1/products/{p}/devices/{id}/temperature", None),
    ("POST", "/v1/products/{p}/devices/{id}/led", {"arg": "on"}),
    ("PUT", "/v1/products/{p}/devices/{id}/ping", None),
    ("GET", "/v1/devices/{id}/temperature", None),
    ("POST", "/v1/devices/{id}/led", {"args": "on"}),
    ("PUT", "/v1/devices/{id}/ping", None),
    ("PUT", "/v1/devices/{id}", {"signal": "1"}),
    ("GET", "/v1/sims/{iccid}", None),
    ("PUT", "/v1/sims/{iccid}", {"action": "deactivate"}),
    ("DELETE", "/v1/sims/{iccid}", None),
    ("GET", "/v1/sims/{iccid}/data_usage", None),
])
def test_outsider_404_is_indistinguishable_from_a_missing_device_or_sim(world, method, path, data):
    """For the outsider, a real device (or SIM) of the product answers exactly like an id nobody has."""
    member = import_devices(world.cast.product)[0]
    iccid = Device.objects.get(pk=member).sim.iccid
    outsider = world.api("outsider")
    before = device_state()
    real = outsider.call(method, path.format(p=world.p, id=member, iccid=iccid), data)
    fake = outsider.call(method, path.format(p=world.p, id=FAKE_ID, iccid=FAKE_ICCID), data)
    assert real.status_code == fake.status_code == 404, (real.status_code, fake.status_code, real.content)
    normal = real.content.decode().replace(member, FAKE_ID).replace(iccid, FAKE_ICCID)
    assert normal == fake.content.decode(), (real.content, fake.content)
    assert device_state() == before


def test_outsider_claiming_a_product_device_looks_like_an_unknown_id(world):
    """POST /v1/devices {id} must not tell a stranger that an id belongs to somebody's product (nor hand it over)."""
    member = import_devices(world.cast.product)[0]
    outsider = world.api("outsider")
    before = device_state()
    connect(member)  # claiming by id needs the device online
    real = outsider.post("/v1/devices", {"id": member})
    fake = outsider.post("/v1/devices", {"id": FAKE_ID})
    assert fake.status_code == 404
    assert real.status_code == 404, f"a stranger claimed a device of another tenant's product: {real.content!r}"
    assert real.json()["error"] == fake.json()["error"]
    assert device_state() == before


# --- tokens and seats bound to one product stay there --------------------------------------------

OTHER_PRODUCT_ROUTES = [
    ("GET", "{P}/devices", None, "devices:list"),
    ("POST", "{P}/devices", {"id": "{free}"}, "devices:import"),
    ("PUT", "{P}/devices", {"action": "groups", "devices": ["{dev}"], "metadata": {"add": ["x"]}}, "devices:update"),
    ("GET", "{P}/devices/{dev}", None, "devices:get"),
    ("PUT", "{P}/devices/{dev}", {"name": "hijacked"}, "devices:update"),
    ("DELETE", "{P}/devices/{dev}", {}, "devices:remove"),
    ("DELETE", "{P}/devices/{dev}/owner", None, "devices:release"),
    ("GET", "{P}/devices/{dev}/temperature", None, "devices.variable:get"),
    ("POST", "{P}/devices/{dev}/led", {"arg": "on"}, "devices.function:call"),
    ("PUT", "{P}/devices/{dev}/ping", None, "devices:ping"),
    ("PUT", "{P}/devices/{dev}", {"signal": "1"}, "devices:ping"),
    ("GET", "/v1/devices/{dev}/temperature", None, "devices.variable:get"),
    ("POST", "/v1/devices/{dev}/led", {"args": "on"}, "devices.function:call"),
    ("PUT", "/v1/devices/{dev}/ping", None, "devices:ping"),
    ("PUT", "/v1/devices/{dev}", {"signal": "0"}, "devices:ping"),
    ("GET", "/v1/devices/{dev}", None, "devices:get"),
    ("PUT", "/v1/devices/{dev}", {"name": "hijacked"}, "devices:update"),
    ("DELETE", "/v1/devices/{dev}", None, "devices:release"),
    ("POST", "/v1/provisioning/{dev}", {"publicKey": "-----BEGIN PUBLIC KEY-----"}, "devices:update"),
    ("POST", "/v1/devices", {"product_id": "{product_id}"}, "devices:import"),
    ("GET", "{P}/groups", None, "groups:list"),
    ("POST", "{P}/groups", {"name": "hijack"}, "groups:create"),
    ("GET", "{P}/sims", None, "sims:list"),
    ("GET", "{P}/sims/{iccid}", None, "sims:get"),
    ("PUT", "{P}/sims/{iccid}", {"action": "deactivate"}, "sims:update"),
    ("DELETE", "{P}/sims/{iccid}", None, "sims:remove"),
    ("GET", "/v1/sims/{iccid}", None, "sims:get"),
    ("PUT", "/v1/sims/{iccid}", {"action": "deactivate"}, "sims:update"),
    ("DELETE", "/v1/sims/{iccid}", None, "sims:remove"),
    ("GET", "{P}/sims/data_usage", None, "sims.usage:get"),
    ("GET", "{P}/customers", None, "customers:list"),
    ("POST", "{P}/customers", {"email": "x@example.com", "password": "long-enough-pw"}, "customers:create"),
    ("POST", "{P}/device_claims", {}, "devices:import"),
]


def _fill(value, subst: dict):
    if isinstance(value, str):
        for k, v in subst.items():
            value = value.replace("{" + k + "}", str(v))
        return value
    if isinstance(value, list):
        return [_fill(v, subst) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, subst) for k, v in value.items()}
    return value


@pytest.mark.parametrize("which", ["outsider_product", "sandbox_product"])
@pytest.mark.parametrize("role", ["api_all", "product_token", "developer", "support", "customer"])
@pytest.mark.parametrize("method,path,data,scope", OTHER_PRODUCT_ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in OTHER_PRODUCT_ROUTES])
def test_tokens_for_one_product_get_404_on_another(world, role, which, method, path, data, scope):
    cast = world.cast
    other = getattr(cast, which)
    dev = import_devices(other, by=other.account.owner)[0]
    Device.objects.filter(pk=dev).update(customer=None)
    sim = SimCard.objects.filter(device_id=dev).first()
    free = manufacture(other.platform_id, 1)[0].device_id
    if role == "api_all":
        token = api_user_token(cast, DEVICE_SCOPES)
    else:
        token = world.tokens[role]
    subst = {"P": f"/v1/products/{other.pk}", "product_id": other.pk, "dev": dev, "iccid": sim.iccid if sim else FAKE_ICCID, "free": free}
    before = device_state()
    r = Api(token).call(method, _fill(path, subst), _fill(data, subst))
    assert r.status_code == 404, (role, which, r.status_code, r.content[:300])
    assert_json_error(r)
    text = r.content.decode()
    assert other.name not in text and other.slug not in text
    assert device_state() == before


@pytest.mark.parametrize("role,expected", [
    ("owner", 200), ("admin", 200), ("viewer", 200),  # org seats reach every org product
    ("developer", 404), ("support", 404),  # a seat on Trackers is not a seat on its sibling
    ("api_with", 404), ("product_token", 404), ("customer", 404),
])
def test_a_sibling_products_device_in_the_same_org(world, role, expected):
    sibling = make_product(world.cast.org, name="Sibling")
    dev = import_devices(sibling)[0]
    for path in (f"/v1/products/{sibling.pk}/devices/{dev}", f"/v1/devices/{dev}"):
        r = world.api(role).get(path)
        assert r.status_code == expected, (role, path, r.content)
        if expected == 404:
            assert "Sibling" not in r.content.decode() and sibling.slug not in r.content.decode()


# --- the dev form refuses with 403 what the caller can see but not change -------------------------


@pytest.mark.parametrize("role,method,path,data", [
    ("viewer", "PUT", "/v1/devices/{id}", {"name": "viewer_was_here"}),
    ("viewer", "DELETE", "/v1/devices/{id}", None),
    ("support", "PUT", "/v1/devices/{id}", {"name": "support_was_here"}),
    ("viewer", "PUT", "/v1/sims/{iccid}", {"action": "deactivate"}),
    ("support", "DELETE", "/v1/sims/{iccid}", None),
])
def test_dev_form_write_by_a_reader_is_403_like_the_product_form(world, role, method, path, data):
    """DESIGN.md §3: 404 only when the caller cannot see the object; a reader who can GET it gets 403 on writes,
    on /v1/devices/:id exactly as on /v1/products/:p/devices/:id."""
    member = import_devices(world.cast.product)[0]
    Device.objects.filter(pk=member).update(customer=world.bob)
    iccid = Device.objects.get(pk=member).sim.iccid
    api = world.api(role)
    read_path = path.format(id=member, iccid=iccid)
    assert api.get(read_path).status_code == 200
    before = device_state()
    r = api.call(method, read_path, data)
    assert r.status_code == 403, (r.status_code, r.content)
    assert_json_error(r)
    assert device_state() == before


# --- customers ------------------------------------------------------------------------------------


def test_customer_reaches_its_own_devices_through_the_dev_form_only(world):
    alice = world.api("customer")
    mine = world.alice_device
    bobs = import_devices(world.cast.product)[0]
    Device.objects.filter(pk=bobs).update(customer=world.bob)
    unclaimed = import_devices(world.cast.product)[0]
    assert [d["id"] for d in alice.get("/v1/devices").json()] == [mine]
    assert alice.get(f"/v1/devices/{mine}").json()["id"] == mine
    r = alice.put(f"/v1/devices/{mine}", {"name": "alices_lamp"})
    assert r.status_code == 200 and Device.objects.get(pk=mine).name == "alices_lamp"
    before = device_state()
    for device_id in (bobs, unclaimed, world.outsider_device, world.loose_device):
        for method, data in (("GET", None), ("PUT", {"name": "hijacked"}), ("DELETE", None)):
            r = alice.call(method, f"/v1/devices/{device_id}", data)
            assert r.status_code == 404, (method, device_id, r.status_code, r.content)
    for method, path, data in [("GET", f"/v1/products/{world.p}/devices/{mine}", None),
                               ("PUT", f"/v1/products/{world.p}/devices/{mine}", {"name": "x"}),
                               ("DELETE", f"/v1/products/{world.p}/devices/{mine}", {}),
                               ("DELETE", f"/v1/products/{world.p}/devices/{mine}/owner", None),
                               ("GET", f"/v1/products/{world.p}", None)]:
        assert alice.call(method, path, data).status_code == 404, path
    assert device_state() == before
    # A customer's own unclaim (DELETE /v1/devices/:id) releases only their own device.
    assert alice.delete(f"/v1/devices/{mine}").json() == {"ok": True}
    assert Device.objects.get(pk=mine).customer_id is None and Device.objects.get(pk=mine).product_id == world.p
    assert alice.get(f"/v1/devices/{mine}").status_code == 404


def test_customer_of_another_product_reaches_nothing_here(world):
    other = world.cast.outsider_product
    stranger = Customer.objects.create(product=other, email="alice@example.com")  # same email, other product
    api = Api(customer_token(stranger))
    assert api.get("/v1/devices").json() == []
    for path in (f"/v1/devices/{world.alice_device}", f"/v1/products/{world.p}/customers",
                 f"/v1/products/{world.p}/devices"):
        assert api.get(path).status_code == 404, path
    before = device_state()
    assert api.post(f"/v1/products/{world.p}/device_claims", {}).status_code == 404
    assert device_state() == before


# --- Support: ping, functions, variables (particle-api.md §6, §9) ---------------------------------


@pytest.mark.parametrize("role,expected", [("support", "let through"), ("viewer", 403),
                                           ("outsider", 404), ("customer", 404)])
@pytest.mark.parametrize("method,path,data", [
    ("PUT", "/v1/products/{p}/devices/{id}/ping", None),
    ("PUT", "/v1/devices/{id}/ping", None),
    ("GET", "/v1/products/{p}/devices/{id}/temperature", None),
    ("POST", "/v1/products/{p}/devices/{id}/led", {"arg": "on"}),
])
def test_support_may_ping_call_functions_and_read_variables(world, role, expected, method, path, data):
    """An offline device answers a ping with {online:false, ok:true} and a function/variable with 408 (§1 errors);
    the point here is who is let through, not the device."""
    member = import_devices(world.cast.product)[0]
    Device.objects.filter(pk=member).update(functions=["led"], variables={"temperature": "double"})
    before = device_state()
    r = world.api(role).call(method, path.format(p=world.p, id=member), data)
    if expected == "let through":  # the device is offline: a ping answers 200 {online:false}, the rest 408
        expected = 200 if path.endswith("/ping") else 408
    assert r.status_code == expected, (r.status_code, r.content[:200])
    assert r["Content-Type"].startswith("application/json")
    assert device_state() == before


# --- claiming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("holder", ["user", "customer", "product_member_user"])
def test_a_device_claimed_by_someone_else_cannot_be_claimed(world, holder):
    cast = world.cast
    if holder == "user":
        device = manufacture(12, 1)[0].device_id
        Device.objects.filter(pk=device).update(owner=cast.outsider)
        thief = cast.api("developer")
    elif holder == "customer":
        device = world.alice_device
        thief = cast.api("developer")
    else:
        device = import_devices(cast.product)[0]
        Device.objects.filter(pk=device).update(owner=cast.developer)
        thief = cast.api("admin")
    before = device_state()
    connect(device)  # claiming by id needs the device online
    r = thief.post("/v1/devices", {"id": device})
    assert r.status_code == 403, r.content  # the thief can see the device (it is in their product or registry)
    assert_json_error(r)
    assert device_state() == before


def _free_user(email: str) -> tuple[User, Product, Api]:
    user = UserFactory(email=email)
    product = make_product(user_services.sandbox_of(user), name=f"Hobby {email.split('@')[0]}", platform_id=13)
    return user, product, Api(user_token(user))


def _fill_sandbox(user: User, product: Product, in_product: int, claimed_outside: int) -> None:
    if in_product:
        made = manufacture(13, in_product)
        device_import(principal=Principal.for_user(user), product=product, values=list(enumerate(ids(made), 1)))
    if claimed_outside:
        made = manufacture(12, claimed_outside)
        Device.objects.filter(pk__in=ids(made)).update(owner=user)


def test_free_limit_counts_sandbox_claims_plus_free_product_members(db):
    user, product, api = _free_user("maker@example.com")
    _fill_sandbox(user, product, in_product=60, claimed_outside=39)
    assert sandbox_device_count(user) == 99
    spare = manufacture(12, 2)
    more = manufacture(13, 3)
    connect(spare[0].device_id)  # claiming by id needs the device online
    assert api.post("/v1/devices", {"id": spare[0].device_id}).status_code == 200  # the 100th
    before = device_state()
    connect(spare[1].device_id)  # claiming by id needs the device online
    r = api.post("/v1/devices", {"id": spare[1].device_id})
    assert r.status_code == 400, r.content
    body = assert_json_error(r)
    assert body["error"] == "device_limit_reached" and str(FREE_DEVICE_LIMIT) in body["error_description"]
    assert device_state() == before
    # ... and an import into the free product is refused whole, however many lines are fine.
    r = api.post(f"/v1/products/{product.pk}/devices", {"ids": ids(more)})
    assert r.status_code == 400 and r.json()["error"] == "device_limit_reached", r.content
    assert str(FREE_DEVICE_LIMIT) in r.json()["error_description"]
    assert device_state() == before


def test_free_limit_refuses_a_sim_import_whole(db):
    user, product, api = _free_user("simmer@example.com")
    _fill_sandbox(user, product, in_product=99, claimed_outside=0)
    more = manufacture(13, 2)
    before = device_state()
    r = api.post(f"/v1/products/{product.pk}/sims", {"sims": [m.iccid for m in more]})
    assert r.status_code == 400 and r.json()["error"] == "device_limit_reached", r.content
    assert device_state() == before, "a SIM import past the free limit left SIMs or devices behind"


def test_free_limit_import_of_devices_already_claimed_in_the_sandbox_is_not_double_counted(db):
    user, product, api = _free_user("tidy@example.com")
    _fill_sandbox(user, product, in_product=0, claimed_outside=0)
    borons = manufacture(13, 100)
    Device.objects.filter(pk__in=ids(borons)).update(owner=user)  # 100 sandbox devices: at the limit
    assert sandbox_device_count(user) == 100
    r = api.post(f"/v1/products/{product.pk}/devices", {"ids": ids(borons[:10])})
    assert r.status_code == 200 and r.json()["updated"] == 10, r.content
    assert sandbox_device_count(user) == 100
    assert_device_counts()


def test_org_product_devices_claimed_to_the_user_do_not_count(cast):
    user, product, api = _free_user("contractor@example.com")
    seat(cast.product, user, Role.DEVELOPER)
    _fill_sandbox(user, product, in_product=50, claimed_outside=49)
    org_devices = import_devices(cast.product, 5)
    Device.objects.filter(pk__in=org_devices).update(owner=user)  # claimed to the user, in an org product
    assert sandbox_device_count(user) == 99
    # claiming one more org-product device is fine, and does not count
    extra = import_devices(cast.product)[0]
    connect(extra)  # claiming by id needs the device online
    assert api.post("/v1/devices", {"id": extra}).status_code == 200
    assert sandbox_device_count(user) == 99
    # one sandbox device still fits (the 100th); the next does not
    spare = manufacture(12, 2)
    connect(spare[0].device_id)  # claiming by id needs the device online
    assert api.post("/v1/devices", {"id": spare[0].device_id}).status_code == 200
    connect(spare[1].device_id)  # claiming by id needs the device online
    assert api.post("/v1/devices", {"id": spare[1].device_id}).status_code == 400
    # importing into the org product is never limited by the sandbox
    r = api.post(f"/v1/products/{cast.product.pk}/devices", {"ids": ids(manufacture(13, 3))})
    assert r.status_code == 200 and r.json()["updated"] == 3


def test_moving_the_free_product_into_an_org_frees_the_sandbox(db):
    user, product, api = _free_user("grower@example.com")
    _fill_sandbox(user, product, in_product=100, claimed_outside=0)
    spare = manufacture(12, 1)[0].device_id
    connect(spare)  # claiming by id needs the device online
    assert api.post("/v1/devices", {"id": spare}).status_code == 400
    org = make_org(user, "Growth Co")
    product_move(principal=None, product=product, to_account=org)
    assert sandbox_device_count(user) == 0
    assert api.post("/v1/devices", {"id": spare}).status_code == 200
    r = api.post(f"/v1/products/{product.pk}/devices", {"ids": ids(manufacture(13, 5))})
    assert r.status_code == 200 and r.json()["updated"] == 5


def test_quarantined_and_denied_devices_do_not_count_but_approving_does(db):
    user, product, api = _free_user("quarantine@example.com")
    _fill_sandbox(user, product, in_product=99, claimed_outside=0)
    waiting = ids(manufacture(13, 2))
    Device.objects.filter(pk__in=waiting).update(product=product, quarantined=True)
    assert sandbox_device_count(user) == 99
    assert api.post(f"/v1/products/{product.pk}/devices", {"id": waiting[0]}).json()["updated"] == 1
    before = device_state()
    r = api.post(f"/v1/products/{product.pk}/devices", {"id": waiting[1]})
    assert r.status_code == 400 and r.json()["error"] == "device_limit_reached", r.content
    assert device_state() == before
    assert api.delete(f"/v1/products/{product.pk}/devices/{waiting[1]}", {"deny": True}).status_code == 204
    assert sandbox_device_count(user) == 100
    assert_device_counts()


def test_a_team_member_claiming_in_someone_elses_free_product_does_not_use_their_own_room(db):
    maker, product, maker_api = _free_user("maker2@example.com")
    helper, _, helper_api = _free_user("helper@example.com")
    seat(product, helper, Role.DEVELOPER)
    _fill_sandbox(helper, Product.objects.filter(account__owner=helper).first(), in_product=0, claimed_outside=100)
    member = manufacture(13, 1)[0].device_id
    assert maker_api.post(f"/v1/products/{product.pk}/devices", {"id": member}).json()["updated"] == 1
    connect(member)  # claiming by id needs the device online
    r = helper_api.post("/v1/devices", {"id": member})
    assert r.status_code == 200, r.content  # counted in the maker's free product, not the helper's sandbox
    assert sandbox_device_count(helper) == 100 and sandbox_device_count(maker) == 1


# --- counters stay true through a run of writes -----------------------------------------------------


def test_counts_equal_rows_after_every_write(world):
    cast, p = world.cast, world.p
    dev = cast.api("developer")
    fresh = ids(manufacture(13, 8))
    steps = [
        ("POST", f"/v1/products/{p}/devices", {"ids": fresh}),
        ("POST", f"/v1/products/{p}/devices", {"ids": fresh[:3]}),  # re-import: all existing
        ("PUT", f"/v1/products/{p}/devices", {"action": "groups", "devices": fresh[:5], "metadata": {"add": ["a", "b"]}}),
        ("PUT", f"/v1/products/{p}/devices", {"action": "groups", "devices": fresh[:5], "metadata": {"add": ["a"]}}),
        ("PUT", f"/v1/products/{p}/devices", {"action": "groups", "devices": fresh[:2],
                                              "metadata": {"add": ["c"], "remove": ["a"]}}),
        ("PUT", f"/v1/products/{p}/devices/{fresh[5]}", {"groups": ["a", "c"]}),
        ("PUT", f"/v1/products/{p}/devices/{fresh[5]}", {"groups": ["b"]}),
        ("PUT", f"/v1/products/{p}/devices/{fresh[5]}", {"groups": []}),
        ("DELETE", f"/v1/products/{p}/devices/{fresh[0]}", {}),  # in b and c
        ("DELETE", f"/v1/products/{p}/devices/{fresh[1]}", {"deny": True}),  # a member in groups, denied
        ("DELETE", f"/v1/products/{p}/devices/{fresh[1]}", {"deny": True}),  # denied twice
        ("POST", f"/v1/products/{p}/devices", {"id": fresh[1]}),  # approved again
        ("DELETE", f"/v1/products/{p}/devices/{fresh[1]}", {}),
        ("DELETE", f"/v1/products/{p}/groups/b", None),
        ("PUT", f"/v1/products/{p}/groups/a", {"name": "renamed"}),
        ("DELETE", f"/v1/products/{p}/sims/{Device.objects.get(pk=fresh[2]).sim.iccid}", None),
        ("DELETE", f"/v1/products/{p}/devices/{fresh[2]}/owner", None),
        ("POST", f"/v1/products/{p}/customers", {"email": "counted@example.com", "password": "long-enough-pw"}),
        ("DELETE", f"/v1/products/{p}/customers/alice@example.com", None),
    ]
    for method, path, data in steps:
        r = dev.call(method, path, data)
        assert r.status_code < 300, (method, path, r.status_code, r.content[:300])
        assert_device_counts()
    listed = dev.get(f"/v1/products/{p}/devices", {"perPage": 100}).json()
    cast.product.refresh_from_db()
    assert listed["meta"]["total"] == cast.product.device_count == len(listed["devices"])
    for group in DeviceGroup.objects.filter(product=cast.product):
        got = dev.get(f"/v1/products/{p}/groups/{group.name}").json()["group"]["device_count"]
        assert got == DeviceGroupMembership.objects.filter(group=group).count(), group.name


def test_denied_device_leaves_every_list_and_cannot_be_regrouped(world):
    p = world.p
    dev = world.api("developer")
    member = import_devices(world.cast.product)[0]
    dev.put(f"/v1/products/{p}/devices/{member}", {"groups": ["watch"]})
    assert dev.delete(f"/v1/products/{p}/devices/{member}", {"deny": True}).status_code == 204
    assert dev.get(f"/v1/products/{p}/devices/{member}").json()["denied"] is True
    for query in ({}, {"quarantined": "true"}, {"groups": "watch"}, {"deviceId": member}):
        listed = [d["id"] for d in dev.get(f"/v1/products/{p}/devices", query).json()["devices"]]
        assert member not in listed, query
    # a denied device is out of the fleet: batch grouping must not pull it back into a group
    r = dev.put(f"/v1/products/{p}/devices", {"action": "groups", "devices": [member], "metadata": {"add": ["watch"]}})
    assert r.status_code == 404, r.content  # denied: no longer a member the batch may touch
    assert DeviceGroup.objects.get(product=world.cast.product, name="watch").device_count == 0
    assert_device_counts()


def test_product_token_claim_code_lists_no_foreign_devices(world):
    """A product token owns no devices: its claim code must not enumerate other tenants' (or anyone's) devices."""
    r = world.api("product_token").post(f"/v1/products/{world.p}/device_claims", {})
    assert r.status_code == 200, r.content
    listed = set(r.json()["device_ids"])
    assert world.loose_device not in listed and world.outsider_device not in listed, sorted(listed)[:10]
    assert listed <= product_device_ids(world), sorted(listed)[:10]


# --- SIMs of another tenant's devices ------------------------------------------------------------------


def _member_without_its_sim(world: World) -> tuple[str, str]:
    """A product member imported with import_sims=false: its SIM is not (yet) owned by anyone."""
    made = manufacture(13, 1)[0]
    device_import(principal=Principal.for_user(world.cast.owner), product=world.cast.product,
                  values=[(1, made.device_id)], import_sims=False)
    assert SimCard.objects.get(pk=made.iccid).product_id is None
    return made.device_id, made.iccid


def test_a_stranger_cannot_activate_the_sim_of_another_products_device(world):
    device_id, iccid = _member_without_its_sim(world)
    before = device_state()
    r = world.api("outsider").put(f"/v1/sims/{iccid}", {"action": "activate"})
    assert r.status_code == 404, f"a stranger took the SIM of a device in another tenant's product: {r.content!r}"
    assert device_id not in r.content.decode()
    assert device_state() == before


def test_a_sim_import_does_not_take_the_sim_of_another_products_device(world):
    device_id, iccid = _member_without_its_sim(world)
    before = device_state()
    r = Api(user_token(world.cast.outsider)).post(f"/v1/products/{world.cast.outsider_product.pk}/sims",
                                                 {"sims": [iccid]})
    assert r.status_code == 200, r.content  # a per-line report, the SIM rejected
    assert r.json()["imported"] == [], r.json()
    assert device_id not in r.content.decode(), "the report reveals a device id of another tenant"
    assert device_state()["sims"] == before["sims"], "the SIM of a device in another tenant's product changed owner"


# --- devices addressed by name (api-js: "Device ID or Name") stay inside the caller's reach ---------------


@pytest.mark.parametrize("role", ["outsider", "customer", "api_with", "product_token"])
def test_a_device_name_never_resolves_to_another_tenants_device(world, role):
    ours = import_devices(world.cast.product)[0]
    Device.objects.filter(pk=ours).update(name="shared_name")
    Device.objects.filter(pk=world.outsider_device).update(name="shared_name", owner=world.cast.outsider)
    if role == "api_with":
        world.tokens[role] = api_user_token(world.cast, DEVICE_SCOPES)
    api = world.api(role)
    before = device_state()
    r = api.get("/v1/devices/shared_name")
    expected_id = {"outsider": world.outsider_device}.get(role, ours if role in ("api_with", "product_token") else None)
    if expected_id is None:
        assert r.status_code == 404, r.content
    else:
        assert r.status_code == 200 and r.json()["id"] == expected_id, r.content
    text = r.content.decode()
    if role == "outsider":
        assert ours not in text
    else:
        assert world.outsider_device not in text
    r = api.put("/v1/devices/shared_name", {"notes": "written by name"})
    assert device_state() != before if expected_id else device_state() == before
    if expected_id:
        assert Device.objects.get(pk=expected_id).notes == "written by name"
        other = world.outsider_device if expected_id == ours else ours
        assert Device.objects.get(pk=other).notes == ""
