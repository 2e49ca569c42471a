"""POST /oauth/token and the token routes, in Particle's wire format."""

from __future__ import annotations

import base64

import pytest

from console.models import AccessToken, hash_secret
from tests.support.api import Api, user_token
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def login(api: Api, username="u@example.com", password=PASSWORD, **extra):
    form = {"grant_type": "password", "username": username, "password": password,
            "client_id": "particle-api", "client_secret": "particle-api", **extra}
    return api.call("POST", "/oauth/token", form, form=True)


@pytest.fixture
def person(db):
    return UserFactory(email="u@example.com")


def test_password_grant_returns_particle_token_body(api, person):
    r = login(api)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert len(body["access_token"]) == 40 and body["expires_in"] == 7776000 and body["refresh_token"]
    # Stored hashed: the raw token is nowhere in the table.
    assert not AccessToken.objects.filter(token_hash=body["access_token"]).exists()
    assert AccessToken.objects.filter(token_hash=hash_secret(body["access_token"])).exists()


@pytest.mark.parametrize("header", ["Bearer null", "Bearer undefined", "Bearer ", "Bearer 0123456789abcdef"])
def test_token_endpoint_ignores_stray_bearer_headers(api, person, header):
    r = api.call("POST", "/oauth/token", {"grant_type": "password", "username": "u@example.com",
                                          "password": PASSWORD, "client_id": "CLI2",
                                          "client_secret": "client_secret_here"},
                 form=True, HTTP_AUTHORIZATION=header)
    assert r.status_code == 200, r.content


