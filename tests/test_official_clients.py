"""The official, unmodified npm clients against a live Cyan server (particle-api.md Part B).

particle-api-js@12.0.3 is driven through tests/clients/apijs.js (one call per run, result as JSON on stdout);
particle-cli@3.43.1 runs as a subprocess with HOME pointing at a scratch directory whose
~/.particle/particle.config.json names the live server as its apiUrl.

particle-cli 3.43.1 has no product command that works without devices: `product device list|add|remove` is all
there is (checked with `particle help product`), so the CLI tests cover login, whoami, token create/revoke and
logout only.
"""

from __future__ import annotations


import json
import re

import pytest

from console.models import AccessToken
from console.services.users import sandbox_of
from tests.factories import PASSWORD, UserFactory, make_org, make_product, seat
from tests.support.clients import (
    TOKEN_RE, api_login, apijs, apijs_batch, client_of, failed, http, ok, show, stored, usernames,
)
from tests.support.env import need, node_available

pytestmark = [pytest.mark.clients, pytest.mark.django_db(transaction=True)]

# --- particle-api-js: login, user, tokens ----------------------------------------------------------


def test_apijs_login_returns_token_body_and_whoami(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")

    body = ok(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD}))
    assert body["token_type"] == "bearer"
    assert TOKEN_RE.fullmatch(body["access_token"]), body
    assert body["expires_in"] == 7776000  # api-js sends expires_in=7776000 by default
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    token = stored(body["access_token"])
    assert token is not None and token.user.email == "ada@example.com"
    assert token.client_label == "particle-api"  # api-js's default client id, sent as a form field

    user = ok(apijs(base_url, "getUserInfo", auth=body["access_token"]))
    assert user["username"] == "ada@example.com"
    assert user["mfa"] == {"enabled": False}
    assert "account_info" in user

    current = ok(apijs(base_url, "get", {"uri": "/v1/access_tokens/current"}, auth=body["access_token"]))
    assert current["client"] == "particle-api"
    assert current["expires_at"] and current["expires_at"].endswith("Z")
    assert current["scopes"] == [] and current["orgs"] == []


def test_apijs_login_ignores_its_own_stale_bearer_header(base_url):
    """api-js sends its default token on every request, login included (Part B §0.2)."""
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    for stale in ("0123456789abcdef0123456789abcdef01234567", "null", "undefined"):
        body = ok(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD}, auth=stale))
        assert stored(body["access_token"]).user.email == "ada@example.com"


def test_apijs_login_with_short_token_duration(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    body = ok(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD, "tokenDuration": 3600}))
    assert body["expires_in"] == 3600


