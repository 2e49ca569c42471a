"""The account (Cyan issue 11, item 14): the console's /account/ page (profile, email, password, delete) and
DELETE /v1/user, one service behind both doors. An email change keeps everything hanging off the user row; a
deletion is refused while the person owns an organization or a sandbox product with devices."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.models import AccessToken, Account, AuditEntry, OAuthClient, OrgMembership, User
from console.scoping import Principal
from console.services import clients as client_services
from console.services import users as user_services
from devices.models import Device, SimCard
from devices.services.claims import device_claim
from products.models import Product, ProductMembership
from tests.factories import PASSWORD, UserFactory, make_org, make_product, seat
from tests.support.api import Api, user_token
from tests.support.browser import browser_tab, screenshot, sign_in
from tests.support.clients import apijs, failed, ok
from tests.support.console import signed_in
from tests.support.fleet import import_devices, manufacture
from tests.support.presence import connect

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))
NEW = "quiet-harbour-meadow-7"
DELETED = {"ok": True, "message": "User's account has been deleted."}


def sign_in_status(email: str, password: str) -> int:
    return Api().call("POST", "/oauth/token", {"grant_type": "password", "username": email, "password": password,
                                               "client_id": "particle", "client_secret": "particle"},
                      form=True).status_code


def person_with_things(email="ada@example.com"):
    """A person with a claimed sandbox device (a cellular one, with its SIM), an empty sandbox product, a token,
    an OAuth client, and seats on someone else's org and product."""
    user = UserFactory(email=email)
    made = manufacture(13, 1)[0]  # Boron: cellular, with a SIM
    connect(made.device_id)  # claiming by id needs the device online
    device_claim(principal=Principal.for_user(user), device_id=made.device_id)
    Device.objects.filter(pk=made.device_id).update(name="kitchen", notes="by the window")
    SimCard.objects.filter(device_id=made.device_id).update(user=user, status=SimCard.Status.ACTIVE)
    product = make_product(user_services.sandbox_of(user), name="Ada Empty Product")
    token = user_token(user)
    client, _ = client_services.client_create(principal=Principal.for_user(user), name="mine", type="installed",
                                              owner=user)
    boss = UserFactory(email=f"boss.of.{email}")
    org = make_org(boss, f"Boss Org {email}")
    seat(org, user, "developer")
    seat(make_product(org, name=f"Boss Product {email}"), user, "support")
    return user, made.device_id, product, token, client


# --- DELETE /v1/user -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deleting_an_account_releases_and_removes_what_it_held(api):
    user, device_id, product, token, client = person_with_things()
    r = Api(token).delete("/v1/user", {"password": PASSWORD})
    assert r.status_code == 200 and r.json() == DELETED
    assert not User.objects.filter(email="ada@example.com").exists()
    device = Device.objects.get(pk=device_id)
    assert (device.owner_id, device.name, device.notes) == (None, "", "")
    sim = SimCard.objects.get(device_id=device_id)
    assert (sim.user_id, sim.status, sim.deactivations_count) == (None, SimCard.Status.INACTIVE, 1)
    assert not Product.objects.filter(pk=product.pk).exists()
    assert not Account.objects.filter(kind=Account.Kind.SANDBOX, owner_id=user.pk).exists()
    assert not OrgMembership.objects.filter(user_id=user.pk).exists()
    assert not ProductMembership.objects.filter(user_id=user.pk).exists()
    assert not OAuthClient.objects.filter(pk=client.pk).exists()
    assert not AccessToken.objects.filter(user_id=user.pk).exists()
    assert Api(token).get("/v1/user").status_code == 401
    entry = AuditEntry.objects.get(action="user.delete")
    assert (entry.actor_id, entry.actor_label, entry.target) == (None, "ada@example.com", "ada@example.com")
    # The released device can be claimed by the next person.
    other = UserFactory(email="next@example.com")
    connect(device_id)  # claiming by id needs the device online
    outcome = device_claim(principal=Principal.for_user(other), device_id=device_id)
    assert outcome.transfer is None and Device.objects.get(pk=device_id).owner_id == other.pk


