"""Rules of the code's shape that a test can hold: every task a service sends by name exists; the console's
controls (`rights_for`) agree with the scoping door (`restrict`) for every caller and action; a product
OAuth client acting with its own credentials reaches what its tokens reach; support staff deleting a
product in the admin leave no credential behind that names it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from console.celery import app
from console.models import AccessToken, Account, OAuthClient, User
from console.roles import ACTION_MIN_ROLE
from console.scoping import Principal, rights_for
from products.models import Product
from tests.support.api import user_token
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
APPS = ("console", "products", "devices", "integrations", "billing")


def _task_names_sent_by_name() -> dict[str, str]:
    """Every module-level `*_TASK = "..."` constant in the apps (what services hand to `enqueue_on_commit`)."""
    found = {}
    for app_dir in APPS:
        for path in (ROOT / app_dir).rglob("*.py"):
            for node in ast.parse(path.read_text()).body:
                if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                        and node.targets[0].id.endswith("_TASK") and isinstance(node.value, ast.Constant)):
                    found[f"{path.relative_to(ROOT)}:{node.targets[0].id}"] = node.value.value
    return found


def test_every_task_sent_by_name_is_registered():
    names = _task_names_sent_by_name()
    assert len(names) >= 4, names  # transfers, imports, org and product invites
    app.loader.import_default_modules()
    unknown = {where: name for where, name in names.items() if name not in app.tasks}
    assert not unknown, f"enqueued by name but no task has that name: {unknown}"
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)


def test_every_task_has_the_shared_defaults():
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if name.split(".")[0] in APPS]
    assert len(ours) >= 6
    for task in ours:
        assert task.acks_late and task.reject_on_worker_lost, task.name
        assert task.retry_backoff and task.retry_jitter and task.max_retries == 5, task.name


def _principals(cast) -> dict[str, Principal]:
    people = {name: Principal.for_user(getattr(cast, name))
              for name in ("owner", "admin", "developer", "support", "viewer", "outsider")}
    tokens = {name: Principal.from_token(AccessToken.objects.get(token_hash=_hash(cast.tokens[name])))
              for name in ("api_with", "api_without", "product_token")}
    return {**people, **tokens}


def _hash(raw: str) -> str:
    from console.models import hash_secret

    return hash_secret(raw)


def test_rights_for_agrees_with_the_scoping_door_for_every_caller_and_action(cast):
    targets = [cast.product, cast.sandbox_product, cast.outsider_product, cast.org,
               Account.objects.get(kind=Account.Kind.SANDBOX, owner=cast.owner)]
    checked = 0
    for who, principal in _principals(cast).items():
        for target in targets:
            rights = rights_for(principal, target)
            model = type(target)
            # `visible` decides 404 against 403 in product_get: the door with no action at all.
            assert rights.visible == model.objects.restrict(principal).filter(pk=target.pk).exists(), (
                who, str(target))
            for action in ACTION_MIN_ROLE:
                door = model.objects.restrict(principal, action).filter(pk=target.pk).exists()
                assert rights.may(action) == door, (who, str(target), action)
                checked += 1
    assert checked == 9 * 5 * len(ACTION_MIN_ROLE)


def test_device_rights_agree_with_the_device_door_for_every_caller_device_and_action(cast):
    """DeviceRights decides 404/403 for a device looked up by id (devices/selectors/devices.py device_get):
    it must say exactly what Device.objects.restrict says, for people, tokens and customers alike."""
    from devices.models import Customer, Device, DeviceRights
    from tests.support.fleet import import_devices, manufacture, ids

    alice = Customer.objects.create(product=cast.product, email="alice@example.com")
    bob = Customer.objects.create(product=cast.outsider_product, email="bob@example.com")
    plain, for_dev, for_alice = import_devices(cast.product, 3)
    Device.objects.filter(pk=for_dev).update(owner=cast.developer)
    Device.objects.filter(pk=for_alice).update(customer=alice)
    outsiders = import_devices(cast.outsider_product, 3, by=cast.outsider)
    Device.objects.filter(pk=outsiders[0]).update(customer=bob)
    Device.objects.filter(pk=outsiders[2]).update(customer=alice)  # moved on without its customer link: not hers
    Device.objects.filter(pk=outsiders[1]).update(owner=cast.support)  # a member's device in another tenant
    in_sandbox = import_devices(cast.sandbox_product)[0]
    loose = ids(manufacture(13, 1))[0]
    Device.objects.filter(pk=loose).update(owner=cast.viewer)  # claimed, in no product at all
    principals = {**_principals(cast), "alice": Principal(kind="customer", customer_id=alice.pk,
                                                          product_id=cast.product.pk),
                  "bob": Principal(kind="customer", customer_id=bob.pk, product_id=cast.outsider_product.pk)}
    devices = [plain, for_dev, for_alice, *outsiders, in_sandbox, loose]
    checked = 0
    for who, principal in principals.items():
        for device_id in devices:
            device = Device.objects.select_related("product", "product__account").get(pk=device_id)
            rights = DeviceRights(principal, device)
            for action in (None, *ACTION_MIN_ROLE):
                door = Device.objects.restrict(principal, action).filter(pk=device_id).exists()
                assert rights.may(action) == door, (who, device_id, action)
                checked += door
    assert checked > 100  # the matrix is not all refusals


def test_the_one_query_product_device_lookup_agrees_with_its_two_steps(cast):
    """product_and_device_get (a function call's lookup) must answer exactly what product_get followed by
    product_device_get answers: the same device, or the same error with the same words."""
    from devices.models import Device
    from devices.selectors import devices as device_selectors
    from products.selectors import product_get
    from tests.support.fleet import import_devices

    mine = import_devices(cast.product, 2)
    Device.objects.filter(pk=mine[1]).update(name="named-one", denied=True)
    theirs = import_devices(cast.outsider_product, 1, by=cast.outsider)[0]
    sandbox = import_devices(cast.sandbox_product)[0]

    def outcome(fn):
        try:
            return ("device", fn().pk)
        except Exception as exc:  # the verdict is the comparison: type and words
            return (type(exc).__name__, str(exc))

    products = [cast.product, cast.outsider_product, cast.sandbox_product]
    idents = [ident for p in products for ident in (p.pk, str(p.pk), p.slug)] + ["no-such-product", "99999", "a b"]
    device_ids = [*mine, mine[0].upper(), "named-one", theirs, sandbox, "0" * 24, ""]
    seen = set()
    for who, principal in _principals(cast).items():
        for ident in idents:
            for device_id in device_ids:
                for action in ("devices.function:call", "devices.variable:get", "devices:list"):
                    one = outcome(lambda: device_selectors.product_and_device_get(
                        principal=principal, product=ident, device_id=device_id, action=action, related=()))
                    two = outcome(lambda: device_selectors.product_device_get(
                        product=product_get(principal=principal, ident=ident, action=action),
                        device_id=device_id, related=()))
                    assert one == two, (who, ident, device_id, action)
                    seen.add(one[0])
    assert seen == {"device", "NotFound", "Forbidden"}


def test_rights_for_names_the_role_and_the_owner(cast):
    owner = rights_for(Principal.for_user(cast.owner), cast.product)
    assert owner.is_owner and owner.role == "administrator"
    support = rights_for(Principal.for_user(cast.support), cast.product)
    assert not support.is_owner and support.role == "support"
    assert rights_for(Principal.for_user(cast.outsider), cast.product).role is None
    assert rights_for(Principal.for_user(cast.viewer), cast.org).role == "viewer"


def test_a_client_acting_with_its_credentials_reaches_what_its_tokens_reach(cast):
    from console.services import clients as client_services

    owner = Principal.for_user(cast.owner)
    narrow, _ = client_services.client_create(principal=owner, product_id=cast.product.pk, product_slug=cast.product.slug,
                                              name="signup server", type="installed", scope="customers:create")
    wide, _ = client_services.client_create(principal=owner, product_id=cast.product.pk, product_slug=cast.product.slug,
                                            name="fleet server", type="installed", scope="*:*")
    for client, may_list in ((narrow, False), (wide, True)):
        principal = Principal.for_client(client)
        reach = Product.objects.restrict(principal, "customers:create")
        assert list(reach.values_list("pk", flat=True)) == [cast.product.pk]
        assert Product.objects.restrict(principal, "devices:list").exists() is may_list
        assert not Product.objects.restrict(principal, "teams.users:list").exists()  # never the team
        assert not Product.objects.restrict(principal).filter(pk=cast.outsider_product.pk).exists()


def test_admin_delete_of_products_removes_their_clients_tokens_and_api_users(client, cast):
    staff = UserFactory(email="support@cyan.test")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    client.force_login(staff)
    product = cast.product
    api_users = list(User.objects.filter(productmembership__product=product, kind=User.Kind.API)
                     .values_list("pk", flat=True))
    assert OAuthClient.objects.filter(product_id=product.pk).exists()
    assert AccessToken.objects.filter(product_id=product.pk).exists() and api_users
    keep = user_token(cast.outsider)  # someone else's credentials stay
    r = client.post(reverse("admin:products_product_changelist"),
                    {"action": "delete_selected", "_selected_action": [product.pk, cast.sandbox_product.pk],
                     "post": "yes"})
    assert r.status_code == 302, r.content[:500]
    assert not Product.objects.filter(pk__in=[product.pk, cast.sandbox_product.pk]).exists()
    assert not OAuthClient.objects.filter(product_id=product.pk).exists()
    assert not AccessToken.objects.filter(product_id=product.pk).exists()
    assert not User.objects.filter(pk__in=api_users).exists()
    assert AccessToken.objects.filter(token_hash=_hash(keep)).exists()
    assert Product.objects.filter(pk=cast.outsider_product.pk).exists()


def test_admin_delete_of_one_product_from_its_page_goes_through_the_service(client, cast):
    staff = UserFactory(email="support@cyan.test")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    client.force_login(staff)
    product = cast.product
    api_users = list(User.objects.filter(productmembership__product=product, kind=User.Kind.API)
                     .values_list("pk", flat=True))
    assert api_users
    r = client.post(reverse("admin:products_product_delete", args=[product.pk]), {"post": "yes"})
    assert r.status_code == 302, r.content[:500]
    assert not Product.objects.filter(pk=product.pk).exists()
    assert not OAuthClient.objects.filter(product_id=product.pk).exists()
    assert not AccessToken.objects.filter(product_id=product.pk).exists()
    assert not User.objects.filter(pk__in=api_users).exists()


def test_product_ids_never_collide_with_platform_ids(cast):
    """particle-cli shows a device whose product_id is a known platform id as that platform: product ids start
    past every platform id (products/migrations/0005), as Particle's do."""
    from products.models import Platform

    assert min(Product.objects.values_list("pk", flat=True)) >= 1000
    assert max(Platform.objects.values_list("pk", flat=True)) < 1000
