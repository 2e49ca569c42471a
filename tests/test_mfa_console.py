"""MFA in the console and the admin site, through Django's test client: the code page after a right
password (the session stays signed out until the code is right; `next` survives), /account/mfa/ (QR code
inline, confirm, recovery codes shown once, regenerate, turn off) and the admin's sign-in asking staff for
the code."""

from __future__ import annotations

import re
import time
from html import unescape

import pyotp
import pytest
from django.test import Client

from console.models import MfaRecoveryCode, User, UserMfa
from tests.factories import PASSWORD, UserFactory
from tests.support.console import signed_in
from tests.support.mfa import enrol, steps, wrong_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(db):
    return UserFactory(email="ada@example.com")


def password_step(client: Client, email="ada@example.com", next_url: str | None = None):
    data = {"username": email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post("/login/", data)


def signed_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


# --- the second step of signing in ---------------------------------------------------------------------


def test_a_right_password_leads_to_the_code_page_and_signs_nobody_in(ada):
    secret, _ = enrol(ada)
    c = Client()
    r = password_step(c)
    assert (r.status_code, r["Location"]) == (302, "/login/code/")
    assert signed_in_as(c) is None
    assert c.get("/products/")["Location"].startswith("/login/")
    page = c.get("/login/code/")
    assert page.status_code == 200 and b"ada@example.com" in page.content and b"Authentication code" in page.content

    r = c.post("/login/code/", {"code": wrong_code(secret)})
    assert r.status_code == 400 and b"The one-time password is invalid" in r.content
    assert signed_in_as(c) is None

    r = c.post("/login/code/", {"code": steps(secret).current})
    assert (r.status_code, r["Location"]) == (302, "/")
    assert signed_in_as(c) == str(ada.pk)
    assert c.get("/products/").status_code == 200
    # The pending sign-in is gone: a second visit of the code page goes home.
    assert c.get("/login/code/")["Location"] == "/"


def test_next_survives_the_code_page_and_foreign_hosts_do_not(ada):
    secret, _ = enrol(ada)
    c = Client()
    password_step(c, next_url="/authentication/")
    r = c.post("/login/code/", {"code": steps(secret).current})
    assert (r.status_code, r["Location"]) == (302, "/authentication/")

    c = Client()
    password_step(c, next_url="https://evil.example.com/")
    r = c.post("/login/code/", {"code": steps(secret).next})
    assert (r.status_code, r["Location"]) == (302, "/")


def test_a_recovery_code_signs_in_once_in_the_console(ada):
    _, codes = enrol(ada)
    c = Client()
    password_step(c)
    assert c.post("/login/code/", {"code": codes[0]}).status_code == 302
    c = Client()
    password_step(c)
    r = c.post("/login/code/", {"code": codes[0]})
    assert r.status_code == 400 and signed_in_as(c) is None


def test_the_pending_sign_in_expires(ada, settings):
    secret, _ = enrol(ada)
    step = UserMfa.objects.get(user=ada).last_step
    settings.CYAN_MFA_TOKEN_SECONDS = 1
    c = Client()
    password_step(c)
    time.sleep(1.2)
    r = c.post("/login/code/", {"code": steps(secret).current})
    assert (r.status_code, r["Location"]) == (302, "/login/")
    assert signed_in_as(c) is None
    assert UserMfa.objects.get(user=ada).last_step == step  # the code was not even looked at
    assert c.get("/login/code/")["Location"] == "/login/"


def test_the_code_page_without_a_password_step_goes_back_to_sign_in(ada):
    enrol(ada)
    r = Client().post("/login/code/", {"code": "123456"})
    assert (r.status_code, r["Location"]) == (302, "/login/")


def test_guessed_codes_lock_the_code_page(ada, settings):
    settings.CYAN_MFA_FAILURE_LIMIT = 2
    secret, _ = enrol(ada)
    c = Client()
    password_step(c)
    for _ in range(2):
        assert c.post("/login/code/", {"code": wrong_code(secret)}).status_code == 400
    r = c.post("/login/code/", {"code": steps(secret).current})
    assert r.status_code == 400 and b"Too many failed sign-in attempts for this account" in r.content
    assert signed_in_as(c) is None


def test_people_without_mfa_sign_in_in_one_step(ada):
    c = Client()
    r = password_step(c)
    assert (r.status_code, r["Location"]) == (302, "/")
    assert signed_in_as(c) == str(ada.pk)


# --- /account/mfa/ -----------------------------------------------------------------------------------------


def secret_on(page) -> str:
    match = re.search(r"<code class=\"mono\" data-mfa-secret>([A-Z2-7]+)</code>", page.content.decode())
    assert match, page.content.decode()[:2000]
    return match.group(1)


def codes_on(page) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", page.content.decode())


def test_setting_up_mfa_in_the_console(ada):
    c = signed_in(ada)
    page = c.get("/account/mfa/")
    assert page.status_code == 200 and b"data-mfa-status>Off" in page.content
    assert b"/account/mfa/" in c.get("/products/").content  # linked from the user menu

    page = c.post("/account/mfa/", {"intent": "begin"})
    assert page.status_code == 200
    html = page.content.decode()
    qr = re.search(r'<img class="qr" src="([^"]+)"', html).group(1)
    assert unescape(qr).startswith("data:image/svg+xml")  # rendered here; the CSP allows data: images
    assert "data:" in page["Content-Security-Policy"].split("img-src")[1].split(";")[0]
    secret = secret_on(page)
    token = re.search(r'name="mfa_token" value="([0-9a-f]{40})"', html).group(1)

    page = c.post("/account/mfa/", {"intent": "confirm", "mfa_token": token, "code": wrong_code(secret)})
    assert page.status_code == 400 and b"The one-time password is invalid" in page.content
    assert secret_on(page) == secret  # the same setup is shown again
    assert not UserMfa.objects.get(user=ada).enabled

    page = c.post("/account/mfa/", {"intent": "confirm", "mfa_token": token, "code": steps(secret).current})
    assert page.status_code == 200, page.content.decode()[:1500]
    codes = codes_on(page)
    assert len(codes) == 10 and b"data-mfa-status>On" in page.content
    assert UserMfa.objects.get(user=ada).enabled
    # Shown once: the next visit has none.
    assert codes_on(c.get("/account/mfa/")) == []
    assert b"10 of 10" in c.get("/account/mfa/").content


def test_an_expired_or_foreign_setup_token_starts_over(ada):
    bob = UserFactory(email="bob@example.com")
    c = signed_in(ada)
    c.post("/account/mfa/", {"intent": "begin"})
    from console.services import mfa as mfa_services

    theirs = mfa_services.mfa_enrol_begin(user=bob)
    r = c.post("/account/mfa/", {"intent": "confirm", "mfa_token": theirs.mfa_token,
                                 "code": pyotp.TOTP(theirs.secret).now()})
    assert (r.status_code, r["Location"]) == (302, "/account/mfa/")
    assert not UserMfa.objects.filter(enabled_at__isnull=False).exists()


def test_regenerating_and_turning_off_need_the_current_password(ada):
    _, old = enrol(ada)
    c = signed_in(ada)
    r = c.post("/account/mfa/", {"intent": "regenerate", "regenerate-current_password": "wrong"})
    assert r.status_code == 400 and b"current_password is missing or incorrect" in r.content
    assert b'id="regenerate-dialog" aria-labelledby="regenerate-title" data-open-on-load' in r.content

    r = c.post("/account/mfa/", {"intent": "regenerate", "regenerate-current_password": PASSWORD})
    new = codes_on(r)
    assert r.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    assert MfaRecoveryCode.objects.filter(user=ada).count() == 10

    r = c.post("/account/mfa/", {"intent": "disable", "disable-current_password": "wrong"})
    assert r.status_code == 400 and UserMfa.objects.get(user=ada).enabled
    r = c.post("/account/mfa/", {"intent": "disable", "disable-current_password": PASSWORD})
    assert (r.status_code, r["Location"]) == (302, "/account/mfa/")
    assert not UserMfa.objects.filter(user=ada).exists()
    assert b"data-mfa-status>Off" in c.get("/account/mfa/").content


def test_the_mfa_page_needs_a_signed_in_person():
    r = Client().get("/account/mfa/")
    assert r.status_code == 302 and r["Location"].startswith("/login/?next=/account/mfa/")


# --- the admin site ----------------------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    user = UserFactory(email="staff@example.com")
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
    return User.objects.get(pk=user.pk)


def admin_login(client: Client, **extra):
    return client.post("/admin/login/", {"username": "staff@example.com", "password": PASSWORD, "next": "/admin/",
                                         **extra})


def test_the_admin_asks_staff_with_mfa_for_the_code(staff):
    secret, codes = enrol(staff)
    c = Client()
    r = admin_login(c)
    assert r.status_code == 200 and b"Enter the code from your authenticator app" in r.content
    assert b'name="otp"' in r.content
    assert signed_in_as(c) is None
    r = admin_login(c, otp=wrong_code(secret))
    assert r.status_code == 200 and b"The one-time password is invalid" in r.content and signed_in_as(c) is None
    r = admin_login(c, otp=steps(secret).current)
    assert (r.status_code, r["Location"]) == (302, "/admin/")
    assert signed_in_as(c) == str(staff.pk)
    # A recovery code works there too, once.
    c2 = Client()
    assert admin_login(c2, otp=codes[0]).status_code == 302
    assert admin_login(Client(), otp=codes[0]).status_code == 200


def test_the_admin_still_signs_in_staff_without_mfa_in_one_step(staff):
    c = Client()
    r = admin_login(c)
    assert (r.status_code, r["Location"]) == (302, "/admin/")
    assert signed_in_as(c) == str(staff.pk)


def test_support_staff_reset_mfa_in_the_admin_without_seeing_the_secret(staff, ada):
    from tests.support.audit import assert_audited

    secret, _ = enrol(ada)
    c = signed_in(staff)
    row = UserMfa.objects.get(user=ada)
    page = c.get(f"/admin/console/usermfa/{row.pk}/change/")
    assert page.status_code == 200 and secret.encode() not in page.content
    r = c.post(f"/admin/console/usermfa/{row.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not UserMfa.objects.filter(user=ada).exists() and not MfaRecoveryCode.objects.filter(user=ada).exists()
    assert_audited("mfa.reset", actor=staff, target="ada@example.com")
    assert password_step(Client())["Location"] == "/"