def test_apijs_login_token_duration_zero_never_expires(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    body = ok(apijs(base_url, "login", {"username": "ada@example.com", "password": PASSWORD, "tokenDuration": 0}))
    assert body["expires_in"] == 0
    assert stored(body["access_token"]).expires_at is None
    current = ok(apijs(base_url, "get", {"uri": "/v1/access_tokens/current"}, auth=body["access_token"]))
    assert current["expires_at"] is None


def test_apijs_bad_password_rejects_with_invalid_grant(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    result = apijs(base_url, "login", {"username": "ada@example.com", "password": "wrong-password"})
    body = failed(result, 400)
    assert body["error"] == "invalid_grant"
    assert "User credentials are invalid" in result["errorDescription"]
    assert result["errorDescription"].startswith(f"HTTP error 400 from {base_url}/oauth/token")
    # An unknown user gets the very same answer.
    other = apijs(base_url, "login", {"username": "nobody@example.com", "password": PASSWORD})
    assert failed(other, 400) == body


def test_apijs_repeated_bad_passwords_lock_out_with_json_429(base_url, settings):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    limit = settings.CYAN_LOGIN_FAILURE_LIMIT
    wrong = {"method": "login", "args": {"username": "ada@example.com", "password": "wrong-password"}}
    right = {"method": "login", "args": {"username": "ada@example.com", "password": PASSWORD}}
    results = apijs_batch(base_url, [wrong] * limit + [right])
    for result in results[:limit]:
        assert failed(result, 400)["error"] == "invalid_grant"
    locked = failed(results[-1], 429)  # even the right password, while locked out
    assert "Too many failed sign-in attempts" in locked["error_description"]


def test_apijs_bad_token_rejects_401_with_json_body(base_url):
    need(node_available(), "node/npm not installed")
    # "null" and "undefined" are what the clients send when they hold no token (Part B §0.2).
    for bad in ("0123456789abcdef0123456789abcdef01234567", "not-a-token", "null", "undefined"):
        result = apijs(base_url, "getUserInfo", auth=bad)
        body = failed(result, 401)
        assert body["error"] == "invalid_token", body
    # No token at all: still a JSON 401, not an HTML page.
    assert failed(apijs(base_url, "listProducts"), 401)["error"] == "invalid_token"


def test_apijs_unknown_route_is_a_json_404(base_url):
    need(node_available(), "node/npm not installed")
    user = UserFactory(email="ada@example.com")
    token = api_login(base_url, user.email)
    body = failed(apijs(base_url, "get", {"uri": "/v1/no-such-route"}, auth=token), 404)
    assert body["error"] == "not_found"


def test_apijs_delete_access_token_revokes_only_that_token(base_url):
    """deleteAccessToken sends no Authorization header: the token in the path is the credential (Part B §1.1)."""
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    first, second = api_login(base_url, "ada@example.com"), api_login(base_url, "ada@example.com")
    assert first != second

    assert ok(apijs(base_url, "deleteAccessToken", {"token": first})) == {"ok": True}  # §2
    assert stored(first) is None
    assert failed(apijs(base_url, "getUserInfo", auth=first), 401)["error"] == "invalid_token"
    assert ok(apijs(base_url, "getUserInfo", auth=second))["username"] == "ada@example.com"

    # Revoking it again: a JSON error, not a crash.
    again = apijs(base_url, "deleteAccessToken", {"token": first})
    assert not again["ok"] and again["statusCode"] == 404 and again["bodyParseError"] is None, again


def test_apijs_delete_current_access_token_logs_out(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    keep, current = api_login(base_url, "ada@example.com"), api_login(base_url, "ada@example.com")

    assert ok(apijs(base_url, "deleteCurrentAccessToken", auth=current)) == {"ok": True}
    assert failed(apijs(base_url, "getUserInfo", auth=current), 401)["error"] == "invalid_token"
    assert ok(apijs(base_url, "getUserInfo", auth=keep))["username"] == "ada@example.com"


def test_apijs_delete_active_access_tokens_revokes_all(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    UserFactory(email="bob@example.com")
    a1, a2 = api_login(base_url, "ada@example.com"), api_login(base_url, "ada@example.com")
    bob = api_login(base_url, "bob@example.com")

    assert ok(apijs(base_url, "deleteActiveAccessTokens", auth=a1)) == {"ok": True}
    for token in (a1, a2):
        assert failed(apijs(base_url, "getUserInfo", auth=token), 401)["error"] == "invalid_token"
    assert ok(apijs(base_url, "getUserInfo", auth=bob))["username"] == "bob@example.com"


def test_apijs_set_user_info(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")
    ok(apijs(base_url, "setUserInfo", {"accountInfo": {"first_name": "Ada", "last_name": "Lovelace"}}, auth=token))
    user = ok(apijs(base_url, "getUserInfo", auth=token))
    assert user["account_info"]["first_name"] == "Ada"
    assert user["account_info"]["last_name"] == "Lovelace"


# --- particle-api-js: products and orgs ------------------------------------------------------------------


def test_apijs_list_and_get_products_by_id_and_slug(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    trackers = make_product(org, name="Trackers", platform_id=13)
    own = make_product(sandbox_of(owner), name="Bench Rig", platform_id=12)
    outsider = UserFactory(email="outsider@example.com")
    hidden = make_product(make_org(outsider, "Other Corp"), name="Secret Thing")
    token = api_login(base_url, "owner@example.com")

    listed = ok(apijs(base_url, "listProducts", auth=token))["products"]
    by_slug = {p["slug"]: p for p in listed}
    assert set(by_slug) == {trackers.slug, own.slug}
    assert by_slug[trackers.slug]["id"] == trackers.pk and isinstance(by_slug[trackers.slug]["id"], int)
    assert by_slug[trackers.slug]["platform_id"] == 13 and by_slug[trackers.slug]["name"] == "Trackers"
    assert by_slug[own.slug]["platform_id"] == 12

    for ident in (trackers.pk, trackers.slug):
        product = ok(apijs(base_url, "getProduct", {"product": ident}, auth=token))["product"]
        assert isinstance(product, dict)
        assert product["id"] == trackers.pk and product["slug"] == trackers.slug and product["name"] == "Trackers"
        assert product["device_protection"] == "disabled"

    # Someone else's product: a JSON 404 (not a leak of its existence).
    for ident in (hidden.pk, hidden.slug):
        assert failed(apijs(base_url, "getProduct", {"product": ident}, auth=token), 404)["error"] == "not_found"


def test_apijs_generic_orgs_and_product_creation(base_url):
    """The routes the CLI reaches through the generic helpers (Part B §1.2, §1.9)."""
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")

    assert ok(apijs(base_url, "get", {"uri": "/v1/orgs"}, auth=token)) == {"organizations": []}

    created = ok(apijs(base_url, "post", {"uri": "/v1/user/products", "data": {"product": {
        "name": "Garden Sensors", "description": "soil", "platform_id": 12,
        "settings": {"location": {"opt_in": False}}}}}, auth=token), 201)["product"]
    assert created["name"] == "Garden Sensors" and isinstance(created["id"], int) and created["platform_id"] == 12
    sandbox = ok(apijs(base_url, "get", {"uri": "/v1/user/products"}, auth=token))["products"]
    assert [(p["id"], p["name"]) for p in sandbox] == [(created["id"], "Garden Sensors")]
    fetched = ok(apijs(base_url, "getProduct", {"product": created["slug"]}, auth=token))["product"]
    assert fetched["id"] == created["id"] and fetched["description"] == "soil"

    org = ok(apijs(base_url, "post", {"uri": "/v1/orgs", "data": {"name": "Lovelace Labs"}}, auth=token),
             201)["organization"]
    assert org["name"] == "Lovelace Labs" and org["slug"]
    orgs = ok(apijs(base_url, "get", {"uri": "/v1/orgs"}, auth=token))["organizations"]
    assert [(o["name"], o["slug"]) for o in orgs] == [("Lovelace Labs", org["slug"])]

    in_org = ok(apijs(base_url, "post", {"uri": f"/v1/orgs/{org['slug']}/products", "data": {"product": {
        "name": "Fleet", "platform_id": 13}}}, auth=token), 201)["product"]
    assert in_org["org"] == org["slug"]
    org_products = ok(apijs(base_url, "get", {"uri": f"/v1/orgs/{org['slug']}/products"}, auth=token))["products"]
    assert [p["id"] for p in org_products] == [in_org["id"]]
    # The sandbox list does not show org products; /v1/products shows both.
    assert [p["id"] for p in ok(apijs(base_url, "get", {"uri": "/v1/user/products"}, auth=token))["products"]] == [
        created["id"]]
    assert {p["id"] for p in ok(apijs(base_url, "listProducts", auth=token))["products"]} == {created["id"],
                                                                                                in_org["id"]}
    # The current token now lists the org.
    current = ok(apijs(base_url, "get", {"uri": "/v1/access_tokens/current"}, auth=token))
    assert [o["slug"] for o in current["orgs"]] == [org["slug"]]


def test_apijs_product_update_via_put(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    token = api_login(base_url, owner.email)
    updated = ok(apijs(base_url, "put", {"uri": f"/v1/products/{product.slug}",
                                         "data": {"description": "all the trackers"}}, auth=token))["product"]
    assert updated["description"] == "all the trackers"
    assert ok(apijs(base_url, "getProduct", {"product": product.pk}, auth=token))["product"]["description"] == (
        "all the trackers")


# --- particle-api-js: teams ----------------------------------------------------------------------------------


def test_apijs_product_team_invite_list_remove(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    UserFactory(email="bob@example.com")
    token = api_login(base_url, owner.email)
    bob_token = api_login(base_url, "bob@example.com")

    team = ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))
    assert usernames(team) == ["owner@example.com"]
    members = team["team"] if isinstance(team, dict) else team
    assert members[0]["role"]["name"] == "Administrator"

    # Bob cannot see the product before he is invited.
    assert failed(apijs(base_url, "getProduct", {"product": product.slug}, auth=bob_token), 404)

    invited = ok(apijs(base_url, "inviteTeamMember", {"username": "bob@example.com", "product": product.slug},
                       auth=token), 200)
    assert invited["invited"]["username"] == "bob@example.com"
    team = ok(apijs(base_url, "listTeamMembers", {"product": product.pk}, auth=token))
    assert usernames(team) == ["owner@example.com", "bob@example.com"]
    bob_entry = next(m for m in (team["team"] if isinstance(team, dict) else team)
                     if m["username"] == "bob@example.com")
    assert bob_entry["role"]["name"] == "Developer"  # api-js sends no role
    assert ok(apijs(base_url, "getProduct", {"product": product.slug}, auth=bob_token))["product"]["id"] == product.pk
    assert [p["slug"] for p in ok(apijs(base_url, "listProducts", auth=bob_token))["products"]] == [product.slug]

    # Inviting twice: a JSON 4xx.
    dup = apijs(base_url, "inviteTeamMember", {"username": "bob@example.com", "product": product.slug}, auth=token)
    failed(dup, 400)
    # Someone without an account: a pending invitation, listed after the members; removing it revokes it.
    ghost = ok(apijs(base_url, "inviteTeamMember", {"username": "ghost@example.com", "product": product.slug},
                     auth=token))
    assert ghost["invited"]["username"] == "ghost@example.com" and ghost["invited"]["pending"] is True
    team = ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))
    assert usernames(team) == ["owner@example.com", "bob@example.com", "ghost@example.com"]
    assert ok(apijs(base_url, "removeTeamMember", {"username": "ghost@example.com", "product": product.slug},
                    auth=token)) == {"ok": True}

    assert ok(apijs(base_url, "removeTeamMember", {"username": "bob@example.com", "product": product.slug},
                    auth=token)) == {"ok": True}  # §9
    assert usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))) == [
        "owner@example.com"]
    assert failed(apijs(base_url, "getProduct", {"product": product.slug}, auth=bob_token), 404)


def test_apijs_team_member_without_admin_role_cannot_invite(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    dev = UserFactory(email="dev@example.com")
    seat(product, dev, "developer")
    UserFactory(email="carol@example.com")
    token = api_login(base_url, dev.email)
    assert "dev@example.com" in usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug},
                                                   auth=token)))
    refused = apijs(base_url, "inviteTeamMember", {"username": "carol@example.com", "product": product.slug},
                    auth=token)
    assert failed(refused, 403)
    assert usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))) == [
        "owner@example.com", "dev@example.com"]


