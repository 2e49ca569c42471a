"""Bad input on the sign-in, product, org, team and client routes: each is a JSON 4xx in Particle's error
shape (`{"error", "error_description"}`) with a description that names the problem, and writes nothing.
Also the good side of the same parsers: qs-style form bodies (`product[name]=x`, `scopes[0]=a`) work."""

from __future__ import annotations


import json

import pytest

from console.api.parsers import unflatten
from console.models import (
    AccessToken, Account, AuditEntry, Invitation, OAuthClient, OrgMembership, RefreshToken, User,
)
from console.roles import Role
from console.scoping import Principal
from console.services.clients import client_create
from console.services.teams import api_user_create
from products.models import Product, ProductMembership
from products.services import product_team
from tests.support.api import Api
from tests.support.cast import Cast
from tests.factories import PASSWORD, UserFactory, seat

pytestmark = pytest.mark.django_db


def db_state() -> dict:
    """Row counts and the values the refused requests below could touch."""
    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "email", "friendly_name")),
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "name", "slug")),
        "products": list(Product.objects.order_by("pk").values_list(
            "pk", "name", "slug", "description", "quarantine", "location_opt_in", "platform_id", "account_id")),
        "product_seats": list(ProductMembership.objects.order_by("pk").values_list("pk", "user_id", "role", "scopes")),
        "org_seats": list(OrgMembership.objects.order_by("pk").values_list("pk", "user_id", "role", "scopes")),
        "clients": list(OAuthClient.objects.order_by("pk").values_list("pk", "name", "type", "scope", "redirect_uri")),
        "tokens": list(AccessToken.objects.order_by("pk").values_list("pk", "token_hash")),
        "refresh": RefreshToken.objects.count(),
        "invitations": Invitation.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def assert_json_4xx(r, status: int | None = None, error: str | None = None, mentions: str | None = None) -> dict:
    assert 400 <= r.status_code < 500, (r.status_code, r.content[:300])
    if status is not None:
        assert r.status_code == status, (r.status_code, r.content[:300])
    assert r["Content-Type"].startswith("application/json"), r["Content-Type"]
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_description"), str) and body["error_description"].strip(), body
    if error is not None:
        assert body["error"] == error, body
    if mentions is not None:
        assert mentions.lower() in body["error_description"].lower(), body
    return body


@pytest.fixture
def world(cast: Cast):
    """The cast, plus a plain product member, a product API user and a product client to aim at."""
    member = UserFactory(email="member@example.com")
    seat(cast.product, member, Role.VIEWER)
    robot, _ = api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                               friendly_name="robot", scopes=["products:get"])
    client, _ = client_create(principal=Principal.for_user(cast.owner), product_id=cast.product.pk,
                              product_slug=cast.product.slug, name="server", type="installed")
    cast.vars = {"p": cast.product.pk, "org": cast.org.pk, "member": member.email, "robot": robot.email,
                 "client": client.client_id}
    return cast


def send(world, method: str, path: str, data=None, *, who: str = "owner", form: bool = False):
    return world.api(who).call(method, path.format(**world.vars), data, form=form)


# --- /oauth/token --------------------------------------------------------------------------------

LOGIN = {"grant_type": "password", "username": "owner@example.com", "password": PASSWORD,
         "client_id": "particle-api", "client_secret": "particle-api"}


def _without(*keys, **extra):
    return {**{k: v for k, v in LOGIN.items() if k not in keys}, **extra}


