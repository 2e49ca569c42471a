"""Every person has exactly one sandbox, whichever door made them (issue 11, defect 1): before, a user made by
`createsuperuser` or the admin's add-user form had none and `POST /v1/user/products` answered 500."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as global_apps
from django.core.management import call_command
from django.urls import reverse

from console.services import tokens as token_services
from console.services import users as user_services
from console.models import AccessToken, Account, User

pytestmark = pytest.mark.django_db


def _sandboxes(user: User) -> int:
    return Account.objects.filter(kind=Account.Kind.SANDBOX, owner=user).count()


def _can_create_a_sandbox_product(client, user: User) -> None:
    token = token_services.token_issue(kind=AccessToken.Kind.USER, user=user, client_name="test").access_token
    r = client.post("/v1/user/products", {"product": {"name": f"First of {user.pk}", "platform_id": 12}},
                    content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 201, r.content
    assert r.json()["product"]["platform_id"] == 12


def test_createsuperuser_gets_a_sandbox_and_can_create_a_product(client, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-enough-staff-password")
    call_command("createsuperuser", "--noinput", "--email", "root@example.com", verbosity=0)
    root = User.objects.get(email="root@example.com")
    assert root.is_superuser and _sandboxes(root) == 1
    _can_create_a_sandbox_product(client, root)


def test_the_admins_add_user_form_gives_a_sandbox(client):
    staff = User.objects.create_superuser("staff@example.com", "a-long-enough-staff-password")
    client.force_login(staff)
    r = client.post(reverse("admin:console_user_add"), {"email": "added@example.com",
                                                        "password1": "Another-long-pass-42",
                                                        "password2": "Another-long-pass-42"})
    assert r.status_code == 302, r.content[:400]
    added = User.objects.get(email="added@example.com")
    assert _sandboxes(added) == 1
    _can_create_a_sandbox_product(client, added)


def test_the_service_and_the_manager_make_exactly_one(client):
    made = user_services.user_create(email="svc@example.com", password="Yet-another-long-pass-7", validate=False)
    assert _sandboxes(made) == 1
    plain = User.objects.create_user("manager@example.com", "x")
    assert _sandboxes(plain) == 1
    plain.first_name = "Renamed"
    plain.save()  # saving again makes no second sandbox
    assert _sandboxes(plain) == 1


def test_api_users_have_no_sandbox():
    robot = User.objects.create_user("robot+1@api.particle.io", None, kind=User.Kind.API)
    assert _sandboxes(robot) == 0


def test_the_data_migration_repairs_users_left_without_one():
    stranded = User.objects.create_user("stranded@example.com", "x")
    Account.objects.filter(owner=stranded).delete()
    fine = User.objects.create_user("fine@example.com", "x")
    migration = importlib.import_module("console.migrations.0002_sandbox_for_every_user")
    migration.add_missing_sandboxes(global_apps, None)
    assert _sandboxes(stranded) == 1 and _sandboxes(fine) == 1
    assert Account.objects.get(kind=Account.Kind.SANDBOX, owner=stranded).slug.startswith("stranded-sandbox")
