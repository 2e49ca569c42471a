"""MFA (TOTP) on the API: enrolment, the 403 mfa_required / urn:custom:mfa-otp sign-in, recovery codes, HTTP
Basic with `otp`, turning it off, and the lockout on guessed codes (particle-api.md §2, §5)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest

from console.models import AccessToken, MfaRecoveryCode, UserMfa, hash_secret
from tests.factories import PASSWORD, UserFactory
from tests.support.api import Api, user_token
from tests.support.audit import assert_audited, audited_actions
from tests.support.mfa import enrol, steps, wrong_code

pytestmark = pytest.mark.django_db

MFA_REQUIRED = "Multiple factor authentication required"
BAD_OTP = {"error": "invalid_grant", "error_description": "The one-time password is invalid"}


def login(username="ada@example.com", password=PASSWORD, *, ip="127.0.0.1", **extra):
    form = {"grant_type": "password", "username": username, "password": password,
            "client_id": "particle-api", "client_secret": "particle-api", **extra}
    return Api().call("POST", "/oauth/token", form, form=True, REMOTE_ADDR=ip)


def send_otp(mfa_token, otp, *, ip="127.0.0.1", client_id="particle-api"):
    form = {"grant_type": "urn:custom:mfa-otp", "mfa_token": mfa_token, "otp": otp,
            "client_id": client_id, "client_secret": client_id}
    return Api().call("POST", "/oauth/token", form, form=True, REMOTE_ADDR=ip)


def mfa_token_of(r) -> str:
    assert r.status_code == 403, r.content
    body = r.json()
    token = body.pop("mfa_token")
    assert body == {"error": "mfa_required", "error_description": MFA_REQUIRED}
    assert len(token) == 40
    return token


@pytest.fixture
def ada(db):
    return UserFactory(email="ada@example.com")


# --- enrolment -----------------------------------------------------------------------------------------


def test_enrolment_through_the_api_returns_recovery_codes_once(ada):
    api = Api(user_token(ada))
    assert api.get("/v1/user").json()["mfa"] == {"enabled": False}

    r = api.get("/v1/user/mfa-enable")
    assert r.status_code == 200, r.content
    body = r.json()
    assert sorted(body) == ["mfa_token", "qr_url", "secret"]
    assert body["qr_url"].startswith("data:image/svg+xml")
    svg = unquote(body["qr_url"].split(",", 1)[1])
    assert svg.lstrip().startswith("<svg") or "<svg" in svg[:200]
    secret = body["secret"]
    assert len(pyotp.TOTP(secret).now()) == 6
    # Still off until a code confirms it.
    assert api.get("/v1/user").json()["mfa"] == {"enabled": False}
    assert login().status_code == 200

    r = api.post("/v1/user/mfa-enable", {"mfa_token": body["mfa_token"], "otp": steps(secret).current})
    assert r.status_code == 200, r.content
    confirmed = r.json()
    assert sorted(confirmed) == ["enrolled", "tokens"] and confirmed["enrolled"] is True
    codes = confirmed["tokens"]
    assert len(codes) == 10 == len(set(codes))
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes)
    # Stored hashed, one row per code.
    stored = set(MfaRecoveryCode.objects.filter(user=ada).values_list("code_hash", flat=True))
    assert stored == {hash_secret(c.replace("-", "")) for c in codes}
    assert api.get("/v1/user").json()["mfa"] == {"enabled": True}
    assert_audited("mfa.enabled", actor=ada, target="ada@example.com", data={"invalidate_tokens": False})

    # A second enrolment while enabled is refused; the secret stays.
    r = api.get("/v1/user/mfa-enable")
    assert (r.status_code, r.json()) == (400, {"error": "mfa_already_enabled",
                                               "error_description": "Multi-factor authentication is already enabled"})
    assert UserMfa.objects.get(user=ada).secret == secret


def test_the_otpauth_uri_names_the_issuer_and_the_person(ada):
    from console.services import mfa as mfa_services

    enrolment = mfa_services.mfa_enrol_begin(user=ada)
    uri = urlparse(enrolment.otpauth_uri)
    assert (uri.scheme, uri.netloc, unquote(uri.path)) == ("otpauth", "totp", "/Cyan:ada@example.com")
    assert parse_qs(uri.query) == {"secret": [enrolment.secret], "issuer": ["Cyan"]}


def test_a_wrong_enrolment_code_is_a_400_and_leaves_mfa_off(ada):
    api = Api(user_token(ada))
    body = api.get("/v1/user/mfa-enable").json()
    r = api.post("/v1/user/mfa-enable", {"mfa_token": body["mfa_token"], "otp": wrong_code(body["secret"])})
    assert (r.status_code, r.json()) == (400, {"error": "invalid_request", "field": "otp",
                                               "error_description": "The one-time password is invalid"})
    assert not UserMfa.objects.get(user=ada).enabled
    assert MfaRecoveryCode.objects.count() == 0
    assert login().status_code == 200


@pytest.mark.parametrize("data,expected", [
    ({"otp": "123456"}, {"error": "invalid_request", "error_description": "mfa_token is required",
                         "field": "mfa_token"}),
    ({"mfa_token": "x"}, {"error": "invalid_request", "error_description": "otp is required", "field": "otp"}),
    ({"mfa_token": ["x"], "otp": "123456"}, {"error": "invalid_request",
                                             "error_description": "mfa_token must be a string", "field": "mfa_token"}),
    ({"mfa_token": "not-the-token", "otp": "123456"}, {
        "error": "invalid_request", "field": "mfa_token",
        "error_description": "The mfa_token is invalid or has expired; start again with GET /v1/user/mfa-enable"}),
    ({"mfa_token": "x", "otp": "123456", "invalidate_tokens": "maybe"}, {
        "error": "invalid_request", "field": "invalidate_tokens",
        "error_description": "invalidate_tokens must be true or false"}),
])
def test_enrolment_confirm_bad_input(ada, data, expected):
    api = Api(user_token(ada))
    api.get("/v1/user/mfa-enable")
    r = api.post("/v1/user/mfa-enable", data)
    assert (r.status_code, r.json()) == (400, expected)
    assert not UserMfa.objects.get(user=ada).enabled


def test_another_persons_enrolment_token_does_not_confirm_mine(ada):
    bob = UserFactory(email="bob@example.com")
    mine = Api(user_token(ada)).get("/v1/user/mfa-enable").json()
    theirs = Api(user_token(bob)).get("/v1/user/mfa-enable").json()
    r = Api(user_token(ada)).post("/v1/user/mfa-enable", {"mfa_token": theirs["mfa_token"],
                                                          "otp": steps(mine["secret"]).current})
    assert r.status_code == 400 and r.json()["field"] == "mfa_token"
    assert not UserMfa.objects.filter(enabled_at__isnull=False).exists()


def test_invalidate_tokens_on_confirm_keeps_only_the_calling_token(ada):
    keep, other = user_token(ada), user_token(ada)
    api = Api(keep)
    body = api.get("/v1/user/mfa-enable").json()
    r = api.post("/v1/user/mfa-enable", {"mfa_token": body["mfa_token"], "otp": steps(body["secret"]).current,
                                         "invalidate_tokens": True})
    assert r.status_code == 200, r.content
    assert Api(other).get("/v1/user").status_code == 401
    assert api.get("/v1/user").status_code == 200


# --- signing in: 403 mfa_required, then urn:custom:mfa-otp --------------------------------------------


def test_password_grant_for_an_mfa_person_is_403_with_an_mfa_token_and_no_access_token(ada):
    secret, _ = enrol(ada)
    before = AccessToken.objects.count()
    token = mfa_token_of(login(expires_in="3600"))
    assert AccessToken.objects.count() == before  # nothing issued before the second step

    r = send_otp(token, steps(secret).current)
    assert r.status_code == 200, r.content
    body = r.json()
    assert sorted(body) == ["access_token", "expires_in", "refresh_token", "token_type"]
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600  # the first step's expires_in
    issued = AccessToken.objects.get(token_hash=hash_secret(body["access_token"]))
    assert issued.user == ada and issued.client_label == "particle-api"
    assert Api(body["access_token"]).get("/v1/user").json()["mfa"] == {"enabled": True}

    # The mfa_token is single use.
    r = send_otp(token, steps(secret).next)
    assert (r.status_code, r.json()) == (400, {"error": "invalid_grant",
                                               "error_description": "The mfa_token is invalid or has expired; sign in again"})


def test_a_used_code_is_refused_the_second_time(ada):
    secret, _ = enrol(ada)
    codes = steps(secret)
    assert send_otp(mfa_token_of(login()), codes.current).status_code == 200
    token = mfa_token_of(login())
    r = send_otp(token, codes.current)
    assert (r.status_code, r.json()) == (400, BAD_OTP)
    # An older step than the last one used is refused too.
    assert send_otp(token, codes.previous).status_code == 400
    # The token survives a wrong code; the next step's code completes it.
    assert send_otp(token, codes.next).status_code == 200


def test_a_bad_code_is_400_and_issues_nothing(ada):
    secret, _ = enrol(ada)
    before = AccessToken.objects.count()
    r = send_otp(mfa_token_of(login()), wrong_code(secret))
    assert (r.status_code, r.json()) == (400, BAD_OTP)
    assert AccessToken.objects.count() == before


@pytest.mark.parametrize("form,expected", [
    ({"otp": "123456"}, {"error": "invalid_request", "error_description": "mfa_token is required",
                         "field": "mfa_token"}),
    ({"mfa_token": "0" * 40}, {"error": "invalid_request", "error_description": "otp is required",
                               "field": "otp"}),
    ({"mfa_token": "0" * 40, "otp": "123456"}, {
        "error": "invalid_grant", "error_description": "The mfa_token is invalid or has expired; sign in again"}),
])
def test_mfa_otp_grant_bad_input(ada, form, expected):
    enrol(ada)
    r = Api().call("POST", "/oauth/token", {"grant_type": "urn:custom:mfa-otp", "client_id": "particle-api",
                                            "client_secret": "particle-api", **form}, form=True)
    assert (r.status_code, r.json()) == (400, expected)


def test_an_expired_mfa_token_is_refused(ada, settings):
    secret, _ = enrol(ada)
    settings.CYAN_MFA_TOKEN_SECONDS = 1
    token = mfa_token_of(login())
    import time

    time.sleep(1.5)
    r = send_otp(token, steps(secret).current)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def test_user_as_mfa_token_cannot_be_completed_with_user_bs_code(ada):
    bob = UserFactory(email="bob@example.com")
    enrol(ada)
    bob_secret, bob_codes = enrol(bob)
    token = mfa_token_of(login("ada@example.com"))
    assert send_otp(token, steps(bob_secret).current).json() == BAD_OTP
    assert send_otp(token, bob_codes[0]).json() == BAD_OTP
    assert not AccessToken.objects.filter(user=bob).exists() and not AccessToken.objects.filter(user=ada).exists()
    # Bob's code was not spent by the attempt on Ada's sign-in.
    assert send_otp(mfa_token_of(login("bob@example.com")), bob_codes[0]).status_code == 200


def test_a_registered_clients_mfa_token_is_finished_by_that_client_only(ada):
    from console.scoping import Principal
    from console.services import clients as client_services

    secret, _ = enrol(ada)
    client, client_secret = client_services.client_create(principal=Principal.for_user(ada), owner=ada, name="app",
                                                          type="installed")
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD,
            "client_id": client.client_id, "client_secret": client_secret}
    token = mfa_token_of(Api().call("POST", "/oauth/token", form, form=True))
    codes = steps(secret)
    r = send_otp(token, codes.current)  # as particle-api
    assert (r.status_code, r.json()) == (400, {"error": "invalid_grant",
                                               "error_description": "The mfa_token was issued to another client"})
    r = Api().call("POST", "/oauth/token", {"grant_type": "urn:custom:mfa-otp", "mfa_token": token,
                                            "otp": codes.current, "client_id": client.client_id,
                                            "client_secret": "wrong"}, form=True)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # Neither the code nor the mfa_token was spent by the refused requests.
    r = Api().call("POST", "/oauth/token", {"grant_type": "urn:custom:mfa-otp", "mfa_token": token,
                                            "otp": codes.current, "client_id": client.client_id,
                                            "client_secret": client_secret}, form=True)
    assert r.status_code == 200, r.content
    assert AccessToken.objects.get(token_hash=hash_secret(r.json()["access_token"])).client == client


def test_built_in_clients_may_finish_each_others_mfa_tokens(ada):
    """CLI 3.43.1's `token create` signs in as `user` and sends the code as `CLI2`; the token keeps `user`."""
    secret, _ = enrol(ada)
    form = {"grant_type": "password", "username": "ada@example.com", "password": PASSWORD,
            "client_id": "user", "client_secret": "client_secret_here"}
    token = mfa_token_of(Api().call("POST", "/oauth/token", form, form=True))
    r = send_otp(token, steps(secret).current, client_id="CLI2")
    assert r.status_code == 200, r.content
    assert AccessToken.objects.get(token_hash=hash_secret(r.json()["access_token"])).client_label == "user"