OAUTH_CASES = [
    ("wrong password", _without(password="nope"), 400, "invalid_grant", "credentials"),
    ("unknown user", _without(username="nobody@example.com"), 400, "invalid_grant", "credentials"),
    ("unknown grant type", _without(grant_type="magic"), 400, "unsupported_grant_type", "magic"),
    ("missing grant_type", _without("grant_type"), 400, "invalid_request", "grant_type"),
    ("missing username", _without("username"), 400, "invalid_request", "username"),
    ("missing password", _without("password"), 400, "invalid_request", "password"),
    ("empty password", _without(password=""), 400, "invalid_request", "password"),
    ("expires_in negative", _without(expires_in="-5"), 400, "invalid_request", "expires_in"),
    ("expires_in not a number", _without(expires_in="soon"), 400, "invalid_request", "expires_in"),
    ("expires_in fractional", _without(expires_in="1.5"), 400, "invalid_request", "expires_in"),
    ("expires_in absurdly large", _without(expires_in="99999999999999999999"), 400, "invalid_request", "expires_in"),
    ("expires_at not a date", _without(expires_at="tomorrow"), 400, "invalid_request", "expires_at"),
    ("expires_at in the past", _without(expires_at="2000-01-01T00:00:00Z"), 400, "invalid_request", "expires_at"),
    ("expires_at impossible date", _without(expires_at="2030-13-45T00:00:00Z"), 400, "invalid_request", "expires_at"),
    ("client_credentials without client", {"grant_type": "client_credentials"}, 400, "invalid_client", "client_id"),
    ("client_credentials wrong secret",
     {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"}, 401, "invalid_client", None),
    ("refresh_token garbage", {"grant_type": "refresh_token", "refresh_token": "x"}, 400, "invalid_grant", "refresh"),
]


@pytest.mark.parametrize("data,status,error,mentions", [c[1:] for c in OAUTH_CASES], ids=[c[0] for c in OAUTH_CASES])
def test_token_endpoint_bad_input(world, data, status, error, mentions):
    before = db_state()
    r = Api().call("POST", "/oauth/token", data, form=True)
    assert_json_4xx(r, status, error, mentions)
    assert db_state() == before


def test_wrong_password_body_is_particles_exactly(world):
    r = Api().call("POST", "/oauth/token", _without(password="nope"), form=True)
    assert r.json() == {"error": "invalid_grant", "error_description": "User credentials are invalid"}


def test_malformed_basic_header_is_a_json_4xx(world):
    before = db_state()
    r = Api().call("POST", "/oauth/token", {"grant_type": "password", "username": "a", "password": "b"}, form=True,
                   HTTP_AUTHORIZATION="Basic %%%not-base64%%%")
    assert_json_4xx(r)
    assert db_state() == before


# --- bodies that are not a JSON object -----------------------------------------------------------

WRITE_ROUTES = [
    ("POST", "/v1/orgs/{org}/products"),
    ("POST", "/v1/user/products"),
    ("PUT", "/v1/products/{p}"),
    ("POST", "/v1/products/{p}/team"),
    ("PUT", "/v1/products/{p}/team/{member}"),
    ("PUT", "/v1/products/{p}/team/{robot}"),
    ("POST", "/v1/products/{p}/clients"),
    ("PUT", "/v1/products/{p}/clients/{client}"),
    ("POST", "/v1/orgs"),
    ("POST", "/v1/orgs/{org}/team"),
    ("POST", "/v1/clients"),
    ("PUT", "/v1/user"),
    ("POST", "/v1/user/mfa-enable"),
    ("PUT", "/v1/user/mfa-disable"),
]

RAW_BODIES = [
    ("malformed JSON", "application/json", '{"name": "x",', 400, "invalid_request", "parsed"),
    ("JSON array", "application/json", '[{"name": "x"}]', 400, "invalid_request", "JSON object"),
    ("JSON string", "application/json", '"name"', 400, "invalid_request", "JSON object"),
    ("JSON number", "application/json", "42", 400, "invalid_request", "JSON object"),
    ("text/plain", "text/plain", "name=x", 415, "unsupported_media_type", "text/plain"),
    ("XML", "application/xml", "<product><name>x</name></product>", 415, "unsupported_media_type", "xml"),
]


@pytest.mark.parametrize("label,content_type,raw,status,error,mentions", RAW_BODIES, ids=[b[0] for b in RAW_BODIES])
@pytest.mark.parametrize("method,path", WRITE_ROUTES, ids=[f"{m} {p}" for m, p in WRITE_ROUTES])
def test_body_that_is_not_a_json_object(world, method, path, label, content_type, raw, status, error, mentions):
    api = world.api("owner")
    before = db_state()
    fn = getattr(api.client, method.lower())
    r = fn(path.format(**world.vars), raw, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {api.token}")
    assert_json_4xx(r, status, error, mentions)
    assert db_state() == before


# --- field validation ----------------------------------------------------------------------------

LONG = "x" * 101

FIELD_CASES = [
    # products
    ("product: no name", "POST", "/v1/orgs/{org}/products", {"product": {"platform_id": 13}}, 400, "name"),
    ("product: blank name", "POST", "/v1/orgs/{org}/products", {"product": {"name": "   ", "platform_id": 13}}, 400, "name"),
    ("product: empty body", "POST", "/v1/orgs/{org}/products", {}, 400, "name"),
    ("product: no platform_id", "POST", "/v1/orgs/{org}/products", {"product": {"name": "New"}}, 400, "platform_id"),
    ("product: platform 99", "POST", "/v1/orgs/{org}/products", {"product": {"name": "New", "platform_id": 99}}, 400, "99"),
    ("product: platform 'abc'", "POST", "/v1/orgs/{org}/products", {"product": {"name": "New", "platform_id": "abc"}},
     400, "platform_id"),
    ("product: platform true", "POST", "/v1/orgs/{org}/products", {"product": {"name": "New", "platform_id": True}},
     400, "platform_id"),
    ("sandbox product: platform 99", "POST", "/v1/user/products", {"product": {"name": "New", "platform_id": 99}},
     400, "99"),
    ("product: duplicate name, other case", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "tRACKERS", "platform_id": 13}}, 400, "already exists"),
    ("product: duplicate name, padded", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "  Trackers ", "platform_id": 13}}, 400, "already exists"),
    ("product: duplicate of a sandbox product's name", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "OWNER SANDBOX PRODUCT", "platform_id": 13}}, 400, "already exists"),
    ("product: duplicate slug", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "Brand New", "slug": "trackers", "platform_id": 13}}, 400, "slug"),
    ("product: duplicate slug, upper case", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "Brand New", "slug": "TRACKERS", "platform_id": 13}}, 400, "slug"),
    ("product: slug with spaces", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "Brand New", "slug": "has spaces", "platform_id": 13}}, 400, "slug"),
    ("product: all-digit slug (would read as an id)", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "Brand New", "slug": "12345", "platform_id": 13}}, 400, "slug"),
    ("product: name of 101 chars", "POST", "/v1/orgs/{org}/products", {"product": {"name": LONG, "platform_id": 13}},
     400, "100"),
    ("product: name is a list", "POST", "/v1/orgs/{org}/products", {"product": {"name": ["x"], "platform_id": 13}},
     400, "name"),
    ("product: name is an object", "POST", "/v1/orgs/{org}/products", {"product": {"name": {"a": 1}, "platform_id": 13}},
     400, "name"),
    ("product: NUL in name", "POST", "/v1/orgs/{org}/products", {"product": {"name": "a\x00b", "platform_id": 13}},
     400, "name"),
    ("product: settings not an object", "POST", "/v1/orgs/{org}/products",
     {"product": {"name": "New", "platform_id": 13, "settings": "quarantine"}}, 400, "settings"),
    ("product update: name of 101 chars", "PUT", "/v1/products/{p}", {"name": LONG}, 400, "name"),
    ("product update: blank name", "PUT", "/v1/products/{p}", {"name": " "}, 400, "name"),
    ("product update: duplicate name", "PUT", "/v1/products/{p}", {"name": "owner sandbox product"}, 400, "already"),
    ("product update: name is a list", "PUT", "/v1/products/{p}", {"name": ["x"]}, 400, "name"),
    ("product update: platform change", "PUT", "/v1/products/{p}", {"platform_id": 32}, 400, "platform"),
    ("product update: quarantine 'maybe'", "PUT", "/v1/products/{p}", {"settings": {"quarantine": "maybe"}},
     400, "quarantine"),
    ("product update: location not an object", "PUT", "/v1/products/{p}", {"settings": {"location": "on"}},
     400, "location"),
    # organizations
    ("org: no name", "POST", "/v1/orgs", {}, 400, "name"),
    ("org: blank name", "POST", "/v1/orgs", {"name": "  "}, 400, "name"),
    ("org: name of 101 chars", "POST", "/v1/orgs", {"name": LONG}, 400, "100"),
    ("org: duplicate slug", "POST", "/v1/orgs", {"name": "Acme Two", "slug": "acme"}, 400, "slug"),
    # Org names may repeat (only slugs are unique): refusing one would reveal another tenant's org.
    ("org: slug with capitals", "POST", "/v1/orgs", {"name": "Acme Three", "slug": "AcmeThree"}, 400, "slug"),
    ("org: all-digit slug (would read as an id)", "POST", "/v1/orgs", {"name": "Numbers", "slug": "12345"}, 400, "slug"),
    ("org: name is a list", "POST", "/v1/orgs", {"name": ["Acme"]}, 400, "name"),
    ("org: slug is a list", "POST", "/v1/orgs", {"name": "Listy", "slug": ["listy"]}, 400, "slug"),
    # team: people
    ("invite: unknown role", "POST", "/v1/products/{p}/team", {"username": "outsider@example.com", "role": "Owner"},
     400, "role"),
    ("invite: owner label is not a role", "POST", "/v1/products/{p}/team",
     {"username": "outsider@example.com", "role": "Administrator (Owner)"}, 400, "role"),
    ("invite: role is a number", "POST", "/v1/orgs/{org}/team", {"username": "outsider@example.com", "role": 2},
     400, "role"),
    ("invite: no username", "POST", "/v1/products/{p}/team", {"role": "Support"}, 400, "username"),
    ("invite: not an email", "POST", "/v1/products/{p}/team", {"username": "ghost-at-example.com"}, 400,
     "username must be a valid email address"),
    ("invite: an API user's address", "POST", "/v1/products/{p}/team", {"username": "{robot}"}, 400, None),
    ("invite: already a member", "POST", "/v1/products/{p}/team", {"username": "support@example.com"}, 400,
     "already"),
    ("invite: already a member, other case", "POST", "/v1/products/{p}/team", {"username": "MEMBER@example.com"},
     400, "already"),
    ("invite: the owner", "POST", "/v1/products/{p}/team", {"username": "owner@example.com"}, 400, "already"),
    ("org invite: already a member", "POST", "/v1/orgs/{org}/team", {"username": "viewer@example.com"}, 400, "already"),
    ("change role: unknown role", "PUT", "/v1/products/{p}/team/{member}", {"role": "boss"}, 400, "role"),
    ("change role: no role", "PUT", "/v1/products/{p}/team/{member}", {}, 400, "role"),
    ("change role: empty role", "PUT", "/v1/products/{p}/team/{member}", {"role": ""}, 400, "role"),
    ("org change role: unknown role", "PUT", "/v1/orgs/{org}/team/viewer@example.com", {"role": "superuser"}, 400,
     "role"),
    ("change role: a role for an API user", "PUT", "/v1/products/{p}/team/{robot}", {"role": "Developer"}, 400,
     "role"),
    # team: API users
    ("api user: unknown scope", "POST", "/v1/products/{p}/team",
     {"friendly_name": "bot", "scopes": ["devices:list", "devices:explode"]}, 400, "devices:explode"),
    ("api user: empty scopes", "POST", "/v1/products/{p}/team", {"friendly_name": "bot", "scopes": []}, 400, "scopes"),
    ("api user: blank scope string", "POST", "/v1/products/{p}/team", {"friendly_name": "bot", "scopes": " "}, 400,
     "scopes"),
    ("api user: scopes an object", "POST", "/v1/products/{p}/team", {"friendly_name": "bot", "scopes": {"a": 1}},
     400, "scopes"),
    ("api user: scopes with a number", "POST", "/v1/products/{p}/team", {"friendly_name": "bot", "scopes": [1]},
     400, "scopes"),
    ("api user: no scopes", "POST", "/v1/products/{p}/team", {"friendly_name": "bot"}, 400, "scopes"),
    ("api user: no friendly_name", "POST", "/v1/products/{p}/team", {"scopes": ["devices:list"]}, 400,
     "friendly_name"),
    ("api user: friendly_name of 201 chars", "POST", "/v1/products/{p}/team",
     {"friendly_name": "x" * 201, "scopes": ["devices:list"]}, 400, "friendly_name"),
    ("api user: friendly_name is a list", "POST", "/v1/products/{p}/team",
     {"friendly_name": ["bot"], "scopes": ["devices:list"]}, 400, "friendly_name"),
    ("org api user: unknown scope", "POST", "/v1/orgs/{org}/team", {"friendly_name": "bot", "scopes": ["nope:nope"]},
     400, "nope:nope"),
    ("api user update: unknown scope", "PUT", "/v1/products/{p}/team/{robot}", {"scopes": ["root:all"]}, 400,
     "root:all"),
    ("api user update: empty scopes", "PUT", "/v1/products/{p}/team/{robot}", {"scopes": []}, 400, "scopes"),
    ("api user update: blank friendly_name", "PUT", "/v1/products/{p}/team/{robot}", {"friendly_name": " "}, 400,
     "friendly_name"),
    ("api user update: friendly_name of 201 chars", "PUT", "/v1/products/{p}/team/{robot}",
     {"friendly_name": "x" * 201}, 400, "friendly_name"),
    ("scopes for a person", "PUT", "/v1/products/{p}/team/{member}", {"scopes": ["devices:list"]}, 400, None),
    # OAuth clients
    ("client: no name", "POST", "/v1/products/{p}/clients", {"type": "installed"}, 400, "name"),
    ("client: no type", "POST", "/v1/products/{p}/clients", {"name": "c"}, 400, "type"),
    ("client: unknown type", "POST", "/v1/products/{p}/clients", {"name": "c", "type": "desktop"}, 400, "type"),
    ("client: web without redirect_uri", "POST", "/v1/products/{p}/clients", {"name": "c", "type": "web"}, 400,
     "redirect_uri"),
    ("client: redirect_uri not a URL", "POST", "/v1/products/{p}/clients",
     {"name": "c", "type": "web", "redirect_uri": "not a url"}, 400, "redirect_uri"),
    ("client: javascript: redirect_uri", "POST", "/v1/products/{p}/clients",
     {"name": "c", "type": "web", "redirect_uri": "javascript:alert(1)"}, 400, "redirect_uri"),
    ("client: redirect_uri longer than its column", "POST", "/v1/products/{p}/clients",
     {"name": "c", "type": "web", "redirect_uri": "https://example.com/" + "a" * 300}, 400, "redirect_uri"),
    ("client: unknown scope", "POST", "/v1/products/{p}/clients",
     {"name": "c", "type": "installed", "scope": "devices:list"}, 400, "scope"),
    ("client: name of 201 chars", "POST", "/v1/products/{p}/clients", {"name": "x" * 201, "type": "installed"},
     400, "name"),
    ("client: name is a list", "POST", "/v1/products/{p}/clients", {"name": ["c"], "type": "installed"}, 400, "name"),
    ("client update: blank name", "PUT", "/v1/products/{p}/clients/{client}", {"name": " "}, 400, "name"),
    ("client update: unknown scope", "PUT", "/v1/products/{p}/clients/{client}", {"scope": "*:* root"}, 400, "scope"),
    ("sandbox client: web without redirect_uri", "POST", "/v1/clients", {"name": "c", "type": "web"}, 400,
     "redirect_uri"),
    ("sandbox client: no type", "POST", "/v1/clients", {"name": "c"}, 400, "type"),
]