@pytest.mark.django_db
def test_a_wrong_password_refuses_and_counts_as_a_failed_sign_in(settings):
    user = UserFactory(email="ada@example.com")
    api = Api(user_token(user))
    r = api.delete("/v1/user", {"password": "wrong-password"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "error_description": "password is missing or incorrect",
                        "field": "password"}
    assert api.delete("/v1/user").json()["error_description"] == "password is missing or incorrect"
    settings.CYAN_ACCOUNT_FAILURE_LIMIT = 3
    api.delete("/v1/user", {"password": "wrong-again"})
    locked = api.delete("/v1/user", {"password": PASSWORD})
    assert locked.status_code == 429
    assert User.objects.filter(pk=user.pk).exists()


@pytest.mark.django_db
def test_an_owner_of_a_sandbox_product_with_devices_is_refused_naming_it():
    user = UserFactory(email="ada@example.com")
    product = make_product(user_services.sandbox_of(user), name="Greenhouse")
    import_devices(product, 2)
    api = Api(user_token(user))
    r = api.delete("/v1/user", {"password": PASSWORD})
    assert r.status_code == 400
    assert r.json() == {"error": "owns_devices", "error_description":
                        "Your product Greenhouse has 2 devices: remove them or delete the product before deleting "
                        "your account"}
    assert User.objects.filter(pk=user.pk).exists() and Product.objects.filter(pk=product.pk).exists()
    assert not AuditEntry.objects.filter(action="user.delete").exists()


@pytest.mark.django_db
def test_an_organization_owner_is_refused_naming_it():
    user = UserFactory(email="ada@example.com")
    make_org(user, "Ada Labs")
    r = Api(user_token(user)).delete("/v1/user", {"password": PASSWORD})
    assert r.status_code == 400
    assert r.json() == {"error": "owns_organization", "error_description":
                        "You own the organization Ada Labs: delete it, or ask support to transfer it to someone "
                        "else, before deleting your account"}
    assert User.objects.filter(pk=user.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["api_with", "product_token"])
def test_other_token_kinds_may_not_delete_a_user(cast, who):
    r = cast.api(who).delete("/v1/user", {"password": PASSWORD})
    assert r.status_code == 400 and r.json()["error"] == "unauthorized"
    assert User.objects.filter(email="owner@example.com").exists()


@pytest.mark.django_db(transaction=True)
def test_apijs_delete_user(base_url):
    UserFactory(email="lin@example.com")
    token = ok(apijs(base_url, "login", {"username": "lin@example.com", "password": PASSWORD}))["access_token"]
    wrong = failed(apijs(base_url, "deleteUser", {"password": "nope-nope-nope"}, auth=token), 400)
    assert wrong["error_description"] == "password is missing or incorrect"
    assert ok(apijs(base_url, "deleteUser", {"password": PASSWORD}, auth=token)) == DELETED
    assert not User.objects.filter(email="lin@example.com").exists()


# --- the console page ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_user_menu_links_to_the_account_page():
    user = UserFactory(email="ada@example.com")
    console = signed_in(user)
    assert b'href="/account/"' in console.get("/products/").content
    page = console.get("/account/")
    assert page.status_code == 200 and b"Account settings" in page.content
    assert Api().client.get("/account/").status_code == 302


@pytest.mark.django_db
def test_profile_changes():
    user = UserFactory(email="ada@example.com")
    console = signed_in(user)
    r = console.post("/account/", {"intent": "profile", "first_name": "Ada", "last_name": "Lovelace",
                                   "company_name": "Engines"})
    assert r.status_code == 302 and r["Location"] == "/account/"
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.company_name) == ("Ada", "Lovelace", "Engines")