def test_a_recovery_code_signs_in_once(ada):
    _, codes = enrol(ada)
    r = send_otp(mfa_token_of(login()), codes[3].upper().replace("-", " "))  # as typed, in any case and spacing
    assert r.status_code == 200, r.content
    assert_audited("mfa.recovery_code_used", actor=ada, target="ada@example.com", data={"remaining": 9})
    r = send_otp(mfa_token_of(login()), codes[3])
    assert (r.status_code, r.json()) == (400, BAD_OTP)
    assert MfaRecoveryCode.objects.filter(user=ada, used_at__isnull=False).count() == 1


def test_wrong_codes_lock_the_second_step_and_a_right_password_does_not_reset_it(ada, settings):
    settings.CYAN_MFA_FAILURE_LIMIT = 3
    secret, codes = enrol(ada)
    bad = wrong_code(secret)
    for n in range(3):
        # A fresh sign-in (right password) between guesses, from a fresh address each time.
        r = send_otp(mfa_token_of(login(ip=f"198.51.100.{n}")), bad, ip=f"198.51.100.{n}")
        assert (r.status_code, r.json()) == (400, BAD_OTP)
    token = mfa_token_of(login(ip="192.0.2.50"))
    r = send_otp(token, steps(secret).current, ip="192.0.2.50")
    assert r.status_code == 429, r.content
    assert r.json() == {"error": "too_many_attempts",
                        "error_description": "Too many failed sign-in attempts for this account; try again in 30 minutes."}
    assert int(r["Retry-After"]) == 1800
    assert send_otp(token, codes[0], ip="192.0.2.50").status_code == 429
    assert MfaRecoveryCode.objects.filter(used_at__isnull=False).count() == 0
    assert not AccessToken.objects.filter(user=ada).exists()


