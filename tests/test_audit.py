"""Every write service that keeps an audit row writes the row it should: the action, who did it, to what, where.

One test per service area, calling the services the API and the console call. The list of actions below is
checked against the code (every literal `action=` of `audit_record` / `_audit` / `_audit_device` under console/,
products/ and devices/), so a new audited write without a test here fails `test_every_audit_action_is_tested`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.services import audit as audit_services
from console.services import clients as client_services
from console.services import orgs as org_services
from console.services import users as user_services
from console.errors import Forbidden
from console.models import AuditEntry
from console.roles import Role
from console.scoping import Principal
from console.services.teams import (
    api_user_create, api_user_regenerate, api_user_update, org_team, team_invite, team_remove, team_set_role,
)
from devices.services import claims, customers, groups, sims, transfers
from devices.services import devices as device_services
from devices.services.importing import device_import
from devices.models import Customer, Device, DeviceTransfer, SimCard
from products.models import DeviceGroup, Product
from products.services import product_create, product_delete, product_move, product_team, product_update
from tests.factories import UserFactory
from tests.support.audit import assert_audited
from tests.support.fleet import ids, import_devices, manufacture
from tests.support.presence import connect

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent

# Every action an audit row can carry, and the test below that asserts it.
TESTED_ACTIONS = {
    "org.create": "test_org_and_product_writes_are_audited",
    "product.create": "test_org_and_product_writes_are_audited",
    "product.update": "test_org_and_product_writes_are_audited",
    "product.move": "test_org_and_product_writes_are_audited",
    "product.delete": "test_org_and_product_writes_are_audited",
    "client.create": "test_oauth_client_writes_are_audited",
    "client.update": "test_oauth_client_writes_are_audited",
    "client.delete": "test_oauth_client_writes_are_audited",
    "team.invite": "test_team_writes_are_audited",
    "team.role": "test_team_writes_are_audited",
    "team.remove": "test_team_writes_are_audited",
    "team.api_user.create": "test_team_writes_are_audited",
    "team.api_user.update": "test_team_writes_are_audited",
    "team.api_user.token": "test_team_writes_are_audited",
    "devices.import": "test_device_writes_are_audited",
    "device.update": "test_device_writes_are_audited",
    "device.groups": "test_device_writes_are_audited",
    "device.unclaim": "test_device_writes_are_audited",
    "device.deny": "test_device_writes_are_audited",
    "device.remove": "test_device_writes_are_audited",
    "device.key.upload": "test_device_key_uploads_are_audited",
    "device.claim": "test_claims_and_transfers_are_audited",
    "devices.quarantine": "test_onboarding_writes_are_audited",
    "device.transfer.request": "test_claims_and_transfers_are_audited",
    "device.transfer.approved": "test_claims_and_transfers_are_audited",
    "device.transfer.denied": "test_claims_and_transfers_are_audited",
    "group.create": "test_group_writes_are_audited",
    "group.update": "test_group_writes_are_audited",
    "group.delete": "test_group_writes_are_audited",
    "customer.create": "test_customer_writes_are_audited",
    "customer.password": "test_customer_writes_are_audited",
    "customer.delete": "test_customer_writes_are_audited",
    "sims.import": "test_sim_writes_are_audited",
    "sim.activate": "test_sim_writes_are_audited",
    "sim.deactivate": "test_sim_writes_are_audited",
    "sim.reactivate": "test_sim_writes_are_audited",
    "sim.release": "test_sim_writes_are_audited",
    "mfa.enabled": "test_mfa_writes_are_audited",
    "mfa.recovery_code_used": "test_mfa_writes_are_audited",
    "mfa.recovery_codes_regenerated": "test_mfa_writes_are_audited",
    "mfa.disabled": "test_mfa_writes_are_audited",
    "mfa.reset": "test_mfa_writes_are_audited",
    "user.signup": "test_account_writes_are_audited",
    "user.password_reset.request": "test_account_writes_are_audited",
    "user.password_reset": "test_account_writes_are_audited",
    "team.invitation.create": "test_account_writes_are_audited",
    "team.invitation.revoke": "test_account_writes_are_audited",
    "team.invitation.accept": "test_account_writes_are_audited",
    "user.delete": "test_account_writes_are_audited",
}

# Actions built at run time from a prefix: the values each f-string can take.
DYNAMIC = {
    "team.": ["invite", "role", "remove", "api_user.create", "api_user.update", "api_user.token",
              "invitation.create", "invitation.revoke", "invitation.accept"],  # Team._audit
    "device.": ["update", "groups", "claim", "transfer.request", "transfer.approved", "transfer.denied", "unclaim",
                "deny"],  # _audit_device
    "device.transfer.": ["approved", "denied"],  # DeviceTransfer.State a decision audits (a lapse is not audited)
    "sim.": ["activate", "deactivate", "reactivate"],  # sim_set_state's actions
}


def _actions_in_code() -> set[str]:
    found: set[str] = set()
    for app in ("console", "products", "devices"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            found |= set(re.findall(r'audit_record\(.{0,120}?action="([^"]+)"', text, re.S))
            found |= {f"team.{a}" for a in re.findall(r'team\._audit\(principal, "([^"]+)"', text)}
            found |= {f"device.{a}" for a in re.findall(r'audit_device\(principal, device, "([^"]+)"', text)}
            for prefix in re.findall(r'action=f"([a-z_.]+)\{', text):
                found |= {prefix + a for a in DYNAMIC[prefix]}
            if 'audit_device(principal, device, f"transfer.{transfer.state}"' in text:
                found |= {f"device.transfer.{a}" for a in DYNAMIC["device.transfer."]}
    return found


def test_every_audit_action_is_tested():
    in_code = _actions_in_code()
    assert len(in_code) >= 30, sorted(in_code)  # the scan itself works
    assert in_code - set(TESTED_ACTIONS) == set(), "audited in the code but asserted by no test here"
    assert set(TESTED_ACTIONS) - in_code == set(), "listed here but no longer audited by the code"
    names = {name for name in globals() if name.startswith("test_")}
    assert set(TESTED_ACTIONS.values()) <= names


def test_assert_audited_needs_exactly_one_matching_row(cast):
    owner = Principal.for_user(cast.owner)
    audit_services.audit_record(principal=owner, action="x.test", target="a", product_id=1)
    audit_services.audit_record(principal=owner, action="x.test", target="b", product_id=1)
    assert assert_audited("x.test", target="a", actor=cast.owner).target == "a"
    with pytest.raises(AssertionError):
        assert_audited("x.test", product_id=1)  # two rows match
    with pytest.raises(AssertionError):
        assert_audited("x.test", target="c")  # none does
    with pytest.raises(AssertionError):
        assert_audited("x.other")


# --- accounts, products, clients, teams ---------------------------------------------------------------


def test_org_and_product_writes_are_audited(cast):
    owner = Principal.for_user(cast.owner)
    org = org_services.org_create(creator=cast.owner, name="Audited Org")
    assert_audited("org.create", actor=cast.owner, target=org.slug, account=org)

    product = product_create(principal=owner, account=user_services.sandbox_of(cast.owner), name="Audited Product",
                             platform_id=13)
    assert_audited("product.create", actor=cast.owner, target=product.slug, product_id=product.pk,
                   account=user_services.sandbox_of(cast.owner))
    product_update(principal=owner, product=product, description="now described")
    assert_audited("product.update", actor=cast.owner, target=product.slug, product_id=product.pk,
                   data={"changed": ["description"]})
    sandbox_slug = user_services.sandbox_of(cast.owner).slug
    product_move(principal=owner, product=product, to_account=org)
    assert_audited("product.move", actor=cast.owner, target=product.slug, account=org, product_id=product.pk,
                   data={"from": sandbox_slug, "to": org.slug})
    product_pk = product.pk
    product_delete(principal=owner, product=product)
    assert_audited("product.delete", actor=cast.owner, target=product.slug, account=org, product_id=product_pk)


def test_oauth_client_writes_are_audited(cast):
    dev = Principal.for_user(cast.developer)
    client, _ = client_services.client_create(principal=dev, product_id=cast.product.pk, product_slug=cast.product.slug,
                                              name="audited", type="installed")
    assert_audited("client.create", actor=cast.developer, target=client.client_id, product_id=cast.product.pk)
    client_services.client_update(principal=dev, client=client, name="renamed")
    assert_audited("client.update", actor=cast.developer, target=client.client_id, product_id=cast.product.pk)
    client_services.client_delete(principal=dev, client=client)
    assert_audited("client.delete", actor=cast.developer, target=client.client_id, product_id=cast.product.pk)


@pytest.mark.parametrize("where", ["product", "org"])
def test_team_writes_are_audited(cast, where):
    admin = Principal.for_user(cast.admin)
    team = product_team(cast.product) if where == "product" else org_team(cast.org)
    scope = ({"product_id": cast.product.pk, "account": cast.org} if where == "product"
             else {"product_id": None, "account": cast.org})
    newcomer = UserFactory(email="newcomer@example.com")

    team_invite(principal=admin, team=team, username=newcomer.email, role="Support")
    assert_audited("team.invite", actor=cast.admin, target=newcomer.email, data={"role": Role.SUPPORT.value},
                   **scope)
    team_set_role(principal=admin, team=team, username=newcomer.email, role="View-only")
    assert_audited("team.role", actor=cast.admin, target=newcomer.email, data={"role": Role.VIEWER.value}, **scope)
    team_remove(principal=admin, team=team, username=newcomer.email)
    assert_audited("team.remove", actor=cast.admin, target=newcomer.email, **scope)

    robot, _ = api_user_create(principal=admin, team=team, friendly_name="audited robot", scopes=["products:get"])
    assert_audited("team.api_user.create", actor=cast.admin, target=robot.email, data={"scopes": ["products:get"]},
                   **scope)
    api_user_update(principal=admin, team=team, username=robot.email, scopes=["products:get", "devices:list"])
    assert_audited("team.api_user.update", actor=cast.admin, target=robot.email,
                   data={"scopes": ["devices:list", "products:get"]}, **scope)
    api_user_regenerate(principal=admin, team=team, username=robot.email)
    assert_audited("team.api_user.token", actor=cast.admin, target=robot.email, **scope)


# --- devices, groups, claims ----------------------------------------------------------------------------


def test_onboarding_writes_are_audited(cast):
    """A device that presents a product's firmware without being a member waits in quarantine (audited as Cyan,
    once per product and batch); auto-approve is an import by Cyan; a claim code claims as the code's owner."""
    from devices.models import ClaimCode, Onboarding
    from devices.services.onboarding import onboardings_run
    from devices.services.sessions import Hello, claim_code_presented, sessions_open

    def onboard(*device_ids, product):
        connect(*device_ids)
        sessions_open([Hello(device_id=d, gateway="gw-test", session="s1", product_id=product.pk,
                             firmware_version=2, platform_id=product.platform_id, flags=0, ip_address=None)
                       for d in device_ids])
        return onboardings_run(list(Onboarding.objects.filter(state="pending").values_list("pk", flat=True)))

    waiting = ids(manufacture(13, 2))
    assert onboard(*waiting, product=cast.product) == 2
    assert_audited("devices.quarantine", actor=None, actor_label="Cyan onboarding", target=cast.product.slug,
                   account=cast.org, product_id=cast.product.pk, data={"devices": 2, "ids": sorted(waiting)})
    Product.objects.filter(pk=cast.product.pk).update(quarantine=False)
    cast.product.refresh_from_db()
    approved = ids(manufacture(13, 1))
    assert onboard(*approved, product=cast.product) == 1
    assert_audited("devices.import", actor=None, actor_label="Cyan auto-approve", target=cast.product.slug,
                   product_id=cast.product.pk, data={"lines": 1, "added": 1, "existing": 0, "rejected": 0})
    code = claims.claim_code_create(principal=Principal.for_user(cast.developer)).code
    claim_code_presented(approved[0], code)
    assert ClaimCode.objects.get(code=code).used_at is not None
    assert_audited("device.claim", actor=cast.developer, target=approved[0], product_id=cast.product.pk,
                   data={"user": cast.developer.email, "via": "claim code"})