@pytest.mark.parametrize("method,path,data,status,mentions", [c[1:] for c in FIELD_CASES],
                         ids=[c[0] for c in FIELD_CASES])
def test_field_validation(world, method, path, data, status, mentions):
    data = {k: (v.format(**world.vars) if isinstance(v, str) and "{" in v else v) for k, v in data.items()}
    before = db_state()
    r = send(world, method, path, data)
    assert_json_4xx(r, status, mentions=mentions)
    assert db_state() == before, f"refused ({r.status_code}) but wrote: {r.content[:200]!r}"


@pytest.mark.parametrize("method,path,data", [
    ("POST", "/v1/orgs/{org}/products", {"product[platform_id]": "13"}),
    ("POST", "/v1/orgs/{org}/products", {"product[name]": "Form", "product[platform_id]": "99"}),
    ("POST", "/v1/products/{p}/team", {"friendly_name": "bot", "scopes[0]": "devices:list", "scopes[1]": "bogus:x"}),
    ("POST", "/v1/products/{p}/clients", {"name": "c", "type": "web"}),
    ("POST", "/v1/orgs", {"name": ""}),
])
def test_form_bodies_are_validated_the_same(world, method, path, data):
    before = db_state()
    r = send(world, method, path, data, form=True)
    assert_json_4xx(r, 400)
    assert db_state() == before