def test_people_without_mfa_and_other_tokens_are_unaffected(cast):
    enrol(cast.owner)
    # A person without MFA still gets a token straight away.
    r = login("admin@example.com")
    assert r.status_code == 200 and "access_token" in r.json()
    # Tokens already issued (and API-user and product tokens) keep working.
    for who in ("owner", "api_with", "product_token"):
        assert cast.api(who).get("/v1/access_tokens/current").status_code == 200, who


@pytest.mark.parametrize("who", ["api_with", "product_token"])
def test_mfa_routes_are_for_people_only(cast, who):
    for method, path in (("GET", "/v1/user/mfa-enable"), ("POST", "/v1/user/mfa-enable"),
                         ("PUT", "/v1/user/mfa-disable")):
        r = cast.api(who).call(method, path, {})
        assert r.status_code == 400 and r.json()["error"] == "unauthorized", (method, path, r.content)


# --- HTTP Basic on /v1/access_tokens ------------------------------------------------------------------


def basic(user="ada@example.com", password=PASSWORD) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_on_access_tokens_needs_the_otp(ada):
    secret, codes = enrol(ada)
    r = Api().get("/v1/access_tokens", **basic())
    assert (r.status_code, r.json()) == (403, {
        "error": "mfa_required", "error_description": MFA_REQUIRED + ": send the code as otp"})
    r = Api().get("/v1/access_tokens", {"otp": wrong_code(secret)}, **basic())
    assert (r.status_code, r.json()) == (400, BAD_OTP)
    r = Api().get("/v1/access_tokens", {"otp": steps(secret).current}, **basic())
    assert r.status_code == 200 and r.json() == []
    r = Api().call("DELETE", "/v1/access_tokens?otp=" + codes[0], **basic())
    assert (r.status_code, r.json()) == (200, {"ok": True})


