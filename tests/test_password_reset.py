"""Password reset (Cyan issue 11, item 11): POST /v1/user/password-reset mails a one-time link through the
Celery worker to a real SMTP server on 127.0.0.1; PUT /v1/user/password-reset (or the console page the link
opens) sets the new password, revokes the access tokens, ends the console sessions and clears the lockout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.models import AuditEntry, User
from console.services import login as login_services
from console.services.login import user_account
from console.services.password_reset import password_reset_token
from tests.factories import PASSWORD, UserFactory
from tests.support.api import Api, user_token
from tests.support.browser import browser_tab, screenshot
from tests.support.clients import apijs, ok
from tests.support.console import signed_in
from tests.support.mail import body_text, only_link, smtp_receiver
from tests.support.worker import running_celery_worker

SHOTS = Path(os.environ.get("CYAN_SHOTS_DIR", "/tmp/cyan-shots"))
NEW = "quiet-harbour-meadow-7"
SENT = {"ok": True, "message": "Password reset email sent."}
BAD_TOKEN = {"error": "invalid_reset_token", "field": "token",
             "error_description": "The password reset link is invalid, expired or already used; ask for a new one"}


@pytest.fixture
def mailroom(transactional_db, settings):
    """A real SMTP receiver and a real Celery worker delivering to it; links point at PUBLIC_URL."""
    settings.PUBLIC_URL = "http://cyan.test"
    with smtp_receiver(settings) as inbox, running_celery_worker():
        yield inbox


def token_of(link: str) -> str:
    prefix = "http://cyan.test/password-reset/"
    assert link.startswith(prefix) and link.endswith("/"), link
    return link[len(prefix):-1]


def sign_in_status(email: str, password: str) -> int:
    return Api().call("POST", "/oauth/token", {"grant_type": "password", "username": email, "password": password,
                                               "client_id": "particle", "client_secret": "particle"},
                      form=True).status_code


@pytest.mark.django_db(transaction=True)
def test_the_mailed_link_resets_the_password_once(mailroom, api):
    ada = UserFactory(email="ada@example.com")
    old_token = user_token(ada)
    r = api.post("/v1/user/password-reset", {"username": " ADA@example.com"})
    assert r.status_code == 200 and r.json() == SENT
    message = mailroom.wait_for("ada@example.com")
    assert message["Subject"] == "Reset your Cyan password"
    assert message["To"] == "ada@example.com"
    assert "works once, for 24 hours" in body_text(message)
    token = token_of(only_link(message))

    r = api.put("/v1/user/password-reset", {"token": token, "password": NEW})
    assert r.status_code == 200 and r.json() == {"ok": True, "message": "User's password updated."}
    assert sign_in_status("ada@example.com", PASSWORD) == 400
    assert sign_in_status("ada@example.com", NEW) == 200
    assert Api(old_token).get("/v1/user").status_code == 401
    assert AuditEntry.objects.filter(action="user.password_reset", target="ada@example.com").count() == 1

    again = api.put("/v1/user/password-reset", {"token": token, "password": "another-long-phrase-9"})
    assert again.status_code == 400 and again.json() == BAD_TOKEN
    assert sign_in_status("ada@example.com", NEW) == 200


@pytest.mark.django_db(transaction=True)
def test_the_answer_is_the_same_for_every_email_and_only_real_people_get_mail(mailroom, api):
    UserFactory(email="inactive@example.com")
    User.objects.filter(email="inactive@example.com").update(is_active=False)
    nopass = UserFactory(email="nopass@example.com")
    nopass.set_unusable_password()
    nopass.save()
    UserFactory(email="real@example.com")
    for email in ("nobody@example.com", "inactive@example.com", "nopass@example.com", "real@example.com"):
        r = api.post("/v1/user/password-reset", {"username": email})
        assert r.status_code == 200 and r.json() == SENT, email
    mailroom.wait_for("real@example.com")  # the worker runs tasks in order: the others would have come first
    assert [m["X-Envelope-To"] for m in mailroom.messages] == ["real@example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize("data, description", [
    ({}, "username is required"),
    ({"username": ["a@example.com"]}, "username must be a string"),
])
def test_a_reset_request_without_an_email_is_a_400(api, data, description):
    r = api.post("/v1/user/password-reset", data)
    assert r.status_code == 400 and r.json()["error_description"] == description


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["", "garbage", "Zm9v.abc-def", "MQ.bad-token", "x" * 300, None, 12])
def test_malformed_or_forged_tokens_are_refused(api, token):
    UserFactory(email="ada@example.com")
    r = api.put("/v1/user/password-reset", {"token": token, "password": NEW})
    assert r.status_code == 400 and r.json() == BAD_TOKEN


@pytest.mark.django_db
def test_an_expired_token_is_refused(api, settings):
    ada = UserFactory(email="ada@example.com")
    token = password_reset_token(ada)
    settings.PASSWORD_RESET_TIMEOUT = -1  # any age is past it: the token made a moment ago has expired
    r = api.put("/v1/user/password-reset", {"token": token, "password": NEW})
    assert r.status_code == 400 and r.json() == BAD_TOKEN


@pytest.mark.django_db
def test_a_weak_new_password_is_refused_and_the_token_still_works(api):
    ada = UserFactory(email="ada@example.com")
    token = password_reset_token(ada)
    r = api.put("/v1/user/password-reset", {"token": token, "password": "ada@example.com"})
    assert r.status_code == 400
    assert r.json()["error_description"] == "The password is too similar to the email (username)."
    r = api.put("/v1/user/password-reset", {"token": token})
    assert r.status_code == 400 and r.json()["error_description"] == "password is required"
    assert api.put("/v1/user/password-reset", {"token": token, "password": NEW}).status_code == 200


@pytest.mark.django_db
def test_a_reset_ends_console_sessions_and_clears_the_account_lockout(api, settings):
    ada = UserFactory(email="ada@example.com")
    console = signed_in(ada)
    assert console.get("/products/").status_code == 200
    for n in range(settings.CYAN_ACCOUNT_FAILURE_LIMIT):
        login_services.login_failed(account=user_account(ada.email), ip=f"203.0.113.{n}")
    assert sign_in_status("ada@example.com", PASSWORD) == 429
    r = api.put("/v1/user/password-reset", {"token": password_reset_token(ada), "password": NEW})
    assert r.status_code == 200
    assert sign_in_status("ada@example.com", NEW) == 200
    after = console.get("/products/")
    assert after.status_code == 302 and after["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_console_pages(client):
    ada = UserFactory(email="ada@example.com")
    assert b'href="/password-reset/"' in client.get("/login/").content
    r = client.post("/password-reset/", {"email": "nobody@example.com"})
    assert r.status_code == 200 and b"If nobody@example.com has a Cyan account" in r.content
    r = client.post("/password-reset/", {"email": "not an email"})
    assert r.status_code == 400 and r.context["form"].errors == {"email": ["Enter a valid email address."]}
    token = password_reset_token(ada)
    page = client.get(f"/password-reset/{token}/")
    assert page.status_code == 200 and b"For ada@example.com." in page.content
    r = client.post(f"/password-reset/{token}/", {"password": "password"})
    assert r.status_code == 400 and r.context["form"].errors == {"password": ["This password is too common."]}
    r = client.post(f"/password-reset/{token}/", {"password": NEW})
    assert r.status_code == 302 and r["Location"] == "/login/"
    used = client.get(f"/password-reset/{token}/")
    assert used.status_code == 400 and b"This link does not work" in used.content


@pytest.mark.django_db
def test_a_request_queues_the_mail_task_after_commit(django_capture_on_commit_callbacks, api):
    UserFactory(email="ada@example.com")
    with django_capture_on_commit_callbacks() as callbacks:
        api.post("/v1/user/password-reset", {"username": "ada@example.com"})
    assert len(callbacks) == 1
    assert AuditEntry.objects.filter(action="user.password_reset.request", target="ada@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_apijs_reset_password(base_url, mailroom):
    UserFactory(email="lin@example.com")
    assert ok(apijs(base_url, "resetPassword", {"username": "lin@example.com"})) == SENT
    assert ok(apijs(base_url, "resetPassword", {"username": "ghost@example.com"})) == SENT
    token = token_of(only_link(mailroom.wait_for("lin@example.com")))
    assert mailroom.to("ghost@example.com") == []
    assert Api().put("/v1/user/password-reset", {"token": token, "password": NEW}).status_code == 200
    assert ok(apijs(base_url, "login", {"username": "lin@example.com", "password": NEW}))["token_type"] == "bearer"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_forgot_password_in_a_browser(live_server, settings):
    from playwright.sync_api import expect

    base = live_server.url
    UserFactory(email="kay@example.com")
    with smtp_receiver(settings) as inbox, running_celery_worker(), browser_tab(SHOTS) as page:
        settings.PUBLIC_URL = base
        page.goto(f"{base}/login/")
        page.get_by_role("link", name="Forgot password?").click()
        page.wait_for_url(f"{base}/password-reset/")
        page.get_by_label("Email").fill("kay@example.com")
        page.get_by_role("button", name="Send reset link").click()
        expect(page.get_by_role("status")).to_contain_text("If kay@example.com has a Cyan account")
        link = only_link(inbox.wait_for("kay@example.com"))
        assert link.startswith(f"{base}/password-reset/")
        page.goto(link)
        page.get_by_label("New password").fill("kay")
        page.get_by_role("button", name="Set new password").click()
        expect(page.locator(".field-error")).to_contain_text("This password is too short")
        page.get_by_label("New password").fill(NEW)
        screenshot(page, SHOTS, "password-reset-new")
        page.get_by_role("button", name="Set new password").click()
        page.wait_for_url(f"{base}/login/")
        expect(page.locator(".flash-success")).to_contain_text("Your password was changed")
        page.get_by_label("Email").fill("kay@example.com")
        page.get_by_label("Password").fill(NEW)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/products/")
    assert User.objects.get(email="kay@example.com").check_password(NEW)
