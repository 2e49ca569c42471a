"""The admin site: every model's list searches and filters; the move/transfer actions work."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from products.models import Product, ProductMembership
from tests.factories import UserFactory, make_org

pytestmark = pytest.mark.django_db

ADMIN_APPS = ("console", "products", "devices", "integrations", "billing")


@pytest.fixture
def staff_client(client, cast):
    staff = UserFactory(email="support@cyan.test")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def test_every_model_is_registered_searchable_and_filterable():
    from django.apps import apps

    for app_label in ADMIN_APPS:
        for model in apps.get_app_config(app_label).get_models():
            model_admin = admin.site._registry.get(model)
            assert model_admin is not None, f"{model.__name__} is not in the admin"
            assert model_admin.search_fields, f"{model.__name__} admin has no search"
            assert model_admin.list_filter, f"{model.__name__} admin has no filters"


def test_changelists_render_with_search(staff_client):
    for model, _ in admin.site._registry.items():
        if model._meta.app_label not in ADMIN_APPS:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        r = staff_client.get(url, {"q": "acme"})
        assert r.status_code == 200, url


def test_move_into_organization_action(staff_client, cast):
    target = make_org(UserFactory(email="boss@example.com"), "Target Org")
    url = reverse("admin:products_product_changelist")
    ids = [str(cast.sandbox_product.pk)]
    r = staff_client.post(url, {"action": "move_into_organization", "_selected_action": ids})
    assert r.status_code == 200 and b"Move products into an organization" in r.content
    r = staff_client.post(url, {"action": "move_into_organization", "_selected_action": ids, "apply": "1",
                                "organization": target.pk}, follow=True)
    assert r.status_code == 200
    assert Product.objects.get(pk=cast.sandbox_product.pk).account == target
    assert ProductMembership.objects.filter(product=cast.sandbox_product, user=cast.owner).exists()


def test_transfer_to_user_action_validates_email(staff_client, cast):
    url = reverse("admin:products_product_changelist")
    ids = [str(cast.sandbox_product.pk)]
    r = staff_client.post(url, {"action": "transfer_to_user", "_selected_action": ids, "apply": "1",
                                "email": "nobody@nowhere.test"})
    assert b"No user has that email" in r.content
    assert Product.objects.get(pk=cast.sandbox_product.pk).account.owner == cast.owner
    new_owner = UserFactory(email="heir@example.com")
    staff_client.post(url, {"action": "transfer_to_user", "_selected_action": ids, "apply": "1",
                            "email": "heir@example.com"})
    assert Product.objects.get(pk=cast.sandbox_product.pk).account.owner == new_owner


def test_register_a_manufactured_device_in_the_admin(staff_client):
    from console.models import hash_secret
    from devices.models import Device, SimCard

    url = reverse("admin:devices_device_add")
    r = staff_client.post(url, {"id": "AB" * 12, "platform": 13, "serial_number": "BOR13ADMIN0001",
                                "device_secret": "s3cret", "iccid": "89014103211118510720",
                                "imei": "", "mac_wifi": "", "name": "", "notes": "",
                                "devicegroupmembership_set-TOTAL_FORMS": "0",
                                "devicegroupmembership_set-INITIAL_FORMS": "0"})
    assert r.status_code == 302, r.content[:500]
    device = Device.objects.get(pk="ab" * 12)
    assert device.secret_hash == hash_secret("s3cret")
    assert SimCard.objects.get(pk="89014103211118510720").device == device
    bad = staff_client.post(url, {"id": "xyz", "platform": 13, "devicegroupmembership_set-TOTAL_FORMS": "0",
                                  "devicegroupmembership_set-INITIAL_FORMS": "0"})
    assert b"24 hexadecimal" in bad.content
    assert device.serial_entry.serial == "BOR13ADMIN0001"  # the registry's serial map, not just the column
    again = dict(id="cd" * 12, platform=13, serial_number="bor13admin0001", device_secret="", iccid="", imei="",
                 mac_wifi="", name="", notes="", **{"devicegroupmembership_set-TOTAL_FORMS": "0",
                                                     "devicegroupmembership_set-INITIAL_FORMS": "0"})
    taken = staff_client.post(url, again)
    assert b"already has this serial number" in taken.content
    assert not Device.objects.filter(pk="cd" * 12).exists()


def test_correcting_a_serial_in_the_admin_moves_the_lookup(staff_client, db):
    from devices.models import Device, SerialNumber
    from tests.support.fleet import manufacture

    made = manufacture(13, 1)[0]
    url = reverse("admin:devices_device_change", args=[made.device_id])
    form = {"id": made.device_id, "platform": 13, "serial_number": "BOR13FIXED0001", "imei": "", "mac_wifi": "",
            "name": "", "notes": "", "device_secret": "", "iccid": "",
            "devicegroupmembership_set-TOTAL_FORMS": "0", "devicegroupmembership_set-INITIAL_FORMS": "0"}
    r = staff_client.post(url, form)
    assert r.status_code == 302, r.content[:800]
    assert list(SerialNumber.objects.filter(device_id=made.device_id).values_list("serial", flat=True)) == \
        ["BOR13FIXED0001"]
    assert Device.objects.get(pk=made.device_id).serial_number == "BOR13FIXED0001"
    assert not SerialNumber.objects.filter(serial=made.serial_number).exists()


def test_integrations_and_usage_are_read_only_and_never_show_a_signing_secret(staff_client, cast):
    from console.scoping import Principal
    from integrations.services import integration_create
    from integrations.validation import webhook_fields

    hook = integration_create(principal=Principal.for_user(cast.owner), product=cast.product, fields=webhook_fields(
        {"event": "temp", "url": "https://example.com/hook"}))
    page = staff_client.get(reverse("admin:integrations_integration_change", args=[hook.pk]))
    assert page.status_code == 200
    assert hook.signing_secret not in page.content.decode()
    assert staff_client.post(reverse("admin:integrations_integration_change", args=[hook.pk]),
                             {"event": "other"}).status_code == 403
    assert staff_client.get(reverse("admin:integrations_integration_add")).status_code == 403
    assert staff_client.get(reverse("admin:billing_dataoperationday_add")).status_code == 403
