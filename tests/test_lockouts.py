"""Password guessing is counted on every door and per account (issue 11, defect 7): customer logins were never
counted, a success on the attacker's own account reset the per-address count (so guessing never locked),
`/admin/login/` had no lockout, and `current_password` could be guessed without limit."""

from __future__ import annotations

import pytest
from django.test import Client

from console.models import AccessToken, User
from devices.models import Customer
from devices.services.customers import customer_create
from tests.factories import PASSWORD, UserFactory
from tests.support.api import Api, user_token

pytestmark = pytest.mark.django_db

LIMIT = 10


def _grant(username: str, password: str, *, ip: str = "203.0.113.5", client=("particle-api", "particle-api")):
    c = Client(REMOTE_ADDR=ip)
    return c.post("/oauth/token", {"grant_type": "password", "username": username, "password": password,
                                   "client_id": client[0], "client_secret": client[1]})


def test_signing_in_to_your_own_account_between_guesses_does_not_reset_the_address():
    victim, attacker = UserFactory(email="victim@example.com"), UserFactory(email="attacker@example.com")
    for _ in range(3):
        for _ in range(3):
            assert _grant(victim.email, "guess").status_code == 400
        assert _grant(attacker.email, PASSWORD).status_code == 200
    assert _grant(victim.email, "guess").status_code == 400
    r = _grant(victim.email, PASSWORD)  # 10 failures from this address, whatever succeeded between them
    assert r.status_code == 429 and r.json()["error"] == "too_many_attempts", r.content
    assert not AccessToken.objects.filter(user=victim).exists()


def test_guessing_one_account_from_many_addresses_locks_the_account():
    victim = UserFactory(email="victim@example.com")
    for n in range(LIMIT):
        assert _grant(victim.email, "guess", ip=f"198.51.100.{n}").status_code == 400
    r = _grant(victim.email, PASSWORD, ip="192.0.2.77")
    assert r.status_code == 429 and "for this account" in r.json()["error_description"], r.content
    assert int(r["Retry-After"]) == 1800
    # another account from the same fresh address is not affected
    UserFactory(email="bystander@example.com")
    assert _grant("bystander@example.com", PASSWORD, ip="192.0.2.77").status_code == 200


def test_customer_password_logins_are_counted(cast):
    owner = cast.owner
    from console.scoping import Principal
    from console.services import clients as client_services

    client, secret = client_services.client_create(principal=Principal.for_user(owner), product_id=cast.product.pk,
                                                   product_slug=cast.product.slug, name="app", type="installed")
    customer_create(principal=None, product=cast.product, email="carol@example.com", password="Carol-s-long-pass-1")
    for _ in range(LIMIT):
        r = _grant("carol@example.com", "guess", client=(client.client_id, secret))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.content
    r = _grant("carol@example.com", "Carol-s-long-pass-1", client=(client.client_id, secret))
    assert r.status_code == 429, r.content
    assert not AccessToken.objects.filter(customer_id=Customer.objects.get(email="carol@example.com").pk).exclude(
        client_name="").filter(client=client).exists()


def test_the_admin_login_locks_out_too():
    staff = UserFactory(email="staff@example.com")
    User.objects.filter(pk=staff.pk).update(is_staff=True, is_superuser=True)
    c = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(LIMIT):
        r = c.post("/admin/login/", {"username": staff.email, "password": "guess", "next": "/admin/"})
        assert r.status_code == 200 and b"do not match" in r.content
    r = c.post("/admin/login/", {"username": staff.email, "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 200 and b"Too many failed sign-in attempts" in r.content
    assert "_auth_user_id" not in c.session


def test_the_admin_login_still_admits_staff_only():
    UserFactory(email="plain@example.com")
    c = Client(REMOTE_ADDR="203.0.113.10")
    r = c.post("/admin/login/", {"username": "plain@example.com", "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 200 and "_auth_user_id" not in c.session
    staff = UserFactory(email="staff@example.com")
    User.objects.filter(pk=staff.pk).update(is_staff=True)
    r = c.post("/admin/login/", {"username": staff.email, "password": PASSWORD, "next": "/admin/"})
    assert r.status_code == 302 and c.session["_auth_user_id"] == str(staff.pk)


def test_the_console_login_counts_per_account():
    victim = UserFactory(email="victim@example.com")
    for n in range(LIMIT):
        Client(REMOTE_ADDR=f"198.51.100.{n}").post("/login/", {"username": victim.email, "password": "guess"})
    r = Client(REMOTE_ADDR="192.0.2.1").post("/login/", {"username": victim.email, "password": PASSWORD})
    assert r.status_code == 200 and b"for this account" in r.content


def test_current_password_cannot_be_guessed_without_limit():
    person = UserFactory(email="me@example.com")
    api = Api(user_token(person))
    for _ in range(LIMIT):
        r = api.put("/v1/user", {"password": "A-brand-new-passphrase-9", "current_password": "guess"})
        assert r.status_code == 400 and r.json()["error_description"] == "current_password is missing or incorrect"
    r = api.put("/v1/user", {"password": "A-brand-new-passphrase-9", "current_password": PASSWORD})
    assert r.status_code == 429, r.content
    person.refresh_from_db()
    assert person.check_password(PASSWORD)