# --- qs-style form bodies that must work ---------------------------------------------------------


def test_form_product_with_brackets(world):
    r = send(world, "POST", "/v1/orgs/{org}/products",
             {"product[name]": "Form Made", "product[platform_id]": "13", "product[description]": "via curl",
              "product[settings][location][opt_in]": "true", "product[settings][quarantine]": "false"}, form=True)
    assert r.status_code == 201, r.content
    made = Product.objects.get(name="Form Made")
    assert (made.platform_id, made.description, made.location_opt_in, made.quarantine) == (13, "via curl", True, False)
    assert made.account_id == world.org.pk


def test_form_flat_sandbox_product(world):
    r = send(world, "POST", "/v1/user/products", {"name": "Flat Form", "platform_id": "32"}, form=True)
    assert r.status_code == 201, r.content
    assert Product.objects.get(name="Flat Form").account.is_sandbox


def test_form_product_update_with_brackets(world):
    r = send(world, "PUT", "/v1/products/{p}", {"product[description]": "edited",
                                                "product[settings][quarantine]": "false"}, form=True)
    assert r.status_code == 200, r.content
    world.product.refresh_from_db()
    assert world.product.description == "edited" and world.product.quarantine is False


@pytest.mark.parametrize("style", ["indexed", "brackets", "plain string"])
def test_form_scopes_for_api_users(world, style):
    if style == "indexed":
        data = {"friendly_name": "bot", "scopes[0]": "devices:list", "scopes[1]": "products:get"}
    elif style == "brackets":
        data = {"friendly_name": "bot", "scopes[]": ["devices:list", "products:get"]}
    else:
        data = {"friendly_name": "bot", "scopes": "devices:list products:get"}
    r = send(world, "POST", "/v1/products/{p}/team", data, form=True)
    assert r.status_code == 200, r.content
    seat_ = ProductMembership.objects.get(user__email=r.json()["created"]["username"])
    assert sorted(seat_.scopes) == ["devices:list", "products:get"]