def test_apijs_remove_api_user_with_plus_in_username(base_url):
    """API users are named slug+rand@api.particle.io; api-js puts the name in the path unencoded."""
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    token = api_login(base_url, owner.email)
    created = ok(apijs(base_url, "post", {"uri": f"/v1/products/{product.slug}/team",
                                          "data": {"friendly_name": "ci bot", "scopes": ["products:get"]}},
                       auth=token), 200)["created"]
    api_username, api_token = created["username"], created["tokens"][0]["token"]
    assert "+" in api_username and api_username.endswith("@api.particle.io")
    assert ok(apijs(base_url, "getProduct", {"product": product.slug}, auth=api_token))["product"]["id"] == product.pk
    listed = ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))
    assert api_username in usernames(listed)

    ok(apijs(base_url, "removeTeamMember", {"username": api_username, "product": product.slug}, auth=token),
       200)
    assert api_username not in usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug},
                                                  auth=token)))
    assert failed(apijs(base_url, "getProduct", {"product": product.slug}, auth=api_token), 401)


def test_apijs_owner_cannot_be_removed_from_the_team(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    token = api_login(base_url, owner.email)
    refused = apijs(base_url, "removeTeamMember", {"username": owner.email, "product": product.slug}, auth=token)
    assert failed(refused, 400)["error"] == "owner_immutable"
    assert usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))) == [owner.email]