# --- turning it off --------------------------------------------------------------------------------------


def test_disable_needs_the_current_password(ada):
    enrol(ada)
    api = Api(user_token(ada))
    r = api.put("/v1/user/mfa-disable", {"current_password": "wrong"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid_request", "field": "current_password",
                                               "error_description": "current_password is missing or incorrect"})
    r = api.put("/v1/user/mfa-disable", {})
    assert r.status_code == 400 and r.json()["field"] == "current_password"
    assert UserMfa.objects.get(user=ada).enabled

    r = api.put("/v1/user/mfa-disable", {"current_password": PASSWORD})
    assert (r.status_code, r.json()) == (200, {"ok": True})
    assert not UserMfa.objects.filter(user=ada).exists() and not MfaRecoveryCode.objects.exists()
    assert api.get("/v1/user").json()["mfa"] == {"enabled": False}
    assert login().status_code == 200
    assert_audited("mfa.disabled", actor=ada, target="ada@example.com")

    r = api.put("/v1/user/mfa-disable", {"current_password": PASSWORD})
    assert (r.status_code, r.json()) == (400, {"error": "mfa_not_enabled",
                                               "error_description": "Multi-factor authentication is not enabled"})


def test_wrong_current_passwords_on_disable_are_counted(ada, settings):
    settings.CYAN_ACCOUNT_FAILURE_LIMIT = 2
    enrol(ada)
    api = Api(user_token(ada))
    for _ in range(2):
        assert api.put("/v1/user/mfa-disable", {"current_password": "guess"}).status_code == 400
    r = api.put("/v1/user/mfa-disable", {"current_password": PASSWORD})
    assert r.status_code == 429
    assert UserMfa.objects.get(user=ada).enabled


def test_regenerated_recovery_codes_replace_the_old_ones(ada):
    from console.errors import ValidationFailed
    from console.services import mfa as mfa_services

    _, old = enrol(ada)
    with pytest.raises(ValidationFailed):
        mfa_services.mfa_recovery_codes_regenerate(user=ada, current_password="wrong", ip="127.0.0.1")
    new = mfa_services.mfa_recovery_codes_regenerate(user=ada, current_password=PASSWORD, ip="127.0.0.1")
    assert len(new) == 10 and not set(new) & set(old)
    assert send_otp(mfa_token_of(login()), old[0]).json() == BAD_OTP
    assert send_otp(mfa_token_of(login()), new[0]).status_code == 200
    assert audited_actions().count("mfa.recovery_codes_regenerated") == 1