def test_device_writes_are_audited(cast):
    dev = Principal.for_user(cast.developer)
    made = manufacture(13, 3)
    report = device_import(principal=dev, product=cast.product, values=[*enumerate(ids(made), 1), (4, "junk")])
    assert sorted(report.updated_ids) == sorted(ids(made))
    assert_audited("devices.import", actor=cast.developer, target=cast.product.slug, account=cast.org,
                   product_id=cast.product.pk, data={"lines": 4, "added": 3, "existing": 0, "rejected": 1})
    first, second, third = ids(made)
    where = {"account": cast.org, "product_id": cast.product.pk}

    device_services.device_update(principal=dev, device=Device.objects.get(pk=first), name="audited_name",
                                  notes="n", product_form=True)
    assert_audited("device.update", actor=cast.developer, target=first, data={"fields": ["name", "notes"]}, **where)
    groups.device_set_groups(principal=dev, device=Device.objects.get(pk=first), names=["alpha"])
    assert_audited("device.groups", actor=cast.developer, target=first, data={"groups": ["alpha"]}, **where)

    Device.objects.filter(pk=second).update(owner=cast.support)
    device_services.device_unclaim(principal=dev, device=Device.objects.get(pk=second))
    assert_audited("device.unclaim", actor=cast.developer, target=second, data={"was": cast.support.email}, **where)
    device_services.device_deny(principal=dev, device=Device.objects.get(pk=second))
    assert_audited("device.deny", actor=cast.developer, target=second, **where)
    device_services.device_remove(principal=dev, device=Device.objects.get(pk=third))
    assert_audited("device.remove", actor=cast.developer, target=third, **where)