def test_form_invite_and_role_change(world):
    UserFactory(email="newbie@example.com")
    r = send(world, "POST", "/v1/products/{p}/team", {"username": "newbie@example.com", "role": "View-only"}, form=True)
    assert r.status_code == 200, r.content
    r = send(world, "PUT", "/v1/products/{p}/team/newbie@example.com", {"role": "Support"}, form=True)
    assert r.status_code == 200, r.content
    assert ProductMembership.objects.get(user__email="newbie@example.com").role == Role.SUPPORT


def test_form_client_with_scope(world):
    r = send(world, "POST", "/v1/products/{p}/clients", {"name": "shop", "type": "web",
                                                         "redirect_uri": "https://shop.example.com/cb",
                                                         "scope": "customers:create"}, form=True)
    assert r.status_code == 201, r.content
    client = OAuthClient.objects.get(client_id=r.json()["client"]["id"])
    assert (client.redirect_uri, client.scope) == ("https://shop.example.com/cb", "customers:create")


def test_json_body_for_oauth_token_is_accepted(world):
    # api-js and the CLI post a form; a JSON body with the same fields is accepted too, and answered in JSON.
    api = Api()
    r = api.client.post("/oauth/token", json.dumps(LOGIN), content_type="application/json")
    assert r["Content-Type"].startswith("application/json")
    assert r.status_code == 200, r.content
    assert r.json()["token_type"] == "bearer" and r.json()["access_token"]