def test_apijs_owner_role_cannot_be_changed(base_url):
    """§9: the owner is listed in GET .../team as Administrator and "cannot be changed or removed"; changing its role
    must be refused like removing it (400 owner_immutable), not answered "not a member of this team"."""
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers")
    token = api_login(base_url, owner.email)
    for uri in (f"/v1/products/{product.slug}/team/{owner.email}", f"/v1/orgs/{org.slug}/team/{owner.email}"):
        refused = apijs(base_url, "put", {"uri": uri, "data": {"role": "Developer"}}, auth=token)
        assert failed(refused, 400)["error"] == "owner_immutable", refused
    members = ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=token))
    members = members["team"] if isinstance(members, dict) else members
    assert [(m["username"], m["role"]["name"]) for m in members] == [(owner.email, "Administrator")]


def test_apijs_api_user_token_scopes(base_url):
    """particle-api.md §1 / §4: an API user works within its scopes and is refused user-only routes."""
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    UserFactory(email="bob@example.com")
    token = api_login(base_url, owner.email)
    created = ok(apijs(base_url, "post", {"uri": f"/v1/products/{product.pk}/team", "data": {
        "friendly_name": "team reader", "scopes": ["products:get", "teams.users:list"]}}, auth=token),
        200)["created"]
    assert created["is_programmatic"] is True
    bot = created["tokens"][0]["token"]

    assert owner.email in usernames(ok(apijs(base_url, "listTeamMembers", {"product": product.slug}, auth=bot)))
    assert failed(apijs(base_url, "inviteTeamMember", {"username": "bob@example.com", "product": product.slug},
                        auth=bot), 403)
    refused = apijs(base_url, "getUserInfo", auth=bot)
    body = failed(refused, 400)
    assert body["error"] == "unauthorized"
    assert body["error_description"] == "API users are not allowed to call this endpoint"