def test_device_key_uploads_are_audited(cast):
    """A key upload names the new key and the one it replaced (SHA-256 of each SPKI DER), in the device's product."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from devices.services.keys import device_key_upload, key_fingerprint

    member = import_devices(cast.product)[0]
    fingerprints = []
    for _ in range(2):
        public = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
        device_key_upload(principal=Principal.for_user(cast.developer), device=Device.objects.get(pk=member),
                          public_key=public.public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        fingerprints.append(key_fingerprint(public.public_bytes(serialization.Encoding.DER,
                                                                serialization.PublicFormat.SubjectPublicKeyInfo)))
    where = {"actor": cast.developer, "target": member, "account": cast.org, "product_id": cast.product.pk}
    assert_audited("device.key.upload", data={"fingerprint": fingerprints[0], "replaced": None}, **where)
    assert_audited("device.key.upload", data={"fingerprint": fingerprints[1], "replaced": fingerprints[0]}, **where)


def test_claims_and_transfers_are_audited(db):
    keeper, asker, other = (UserFactory(email=f"{n}@example.com") for n in ("keeper", "asker", "other"))
    first, second = ids(manufacture(12, 2))
    connect(first)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(keeper), device_id=first)
    assert_audited("device.claim", actor=keeper, target=first, product_id=None, data={"user": keeper.email})
    connect(second)  # claiming by id needs the device online
    claims.device_claim(principal=Principal.for_user(keeper), device_id=second)

    asked = claims.device_claim(principal=Principal.for_user(asker), device_id=first,
                                         request_transfer=True)
    assert_audited("device.transfer.request", actor=asker, target=first,
                   data={"from": keeper.email, "to": asker.email})
    transfers.device_transfer_decide(principal=Principal.for_user(keeper), transfer_id=asked.transfer.pk,
                                           approve=True)
    assert_audited("device.transfer.approved", actor=keeper, target=first, data={"to": asker.email})
    assert Device.objects.get(pk=first).owner == asker

    refused = claims.device_claim(principal=Principal.for_user(other), device_id=second,
                                           request_transfer=True)
    decided = transfers.device_transfer_decide(principal=Principal.for_user(keeper),
                                                     transfer_id=refused.transfer.pk, approve=False)
    assert decided.state == DeviceTransfer.State.DENIED
    assert_audited("device.transfer.denied", actor=keeper, target=second, data={"to": other.email})


def test_group_writes_are_audited(cast):
    dev = Principal.for_user(cast.developer)
    group = groups.group_create(principal=dev, product=cast.product, name="audited")
    assert_audited("group.create", actor=cast.developer, target="audited", account=cast.org,
                   product_id=cast.product.pk)
    groups.group_update(principal=dev, group=group, description="changed")
    assert_audited("group.update", actor=cast.developer, target="audited", product_id=cast.product.pk)
    groups.group_delete(principal=dev, group=DeviceGroup.objects.get(pk=group.pk))
    assert_audited("group.delete", actor=cast.developer, target="audited", account=cast.org,
                   product_id=cast.product.pk)


def test_customer_writes_are_audited(cast):
    dev = Principal.for_user(cast.developer)
    customer, _ = customers.customer_create(principal=dev, product=cast.product, email="Carol@Example.com",
                                            password="long-enough-pw")
    assert_audited("customer.create", actor=cast.developer, target="carol@example.com", account=cast.org,
                   product_id=cast.product.pk, data={"shadow": False})
    customers.customer_set_password(principal=dev, customer=customer, password="another-long-pw")
    assert_audited("customer.password", actor=cast.developer, target="carol@example.com",
                   product_id=cast.product.pk)
    customers.customer_delete(principal=dev, customer=Customer.objects.get(pk=customer.pk))
    assert_audited("customer.delete", actor=cast.developer, target="carol@example.com", product_id=cast.product.pk)


def test_sim_writes_are_audited(cast):
    dev = Principal.for_user(cast.developer)
    made = manufacture(13, 2)
    report = sims.sims_import(principal=dev, product=cast.product, values=[(1, made[0].iccid)])
    assert report["imported"] == [made[0].iccid]
    assert_audited("sims.import", actor=cast.developer, target=cast.product.slug, account=cast.org,
                   product_id=cast.product.pk, data={"imported": 1})
    sim = SimCard.objects.get(pk=made[0].iccid)
    assert sim.status == SimCard.Status.ACTIVE
    sims.sim_set_state(principal=dev, sim=sim, action="deactivate")
    assert_audited("sim.deactivate", actor=cast.developer, target=sim.iccid, product_id=cast.product.pk)
    sims.sim_set_state(principal=dev, sim=SimCard.objects.get(pk=sim.pk), action="reactivate")
    assert_audited("sim.reactivate", actor=cast.developer, target=sim.iccid, product_id=cast.product.pk)
    sims.sim_release(principal=dev, sim=SimCard.objects.get(pk=sim.pk))
    assert_audited("sim.release", actor=cast.developer, target=sim.iccid, product_id=cast.product.pk)
    # Activating a released SIM through the product form, and a sandbox activation by a user.
    released = SimCard.objects.get(pk=sim.pk)
    released.product = cast.product
    released.save(update_fields=["product"])
    sims.sim_set_state(principal=dev, sim=released, action="activate")
    assert_audited("sim.activate", actor=cast.developer, target=sim.iccid, product_id=cast.product.pk)
    sims.sim_activate_sandbox(principal=Principal.for_user(cast.outsider), iccid=made[1].iccid)
    assert_audited("sim.activate", actor=cast.outsider, target=made[1].iccid, product_id=None)


def test_mfa_writes_are_audited(cast):
    from console.services import mfa as mfa_services
    from tests.factories import PASSWORD
    from tests.support.mfa import enrol

    owner = cast.owner
    _, codes = enrol(owner)
    assert_audited("mfa.enabled", actor=owner, target=owner.email, data={"invalidate_tokens": False})
    assert mfa_services.mfa_verify(user=owner, code=codes[0], ip="127.0.0.1") == "recovery"
    assert_audited("mfa.recovery_code_used", actor=owner, target=owner.email, data={"remaining": 9})
    mfa_services.mfa_recovery_codes_regenerate(user=owner, current_password=PASSWORD, ip="127.0.0.1")
    assert_audited("mfa.recovery_codes_regenerated", actor=owner, target=owner.email)
    mfa_services.mfa_disable(user=owner, current_password=PASSWORD, ip="127.0.0.1")
    assert_audited("mfa.disabled", actor=owner, target=owner.email)
    enrol(cast.viewer)
    mfa_services.mfa_reset(user=cast.viewer, principal=Principal.for_user(cast.admin))
    assert_audited("mfa.reset", actor=cast.admin, target=cast.viewer.email)


def test_refused_writes_leave_no_audit_row(cast):
    viewer = Principal.for_user(cast.viewer)
    count = AuditEntry.objects.count()
    with pytest.raises(Forbidden):
        team_invite(principal=viewer, team=product_team(cast.product), username=cast.outsider.email)
    with pytest.raises(Forbidden):
        product_create(principal=viewer, account=cast.org, name="Nope", platform_id=13)
    assert AuditEntry.objects.count() == count
    assert import_devices(cast.product, 1)  # while an accepted write is
    assert AuditEntry.objects.count() == count + 1


def test_account_writes_are_audited(cast):
    from console.services import password_reset
    from console.services.teams import invitation_token

    owner = Principal.for_user(cast.owner)
    team = org_team(cast.org)
    invited = team_invite(principal=owner, team=team, username="later@example.com", role="Support")
    assert_audited("team.invitation.create", actor=cast.owner, target="later@example.com", account=cast.org,
                   data={"role": "support"})
    team_remove(principal=owner, team=team, username="later@example.com")
    assert_audited("team.invitation.revoke", actor=cast.owner, target="later@example.com", account=cast.org)
    again = team_invite(principal=owner, team=team, username="later@example.com", role="View-only").invitation
    user = user_services.user_signup(email="later@example.com", password="tidal-lantern-orbit-42",
                                     invitation=invitation_token(again))
    assert invited.invitation.pk != again.pk
    assert_audited("user.signup", actor=user, target="later@example.com", account=user_services.sandbox_of(user))
    assert_audited("team.invitation.accept", actor=user, target="later@example.com", account=cast.org,
                   data={"role": "viewer"})
    password_reset.password_reset_request(email="later@example.com")
    assert_audited("user.password_reset.request", actor=None, actor_label="system", target="later@example.com")
    password_reset.password_reset_complete(token=password_reset.password_reset_token(user),
                                           password="quiet-harbour-meadow-7")
    assert_audited("user.password_reset", actor=user, target="later@example.com", data={"tokens_revoked": 0})
    user.refresh_from_db()
    user_services.user_delete(user=user, password="quiet-harbour-meadow-7")
    assert_audited("user.delete", actor=None, actor_label="later@example.com", target="later@example.com")