@pytest.mark.parametrize("pairs,expected", [
    ([("groups[0]", "a"), ("groups[1]", "b")], {"groups": ["a", "b"]}),
    ([("groups[1]", "b"), ("groups[0]", "a")], {"groups": ["a", "b"]}),
    ([(f"g[{i}]", str(i)) for i in (10, 2, 1, 0)], {"g": ["0", "1", "2", "10"]}),  # numeric, not string, order
    ([("groups[]", "a"), ("groups[]", "b")], {"groups": ["a", "b"]}),
    ([("account_info[first_name]", "Ada"), ("account_info[last_name]", "L")],
     {"account_info": {"first_name": "Ada", "last_name": "L"}}),
    ([("product[settings][location][opt_in]", "true")], {"product": {"settings": {"location": {"opt_in": "true"}}}}),
    ([("a[0][name]", "x"), ("a[1][name]", "y")], {"a": [{"name": "x"}, {"name": "y"}]}),
    ([("plain", "1"), ("plain", "2")], {"plain": "2"}),
])
def test_unflatten(pairs, expected):
    assert unflatten(pairs) == expected


# --- numeric-looking names must not make a product or org unreachable by slug --------------------


def test_product_named_like_a_number_is_reachable_by_its_slug(world):
    r = send(world, "POST", "/v1/orgs/{org}/products", {"product": {"name": "2024", "platform_id": 13}})
    assert r.status_code == 201, r.content
    made = r.json()["product"]
    got = send(world, "GET", f"/v1/products/{made['slug']}")
    assert got.status_code == 200 and got.json()["product"]["id"] == made["id"], (made["slug"], got.content)


def test_org_named_like_a_number_is_reachable_by_its_slug(world):
    r = send(world, "POST", "/v1/orgs", {"name": "4242"})
    assert r.status_code == 201, r.content
    made = r.json()["organization"]
    got = send(world, "GET", f"/v1/orgs/{made['slug']}")
    assert got.status_code == 200 and got.json()["organization"]["id"] == made["id"], (made["slug"], got.content)


# --- unknown things ------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", [
    ("PUT", "/v1/products/{p}/team/ghost@example.com"),
    ("DELETE", "/v1/products/{p}/team/ghost@example.com"),
    ("PUT", "/v1/products/{p}/team/{member}/token"),  # a person has no API token
    ("PUT", "/v1/products/{p}/clients/no-such-client"),
    ("DELETE", "/v1/products/{p}/clients/no-such-client"),
    ("DELETE", "/v1/clients/{client}"),  # a product client is not a sandbox client
    ("GET", "/v1/products/999999"),
    ("GET", "/v1/orgs/no-such-org"),
])
def test_unknown_targets_are_json_404(world, method, path):
    before = db_state()
    r = send(world, method, path, {"role": "Support"} if method == "PUT" else None)
    assert_json_4xx(r, 404)
    assert db_state() == before