def test_basic_client_credentials_are_accepted(api, person):
    basic = base64.b64encode(b"particle:particle").decode()
    r = api.call("POST", "/oauth/token", {"grant_type": "password", "username": "u@example.com",
                                          "password": PASSWORD}, form=True, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert r.status_code == 200
    token = AccessToken.objects.get()
    assert token.client_name == "particle"


def test_expires_in_zero_never_expires(api, person):
    r = login(api, expires_in="0")
    assert r.json()["expires_in"] == 0
    assert AccessToken.objects.get().expires_at is None


def test_expires_in_custom_and_invalid(api, person):
    assert login(api, expires_in="60").json()["expires_in"] == 60
    r = login(api, expires_in="soon")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert AccessToken.objects.count() == 1


def test_wrong_password_is_invalid_grant_and_writes_nothing(api, person):
    r = login(api, password="wrong")
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_grant", "error_description": "User credentials are invalid"}
    assert AccessToken.objects.count() == 0


def test_unknown_user_is_same_error(api, person):
    assert login(api, username="nobody@example.com").json()["error"] == "invalid_grant"


def test_unknown_grant_type(api, person):
    r = login(api, grant_type="magic")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_missing_fields(api, person):
    r = api.call("POST", "/oauth/token", {"grant_type": "password"}, form=True)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = api.call("POST", "/oauth/token", {}, form=True)
    assert r.status_code == 400 and "grant_type" in r.json()["error_description"]


def test_ten_failures_lock_the_address_out(api, person):
    for _ in range(10):
        assert login(api, password="wrong").status_code == 400
    r = login(api)  # even the right password is refused now
    assert r.status_code == 429
    assert r.json()["error"] == "too_many_attempts" and "30 minutes" in r.json()["error_description"]
    assert int(r["Retry-After"]) == 1800
    assert AccessToken.objects.count() == 0


def test_a_success_clears_its_accounts_count_but_never_the_addresss(api, person):
    for _ in range(9):
        login(api, password="wrong")
    assert login(api).status_code == 200  # the account's count is cleared...
    assert login(api, password="wrong").status_code == 400  # ...the address's is not: this is its 10th failure
    assert login(api).status_code == 429


def test_refresh_token_grant_rotates(api, person):
    first = login(api).json()
    r = api.call("POST", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
                                          "client_id": "particle-api", "client_secret": "particle-api"}, form=True)
    assert r.status_code == 200
    second = r.json()
    assert second["access_token"] != first["access_token"]
    again = api.call("POST", "/oauth/token", {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                     form=True)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("how", ["bearer", "query", "form"])
def test_three_ways_to_present_a_token(person, how):
    token = user_token(person)
    api = Api()
    if how == "bearer":
        r = Api(token).get("/v1/user")
    elif how == "query":
        r = api.get(f"/v1/user?access_token={token}")
    else:
        r = api.call("PUT", "/v1/user", {"access_token": token, "account_info[first_name]": "Ada"}, form=True)
    assert r.status_code == 200, r.content
    if how == "form":
        person.refresh_from_db()
        assert person.first_name == "Ada"


@pytest.mark.parametrize("header", ["Bearer null", "Bearer undefined", "Bearer nonsense", None])
def test_bad_or_missing_token_is_json_401(person, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    r = Api().get("/v1/user", **extra)
    assert r.status_code == 401
    assert r["Content-Type"].startswith("application/json")
    assert r.json()["error"] == "invalid_token"


def test_expired_token_is_401(person):
    token = user_token(person)
    AccessToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert Api(token).get("/v1/user").status_code == 401


def test_current_token_and_logout(person):
    token = user_token(person)
    api = Api(token)
    r = api.get("/v1/access_tokens/current")
    assert r.status_code == 200
    assert set(r.json()) >= {"expires_at", "client", "scopes", "orgs"}
    assert api.delete("/v1/access_tokens/current").json() == {"ok": True}
    assert api.get("/v1/user").status_code == 401


def test_revoke_by_token_needs_no_authorization(person):
    token = user_token(person)
    r = Api().delete(f"/v1/access_tokens/{token}")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert Api(token).get("/v1/user").status_code == 401
    assert Api().delete(f"/v1/access_tokens/{token}").status_code == 404


def test_list_tokens_with_basic_auth_never_shows_secrets(api, person):
    raw = user_token(person)
    basic = base64.b64encode(f"u@example.com:{PASSWORD}".encode()).decode()
    r = api.get("/v1/access_tokens", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert r.status_code == 200
    assert len(r.json()) == 1 and raw not in r.content.decode()
    assert r.json()[0]["token"].startswith(raw[:8])
    bad = base64.b64encode(b"u@example.com:nope").decode()
    assert api.get("/v1/access_tokens", HTTP_AUTHORIZATION=f"Basic {bad}").status_code == 400


def test_delete_all_tokens(person):
    a, b = user_token(person), user_token(person)
    assert Api(a).delete("/v1/access_tokens").json() == {"ok": True}
    assert Api(b).get("/v1/user").status_code == 401


def test_get_and_put_user(person):
    api = Api(user_token(person))
    body = api.get("/v1/user").json()
    assert body["username"] == "u@example.com"
    assert set(body) >= {"subscription_ids", "account_info", "mfa", "wifi_device_count", "cellular_device_count"}
    r = api.put("/v1/user", {"account_info": {"first_name": "Grace", "company_name": "Navy"}})
    assert r.status_code == 200
    assert api.get("/v1/user").json()["account_info"]["company_name"] == "Navy"


def test_password_change_needs_current_password(person):
    api = Api(user_token(person))
    r = api.put("/v1/user", {"password": "a-new-password-123"})
    assert r.status_code == 400 and r.json()["field"] == "current_password"
    r = api.put("/v1/user", {"password": "a-new-password-123", "current_password": PASSWORD})
    assert r.json() == {"ok": True, "message": "User's password updated."}
    person.refresh_from_db()
    assert person.check_password("a-new-password-123")


def test_malformed_json_is_a_json_error(person):
    api = Api(user_token(person))
    r = api.client.put("/v1/user", "{not json", content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = api.client.put("/v1/user", "[1, 2]", content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert r.status_code == 400 and "JSON object" in r.json()["error_description"]


def test_unknown_route_and_wrong_method_are_json(person):
    api = Api(user_token(person))
    r = api.get("/v1/definitely/not/here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.call("PATCH", "/v1/user", {})
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    r = Api().get("/oauth/token")
    assert r.status_code == 405 and r["Content-Type"].startswith("application/json")


def test_openapi_schema_and_ui_are_served(client):
    r = client.get("/api/schema/")
    assert r.status_code == 200 and b"/oauth/token" in r.content and b"/v1/orgs" in r.content
    assert client.get("/api/docs/").status_code == 200


# --- password hashing: the suite hashes with MD5 for speed (tests/support/passwords.py) -------------------


def test_the_suite_hashes_passwords_with_md5_unless_a_test_opts_out(person):
    """The autouse fast hasher is on: without it every cast would cost ~0.4 s of Argon2."""
    assert person.password.startswith("md5$"), person.password[:20]
    assert person.check_password(PASSWORD)


@pytest.mark.real_password_hashing
def test_user_and_customer_passwords_are_stored_with_argon2(cast):
    """With the production hashers (settings.PASSWORD_HASHERS), passwords are Argon2 hashes that verify."""
    from devices.services.customers import customer_create

    user = UserFactory(email="hashed@example.com")
    assert user.password.startswith("argon2$"), user.password[:20]
    assert user.check_password(PASSWORD) and not user.check_password("wrong-password")
    customer, _ = customer_create(principal=None, product=cast.product, email="c@example.com",
                                  password="long-enough-pw")
    assert customer.password.startswith("argon2$"), customer.password[:20]
    r = login(Api(), username="hashed@example.com")
    assert r.status_code == 200, r.content
