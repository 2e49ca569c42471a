"""Sign-up (Cyan issue 11, item 10): POST /v1/users (api-js `createUser`) and the console's /signup/ page,
open by default and closed by SIGNUP_OPEN=false; a new person has a sandbox at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.models import Account, AuditEntry, User
from tests.factories import UserFactory
from tests.support.api import Api
from tests.support.browser import browser_tab, screenshot
from tests.support.clients import apijs, failed, ok

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))
STRONG = "tidal-lantern-orbit-42"


def signup_body(**over) -> dict:
    body = {"username": "Grace@Example.com ", "password": STRONG,
            "account_info": {"first_name": "Grace", "last_name": "Hopper", "company_name": "Navy",
                             "business_account": True},
            "utm": {"utm_source": "docs"}}
    body.update(over)
    return body


# --- POST /v1/users ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signup_makes_a_person_with_a_sandbox_and_a_usable_password(api):
    r = api.post("/v1/users", signup_body())
    assert r.status_code == 200, r.content
    assert r.json() == {"ok": True}
    user = User.objects.get(email="grace@example.com")
    assert (user.first_name, user.last_name, user.company_name, user.business_account) == \
        ("Grace", "Hopper", "Navy", True)
    assert user.kind == User.Kind.HUMAN and user.check_password(STRONG)
    sandbox = Account.objects.get(owner=user, kind=Account.Kind.SANDBOX)
    assert sandbox.name == "Grace Hopper"
    assert AuditEntry.objects.filter(action="user.signup", target="grace@example.com", account=sandbox).count() == 1
    login = Api().call("POST", "/oauth/token", {"grant_type": "password", "username": "grace@example.com",
                                                "password": STRONG, "client_id": "particle",
                                                "client_secret": "particle"}, form=True)
    assert login.status_code == 200 and login.json()["token_type"] == "bearer"


@pytest.mark.django_db
def test_signup_takes_a_bracket_form_body_too(api):
    r = api.call("POST", "/v1/users", {"username": "form@example.com", "password": STRONG,
                                       "account_info[first_name]": "Form"}, form=True)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert User.objects.get(email="form@example.com").first_name == "Form"


@pytest.mark.django_db
def test_signup_ignores_a_stray_bearer_token():
    r = Api("0" * 40).post("/v1/users", signup_body(username="stray@example.com"))
    assert r.status_code == 200 and r.json() == {"ok": True}


@pytest.mark.django_db
@pytest.mark.parametrize("over, field_message", [
    ({"username": "not-an-email"}, "username must be a valid email address"),
    ({"username": ""}, "username is required"),
    ({"username": ["a@example.com"]}, "username must be a string"),
    ({"password": ""}, "password is required"),
    ({"password": 12345678}, "password must be a string"),
    ({"password": "short"}, "This password is too short. It must contain at least 8 characters."),
    ({"password": "password123"}, "This password is too common."),
    ({"password": "98765432109"}, "This password is entirely numeric."),
    ({"username": "tidal.lantern@example.com", "password": "tidal.lantern"},
     "The password is too similar to the email (username)."),
    ({"account_info": "Grace"}, "account_info must be an object"),
    ({"account_info": {"business_account": "maybe"}}, "account_info.business_account must be true or false"),
    ({"account_info": {"first_name": "x" * 151}}, "account_info.first_name must be at most 150 characters"),
])
def test_bad_signups_are_400s_naming_the_problem(api, over, field_message):
    r = api.post("/v1/users", signup_body(**over))
    assert r.status_code == 400, r.content
    assert r.json()["error_description"] == field_message
    assert r.json()["error"] == "invalid_request"
    assert not User.objects.filter(kind=User.Kind.HUMAN).exists()


@pytest.mark.django_db
def test_an_existing_email_is_refused_whatever_its_case(api):
    UserFactory(email="taken@example.com")
    r = api.post("/v1/users", signup_body(username="TAKEN@example.com"))
    assert r.status_code == 400
    assert r.json() == {"error": "conflict", "error_description": "A user with that email already exists",
                        "field": "username"}
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


@pytest.mark.django_db
def test_closed_signup_is_a_403(api, settings):
    settings.SIGNUP_OPEN = False
    r = api.post("/v1/users", signup_body())
    assert r.status_code == 403
    assert r.json() == {"error": "signup_closed", "error_description":
                        "Sign-up is by invitation only on this server; ask a team administrator to invite you"}
    assert not User.objects.exists()


# --- the console page --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_console_signup_signs_the_new_person_in(client):
    page = client.get("/signup/")
    assert page.status_code == 200 and b"Create account" in page.content
    r = client.post("/signup/", {"email": "ada@example.com", "password": STRONG, "first_name": "Ada"})
    assert r.status_code == 302 and r["Location"] == "/"
    user = User.objects.get(email="ada@example.com")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert Account.objects.filter(owner=user, kind=Account.Kind.SANDBOX).count() == 1


@pytest.mark.django_db
def test_console_signup_shows_the_services_refusals_on_their_fields(client):
    UserFactory(email="taken@example.com")
    r = client.post("/signup/", {"email": "taken@example.com", "password": STRONG})
    assert r.status_code == 400
    assert r.context["form"].errors == {"email": ["A user with that email already exists"]}
    r = client.post("/signup/", {"email": "new@example.com", "password": "password"})
    assert r.status_code == 400
    assert r.context["form"].errors == {"password": ["This password is too common."]}
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_closed_console_signup_says_invitation_only_and_makes_nobody(client, settings):
    settings.SIGNUP_OPEN = False
    page = client.get("/signup/")
    assert page.status_code == 200
    assert b"Sign-up is by invitation only on this server" in page.content and b"Create account" not in page.content
    r = client.post("/signup/", {"email": "ada@example.com", "password": STRONG})
    assert r.status_code == 403 and not User.objects.exists()


@pytest.mark.django_db
def test_the_login_page_links_to_signup(client):
    assert b'href="/signup/"' in client.get("/login/").content


# --- the official client, and a browser ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_apijs_create_user_then_login(base_url):
    body = ok(apijs(base_url, "createUser", {"username": "lin@example.com", "password": STRONG,
                                             "accountInfo": {"first_name": "Lin", "business_account": False}}))
    assert body == {"ok": True}
    assert User.objects.get(email="lin@example.com").first_name == "Lin"
    token = ok(apijs(base_url, "login", {"username": "lin@example.com", "password": STRONG}))["access_token"]
    assert ok(apijs(base_url, "getUserInfo", {}, auth=token))["username"] == "lin@example.com"
    again = failed(apijs(base_url, "createUser", {"username": "lin@example.com", "password": STRONG}), 400)
    assert again["error_description"] == "A user with that email already exists"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_signup_in_a_browser_lands_in_the_new_sandbox(live_server):
    from playwright.sync_api import expect

    base = live_server.url
    with browser_tab(SHOTS) as page:
        page.goto(f"{base}/login/")
        page.get_by_role("link", name="Create an account").click()
        page.wait_for_url(f"{base}/signup/")
        page.get_by_label("Email").fill("kay@example.com")
        page.get_by_label("Password").fill("kay")
        page.get_by_role("button", name="Create account").click()
        expect(page.locator(".field-error")).to_contain_text("This password is too short")
        page.get_by_label("Password").fill(STRONG)
        page.get_by_label("First name").fill("Kay")
        screenshot(page, SHOTS, "signup")
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{base}/products/")
        expect(page.locator(".flash-success")).to_contain_text("Welcome to Cyan")
        expect(page.get_by_role("heading", name="No products yet")).to_be_visible()
    user = User.objects.get(email="kay@example.com")
    assert user.first_name == "Kay" and Account.objects.filter(owner=user, kind=Account.Kind.SANDBOX).exists()