@pytest.mark.django_db
def test_an_email_change_keeps_devices_products_tokens_and_seats():
    user, device_id, product, token, client = person_with_things()
    console = signed_in(user)
    r = console.post("/account/", {"intent": "email", "email": "ada@new.example", "current_password": "wrong"})
    assert r.status_code == 400
    assert r.context["forms"]["email"].errors == {"current_password": ["current_password is missing or incorrect"]}
    UserFactory(email="taken@example.com")
    r = console.post("/account/", {"intent": "email", "email": "taken@example.com", "current_password": PASSWORD})
    assert r.status_code == 400
    assert r.context["forms"]["email"].errors == {"email": ["A user with that email already exists"]}

    r = console.post("/account/", {"intent": "email", "email": "Ada@New.Example", "current_password": PASSWORD})
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.email == "ada@new.example"
    assert Device.objects.get(pk=device_id).owner_id == user.pk
    assert product.account.owner_id == user.pk and Product.objects.filter(pk=product.pk).exists()
    assert OAuthClient.objects.get(pk=client.pk).owner_id == user.pk
    assert Api(token).get("/v1/user").json()["username"] == "ada@new.example"
    assert [d["id"] for d in Api(token).get("/v1/devices").json()] == [device_id]
    assert OrgMembership.objects.filter(user=user).count() == ProductMembership.objects.filter(user=user).count() == 1
    assert sign_in_status("ada@new.example", PASSWORD) == 200
    assert sign_in_status("ada@example.com", PASSWORD) == 400


@pytest.mark.django_db
def test_a_password_change_keeps_this_session_and_ends_the_others():
    user = UserFactory(email="ada@example.com")
    token = user_token(user)
    here, elsewhere = signed_in(user), signed_in(user)
    r = here.post("/account/", {"intent": "password", "current_password": "wrong", "password": NEW})
    assert r.status_code == 400
    assert r.context["forms"]["password"].errors == {"current_password": ["current_password is missing or incorrect"]}
    r = here.post("/account/", {"intent": "password", "current_password": PASSWORD, "password": "ada@example.com"})
    assert r.context["forms"]["password"].errors == {"password": ["The password is too similar to the email (username)."]}
    r = here.post("/account/", {"intent": "password", "current_password": PASSWORD, "password": NEW})
    assert r.status_code == 302
    assert here.get("/account/").status_code == 200
    assert elsewhere.get("/account/").status_code == 302
    assert Api(token).get("/v1/user").status_code == 200  # tokens stay unless asked
    r = here.post("/account/", {"intent": "password", "current_password": NEW, "password": PASSWORD,
                                "invalidate_tokens": "on"})
    assert r.status_code == 302 and Api(token).get("/v1/user").status_code == 401
    assert here.get("/account/").status_code == 200