def test_apijs_org_team_through_generic_helpers(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers")
    UserFactory(email="bob@example.com")
    token = api_login(base_url, owner.email)
    bob_token = api_login(base_url, "bob@example.com")

    invited = ok(apijs(base_url, "post", {"uri": f"/v1/orgs/{org.slug}/team",
                                          "data": {"username": "bob@example.com", "role": "View-only"}},
                       auth=token), 200)
    assert invited["invited"]["username"] == "bob@example.com"
    team = ok(apijs(base_url, "get", {"uri": f"/v1/orgs/{org.slug}/team"}, auth=token))
    assert usernames(team) == ["owner@example.com", "bob@example.com"]
    # Org roles flow down to org products.
    assert ok(apijs(base_url, "getProduct", {"product": product.slug}, auth=bob_token))["product"]["id"] == product.pk
    assert [o["slug"] for o in ok(apijs(base_url, "get", {"uri": "/v1/orgs"}, auth=bob_token))["organizations"]] == [
        org.slug]

    changed = ok(apijs(base_url, "put", {"uri": f"/v1/orgs/{org.slug}/team/bob@example.com",
                                         "data": {"role": "Developer"}}, auth=token))
    assert changed["updated"]["role"]["name"] == "Developer"
    ok(apijs(base_url, "delete", {"uri": f"/v1/orgs/{org.slug}/team/bob@example.com"}, auth=token), 200)
    assert failed(apijs(base_url, "getProduct", {"product": product.slug}, auth=bob_token), 404)
    assert ok(apijs(base_url, "get", {"uri": "/v1/orgs"}, auth=bob_token)) == {"organizations": []}


# --- particle-api-js: OAuth clients --------------------------------------------------------------------


def test_apijs_sandbox_oauth_clients(base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")

    assert ok(apijs(base_url, "listOAuthClients", auth=token))["clients"] == []
    created = client_of(ok(apijs(base_url, "createOAuthClient", {"name": "my app", "type": "installed"},
                                 auth=token), 201))
    assert created["name"] == "my app" and created["type"] == "installed"
    assert created["id"] and created["secret"]
    listed = ok(apijs(base_url, "listOAuthClients", auth=token))["clients"]
    assert [(c["id"], c["name"]) for c in listed] == [(created["id"], "my app")]
    assert "secret" not in listed[0]  # shown only once

    web = client_of(ok(apijs(base_url, "createOAuthClient", {"name": "site", "type": "web",
                                                             "redirect_uri": "https://example.com/cb"},
                             auth=token), 201))
    assert web["redirect_uri"] == "https://example.com/cb"

    renamed = ok(apijs(base_url, "updateOAuthClient", {"clientId": created["id"], "name": "renamed"}, auth=token))
    assert client_of(renamed)["name"] == "renamed"

    assert ok(apijs(base_url, "deleteOAuthClient", {"clientId": created["id"]}, auth=token), 204) == {}  # §3
    assert [c["id"] for c in ok(apijs(base_url, "listOAuthClients", auth=token))["clients"]] == [web["id"]]
    assert failed(apijs(base_url, "deleteOAuthClient", {"clientId": created["id"]}, auth=token), 404)

    # A sandbox client cannot mint product tokens.
    refused = apijs(base_url, "loginAsClientOwner", client_id=web["id"], client_secret=web["secret"])
    failed(refused, 400)


def test_apijs_product_oauth_client_and_login_as_client_owner(base_url):
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers")
    other = make_product(org, name="Other")
    token = api_login(base_url, owner.email)

    created = client_of(ok(apijs(base_url, "createOAuthClient", {"name": "fleet server", "type": "installed",
                                                                 "product": product.slug}, auth=token), 201))
    assert created["id"] and created["secret"] and created["name"] == "fleet server"
    listed = ok(apijs(base_url, "listOAuthClients", {"product": product.pk}, auth=token))["clients"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert ok(apijs(base_url, "listOAuthClients", auth=token))["clients"] == []  # not a sandbox client
    assert ok(apijs(base_url, "listOAuthClients", {"product": other.slug}, auth=token))["clients"] == []

    # loginAsClientOwner: grant_type=client_credentials with the product client's id and secret as form fields.
    tok = ok(apijs(base_url, "loginAsClientOwner", client_id=created["id"], client_secret=created["secret"]))
    assert tok["token_type"] == "bearer" and TOKEN_RE.fullmatch(tok["access_token"]) and tok["expires_in"] > 0
    product_token = tok["access_token"]
    assert stored(product_token).product_id == product.pk
    got = ok(apijs(base_url, "getProduct", {"product": product.slug}, auth=product_token))["product"]
    assert got["id"] == product.pk
    # Bound to exactly one product.
    other_try = apijs(base_url, "getProduct", {"product": other.slug}, auth=product_token)
    failed(other_try, 404)
    assert [p["id"] for p in ok(apijs(base_url, "listProducts", auth=product_token))["products"]] == [product.pk]

    # The product token refreshes (the documented use of refresh_token) through the generic request helper.
    refreshed = ok(apijs(base_url, "request", {"uri": "/oauth/token", "method": "post", "form": {
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": created["id"],
        "client_secret": created["secret"]}}))
    assert refreshed["access_token"] != product_token
    assert ok(apijs(base_url, "getProduct", {"product": product.pk}, auth=refreshed["access_token"]))["product"][
        "id"] == product.pk

    # A wrong secret is refused with JSON.
    bad = apijs(base_url, "loginAsClientOwner", client_id=created["id"], client_secret="wrong")
    assert failed(bad, 401)["error"] == "invalid_client"

    renamed = ok(apijs(base_url, "updateOAuthClient", {"clientId": created["id"], "name": "renamed",
                                                       "product": product.slug}, auth=token))
    assert client_of(renamed)["name"] == "renamed"
    assert ok(apijs(base_url, "deleteOAuthClient", {"clientId": created["id"], "product": product.slug},
                    auth=token), 204) == {}
    assert ok(apijs(base_url, "listOAuthClients", {"product": product.slug}, auth=token))["clients"] == []
    gone = apijs(base_url, "loginAsClientOwner", client_id=created["id"], client_secret=created["secret"])
    assert failed(gone, 401)["error"] == "invalid_client"


def test_apijs_developer_may_manage_product_clients_viewer_may_not(base_url):
    """particle-api.md §9: Developer creates/deletes OAuth clients; View-only only reads them."""
    need(node_available(), "node/npm not installed")
    owner = UserFactory(email="owner@example.com")
    product = make_product(make_org(owner, "Acme"), name="Trackers")
    seat(product, UserFactory(email="dev@example.com"), "developer")
    seat(product, UserFactory(email="viewer@example.com"), "viewer")
    dev, viewer = api_login(base_url, "dev@example.com"), api_login(base_url, "viewer@example.com")

    created = client_of(ok(apijs(base_url, "createOAuthClient", {"name": "by dev", "type": "installed",
                                                                 "product": product.slug}, auth=dev), 201))
    assert [c["id"] for c in ok(apijs(base_url, "listOAuthClients", {"product": product.slug},
                                      auth=viewer))["clients"]] == [created["id"]]
    assert failed(apijs(base_url, "createOAuthClient", {"name": "by viewer", "type": "installed",
                                                        "product": product.slug}, auth=viewer), 403)
    assert failed(apijs(base_url, "deleteOAuthClient", {"clientId": created["id"], "product": product.slug},
                        auth=viewer), 403)
    ok(apijs(base_url, "deleteOAuthClient", {"clientId": created["id"], "product": product.slug}, auth=dev),
       204)


# --- particle-cli 3.43.1 -----------------------------------------------------------------------------------


def test_cli_help_lists_no_product_command_that_avoids_devices(cli):
    """Documents why the CLI tests stop at tokens: `product` has only `device list|add|remove` in 3.43.1."""
    need(node_available(), "node/npm not installed")
    proc = cli.run("help", "product", "device")
    assert proc.returncode == 0, show(proc)
    out = proc.stdout + proc.stderr
    for sub in ("list", "add", "remove"):
        assert re.search(rf"^\s+{sub}\s", out, re.M), out


def test_cli_login_whoami_logout(cli, base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")

    token = cli.login("ada@example.com")
    assert TOKEN_RE.fullmatch(token)
    assert cli.config["username"] == "ada@example.com" and cli.config["apiUrl"] == base_url
    row = stored(token)
    assert row is not None and row.user.email == "ada@example.com"
    assert row.client_label == "CLI2"  # CLI <= 3.43 logs in with CLI2/client_secret_here

    # whoami calls GET /v1/user but prints the saved username first; drop it so the server's `username` shows.
    config = cli.config
    del config["username"]
    cli.config_path.write_text(json.dumps(config))
    proc = cli.run("whoami")
    assert proc.returncode == 0, show(proc)
    assert proc.stdout.strip().splitlines()[-1].lstrip("> ") == "ada@example.com", show(proc)
    cli.config_path.write_text(json.dumps({**config, "username": "ada@example.com"}))

    proc = cli.run("logout")
    assert proc.returncode == 0, show(proc)
    assert "You have been logged out from ada@example.com" in proc.stdout, show(proc)
    assert not cli.config.get("access_token") and not cli.config.get("username")
    assert stored(token) is None
    assert http(base_url, "GET", "/v1/user", token)[0] == 401

    proc = cli.run("whoami")
    assert proc.returncode != 0 and "not logged in" in (proc.stdout + proc.stderr), show(proc)


def test_cli_login_again_while_logged_in(cli, base_url):
    """Logged in, the CLI sends `Bearer <old token>` to /oauth/token; logged out, `Bearer null` (Part B §0.2)."""
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    first = cli.login("ada@example.com")
    second = cli.login("ada@example.com")
    assert second != first
    status, body = http(base_url, "GET", "/v1/user", second)
    assert (status, body["username"]) == (200, "ada@example.com")
    assert http(base_url, "GET", "/v1/user", first)[0] == 200  # a new login does not revoke the old token


def test_cli_login_with_bad_password_fails(cli):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    proc = cli.run("login", "-u", "ada@example.com", "-p", "wrong-password")
    assert proc.returncode != 0, show(proc)
    assert "User credentials are invalid" in proc.stdout + proc.stderr, show(proc)
    assert not cli.config.get("access_token")
    assert AccessToken.objects.count() == 0


def test_cli_login_with_token(cli, base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    token = api_login(base_url, "ada@example.com")
    proc = cli.run("login", "--token", token)
    assert proc.returncode == 0, show(proc)
    assert cli.config["access_token"] == token and cli.config["username"] == "ada@example.com"
    proc = cli.run("whoami")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ada@example.com"), show(proc)


def test_cli_rejects_a_bad_saved_token(cli):
    need(node_available(), "node/npm not installed")
    config = cli.config
    config.update(access_token="0123456789abcdef0123456789abcdef01234567", username="ada@example.com")
    cli.config_path.write_text(json.dumps(config))
    proc = cli.run("whoami")
    assert proc.returncode != 0, show(proc)
    assert "ada@example.com" not in proc.stdout
    # The CLI turns the 401 invalid_token reply into its "token may have expired" hint.
    assert "it appears your access token may have expired" in proc.stdout, show(proc)


def test_cli_token_create_default_and_never_expires(cli, base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    cli_token = cli.login("ada@example.com")

    proc = cli.run("token", "create", input=PASSWORD + "\n")
    assert proc.returncode == 0, show(proc)
    assert "New access token expires on" in proc.stdout, show(proc)
    created = [t for t in TOKEN_RE.findall(proc.stdout) if t != cli_token]
    assert len(created) == 1, show(proc)
    row = stored(created[0])
    assert row.user.email == "ada@example.com" and row.client_label == "user"
    assert abs((row.expires_at - row.created_at).total_seconds() - 7776000) < 10  # no expires_in sent: 90 days
    assert http(base_url, "GET", "/v1/user", created[0])[1]["username"] == "ada@example.com"

    proc = cli.run("token", "create", "--never-expires", input=PASSWORD + "\n")
    assert proc.returncode == 0, show(proc)
    assert "New access token never expires" in proc.stdout, show(proc)
    forever = TOKEN_RE.findall(proc.stdout)
    assert len(forever) == 1 and forever[0] not in (cli_token, created[0])
    assert stored(forever[0]).expires_at is None
    assert http(base_url, "GET", "/v1/user", forever[0])[0] == 200

    proc = cli.run("token", "create", "--expires-in", "3600", input=PASSWORD + "\n")
    assert proc.returncode == 0, show(proc)
    hour = TOKEN_RE.findall(proc.stdout)[-1]
    row = stored(hour)
    remaining = (row.expires_at - row.created_at).total_seconds()
    assert 3590 <= remaining <= 3610, remaining


def test_cli_token_create_with_wrong_password_fails(cli):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    cli.login("ada@example.com")
    before = AccessToken.objects.count()
    proc = cli.run("token", "create", input="wrong-password\n")
    assert proc.returncode != 0, show(proc)
    # The legacy ApiClient of CLI 3.43.1 prints body.error ahead of error_description.
    assert "Error while creating a new access token: invalid_grant" in proc.stdout + proc.stderr, show(proc)
    assert AccessToken.objects.count() == before


def test_cli_token_revoke(cli, base_url):
    need(node_available(), "node/npm not installed")
    UserFactory(email="ada@example.com")
    cli_token = cli.login("ada@example.com")
    victim = api_login(base_url, "ada@example.com")
    bystander = api_login(base_url, "ada@example.com")

    proc = cli.run("token", "revoke", victim)
    assert proc.returncode == 0, show(proc)
    assert "Successfully revoked all provided tokens" in proc.stdout, show(proc)
    assert stored(victim) is None and http(base_url, "GET", "/v1/user", victim)[0] == 401
    assert http(base_url, "GET", "/v1/user", bystander)[0] == 200
    assert http(base_url, "GET", "/v1/user", cli_token)[0] == 200

    # Unknown token: reported as a failure with the server's error_description. (CLI 3.43.1's handler returns -1
    # here, which does not become the exit code: it exits 0, so only the output can be checked.)
    proc = cli.run("token", "revoke", victim)
    assert "Failed to revoke the following access tokens" in proc.stderr, show(proc)
    assert f"token: {victim}; reason: HTTP error 404" in proc.stderr, show(proc)
    assert "Successfully revoked" not in proc.stdout, show(proc)

    # The CLI's own token needs --force (same -1/exit 0 quirk).
    proc = cli.run("token", "revoke", cli_token)
    assert "use --force" in proc.stdout and "Successfully revoked" not in proc.stdout, show(proc)
    assert http(base_url, "GET", "/v1/user", cli_token)[0] == 200
    proc = cli.run("token", "revoke", "--force", cli_token)
    assert proc.returncode == 0 and "Successfully revoked" in proc.stdout, show(proc)
    assert http(base_url, "GET", "/v1/user", cli_token)[0] == 401