@pytest.mark.django_db
def test_console_delete_refuses_with_the_reason_then_deletes_and_signs_out():
    user = UserFactory(email="ada@example.com")
    product = make_product(user_services.sandbox_of(user), name="Greenhouse")
    import_devices(product, 1)
    console = signed_in(user)
    r = console.post("/account/", {"intent": "delete", "password": PASSWORD})
    assert r.status_code == 400
    assert r.context["forms"]["delete"].errors == {"__all__": [
        "Your product Greenhouse has 1 device: remove them or delete the product before deleting your account"]}
    assert r.context["open_dialog"] == "delete-dialog"
    Device.objects.filter(product=product).update(product=None)
    Product.objects.filter(pk=product.pk).update(device_count=0)
    r = console.post("/account/", {"intent": "delete", "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/login/"
    assert not User.objects.filter(email="ada@example.com").exists()
    assert console.get("/account/").status_code == 302


@pytest.mark.django_db
def test_an_unknown_intent_is_a_400():
    console = signed_in(UserFactory(email="ada@example.com"))
    assert console.post("/account/", {"intent": "explode"}).status_code == 400


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_change_email_then_delete_the_account_in_a_browser(live_server):
    from playwright.sync_api import expect

    base = live_server.url
    user = UserFactory(email="kay@example.com")
    made = manufacture(12, 1)[0]
    connect(made.device_id)  # claiming by id needs the device online
    device_claim(principal=Principal.for_user(user), device_id=made.device_id)
    with browser_tab(SHOTS) as page:
        sign_in(page, base, "kay@example.com")
        page.locator("summary.user-button").click()
        page.get_by_role("link", name="Account settings").click()
        page.wait_for_url(f"{base}/account/")
        email_form = page.locator("form", has=page.locator('input[name="intent"][value="email"]'))
        email_form.get_by_label("New email").fill("kay@new.example")
        email_form.get_by_label("Current password").fill(PASSWORD)
        screenshot(page, SHOTS, "account")
        email_form.get_by_role("button", name="Change email").click()
        expect(page.locator(".flash-success")).to_contain_text("You now sign in as kay@new.example.")
        assert Device.objects.get(pk=made.device_id).owner.email == "kay@new.example"

        page.wait_for_load_state("load")  # console.js (deferred) opens the dialog: wait until it runs
        page.get_by_role("button", name="Delete account…").click()
        dialog = page.locator("#delete-dialog")
        dialog.get_by_label("Your password").fill("wrong-password")
        dialog.get_by_role("button", name="Delete my account").click()
        expect(page.locator("#delete-dialog")).to_be_visible()
        expect(page.locator("#delete-dialog .field-error")).to_contain_text("password is missing or incorrect")
        page.locator("#delete-dialog").get_by_label("Your password").fill(PASSWORD)
        page.locator("#delete-dialog").get_by_role("button", name="Delete my account").click()
        page.wait_for_url(f"{base}/login/")
        expect(page.locator(".flash-success")).to_contain_text("Your account was deleted.")
    assert not User.objects.filter(email__in=["kay@example.com", "kay@new.example"]).exists()
    assert Device.objects.get(pk=made.device_id).owner_id is None


# --- the admin's delete: the same service, less the password ------------------------------------------------


def _staff_client():
    staff = UserFactory(email="support@cyan.test")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    return signed_in(staff), staff


@pytest.mark.django_db
def test_support_deleting_a_person_in_the_admin_releases_what_they_held():
    user, device_id, product, token, client = person_with_things()
    admin, staff = _staff_client()
    confirm = admin.get(f"/admin/console/user/{user.pk}/delete/")
    assert confirm.status_code == 200 and "Yes, I’m sure" in confirm.content.decode()
    assert User.objects.filter(pk=user.pk).exists() and not AuditEntry.objects.filter(action="user.delete").exists()
    r = admin.post(f"/admin/console/user/{user.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302 and r["Location"] == "/admin/console/user/"
    assert not User.objects.filter(pk=user.pk).exists()
    assert Device.objects.get(pk=device_id).owner_id is None
    assert SimCard.objects.get(device_id=device_id).user_id is None
    assert not Product.objects.filter(pk=product.pk).exists()
    assert not AccessToken.objects.filter(user_id=user.pk).exists()
    assert not OAuthClient.objects.filter(pk=client.pk).exists()
    entry = AuditEntry.objects.get(action="user.delete")
    assert (entry.actor_id, entry.target) == (staff.pk, "ada@example.com")


@pytest.mark.django_db
def test_the_admin_refuses_to_delete_an_organization_owner_and_says_why():
    owner = UserFactory(email="ada@example.com")
    make_org(owner, "Ada Labs")
    admin, _ = _staff_client()
    for r in (admin.get(f"/admin/console/user/{owner.pk}/delete/"),
              admin.post(f"/admin/console/user/{owner.pk}/delete/", {"post": "yes"})):
        assert r.status_code == 200
        html = r.content.decode()
        assert "Cannot delete user" in html and "Yes, I’m sure" not in html
        assert "ada@example.com: This person owns the organization Ada Labs: delete it, or transfer it" in html
    assert User.objects.filter(pk=owner.pk).exists()
    assert not AuditEntry.objects.filter(action="user.delete").exists()


@pytest.mark.django_db
def test_the_admin_bulk_delete_refuses_all_when_one_is_refused_and_deletes_the_rest_alone():
    free = UserFactory(email="free@example.com")
    owner = UserFactory(email="ada@example.com")
    product = make_product(user_services.sandbox_of(owner), name="Greenhouse")
    import_devices(product, 1)
    admin, _ = _staff_client()
    r = admin.post("/admin/console/user/", {"action": "delete_selected", "_selected_action": [free.pk, owner.pk],
                                            "post": "yes"}, follow=True)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Cannot delete users" in html and "ada@example.com: Your product Greenhouse has 1 device" in html
    assert "free@example.com:" not in html
    assert User.objects.filter(pk__in=[free.pk, owner.pk]).count() == 2
    r = admin.post("/admin/console/user/", {"action": "delete_selected", "_selected_action": [free.pk], "post": "yes"})
    assert r.status_code == 302
    assert list(User.objects.filter(pk__in=[free.pk, owner.pk]).values_list("email", flat=True)) == ["ada@example.com"]
