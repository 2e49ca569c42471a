"""Who may call what: every product/org/team/client route of the API against the whole cast.

The cast (tests/conftest.py): an org "Acme" owning the product "Trackers"; `owner` created the org
(Administrator (Owner)); `admin` and `viewer` hold org seats (their role applies to every org product);
`developer` and `support` hold seats on the product only; `outsider` owns another org; `api_with` and
`api_without` are product API users with and without the scopes these routes need; `product_token` comes
from a product OAuth client (client_credentials).

Rules (particle-api.md §3, §4, §9, §10; DESIGN.md §3): outsiders get 404, never 403, and never see the
product's name or slug; a caller who can see the product but whose role or scopes do not allow the action
gets 403; API users and product tokens get 400 `unauthorized` on user-only routes; a product token acts
like a Developer on its own product. Every refused request leaves the database exactly as it was.
"""

from __future__ import annotations


from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.services import clients as client_services
from console.services import users as user_services
from console.models import AccessToken, Account, OAuthClient, OrgMembership, User, UserMfa
from console.services import mfa as mfa_services
from console.roles import Role
from console.scoping import Principal
from console.errors import Forbidden
from console.services.teams import (
    api_user_create, api_user_regenerate, api_user_update, org_team, team_invite, team_remove, team_set_role,
)
from products.models import Product, ProductMembership
from products.services import product_move, product_team
from tests.support.api import Api, user_token
from tests.support.cast import Cast
from tests.support.db_state import team_state
from tests.support.errors import assert_json_error
from tests.support.mfa import enrol, steps
from tests.support.routes import TEAM_MATRIX_ROUTES
from tests.factories import PASSWORD, UserFactory, make_org, make_product, seat

pytestmark = pytest.mark.django_db

ROLES = ("owner", "admin", "developer", "support", "viewer", "outsider", "api_with", "api_without", "product_token")
PEOPLE = ROLES[:6]
NON_USERS = ("api_with", "api_without", "product_token")


# --- helpers -------------------------------------------------------------------------------------


def secret_words(cast: Cast) -> list[str]:
    """What an outsider must never read: the product's and the org's names and slugs."""
    return [cast.product.name, cast.product.slug, cast.org.name, cast.org.slug]


def assert_no_leak(cast: Cast, r) -> None:
    text = r.content.decode(errors="replace").lower()
    for word in secret_words(cast):
        assert word.lower() not in text, f"outsider response leaks {word!r}: {text[:300]}"


def works(token: str, path: str) -> int:
    return Api(token).get(path).status_code


# --- the cells ---------------------------------------------------------------------------------


@dataclass
class Target:
    """One cell's request, built fresh for the case, and what a success must have done."""

    path: str
    body: dict | Callable[[str], dict] | None = None  # a callable gets the role: a body that is the caller's own
    verify: Callable[[Cast, str, object], None] | None = None  # (cast, role, response) after a 2xx
    write: bool = True
    extra: dict = field(default_factory=dict)


def _read(path_fmt: str) -> Callable[[Cast], Target]:
    def arrange(cast: Cast) -> Target:
        return Target(path_fmt.format(p=cast.product.pk, org=cast.org.pk), write=False)

    return arrange


def _product_list(cast: Cast) -> Target:
    reaches = {"owner", "admin", "developer", "support", "viewer", "product_token"}

    def verify(cast, role, r):
        ids = [p["id"] for p in r.json()["products"]]
        assert (cast.product.pk in ids) == (role in reaches), (role, ids)
        if role == "outsider":
            assert cast.outsider_product.pk in ids and cast.sandbox_product.pk not in ids
        if role in NON_USERS:
            assert cast.sandbox_product.pk not in ids and cast.outsider_product.pk not in ids

    return Target("/v1/products", write=False, verify=verify)


def _org_list(cast: Cast) -> Target:
    def verify(cast, role, r):
        slugs = [o["slug"] for o in r.json()["organizations"]]
        assert (cast.org.slug in slugs) == (role in ("owner", "admin", "viewer")), (role, slugs)

    return Target("/v1/orgs", write=False, verify=verify)


def _product_get(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert r.json()["product"]["id"] == cast.product.pk

    return Target(f"/v1/products/{cast.product.pk}", write=False, verify=verify)


def _product_put(cast: Cast) -> Target:
    def verify(cast, role, r):
        cast.product.refresh_from_db()
        assert cast.product.description == "changed by the matrix"
        assert cast.product.quarantine is False

    return Target(f"/v1/products/{cast.product.pk}",
                  {"product": {"description": "changed by the matrix", "settings": {"quarantine": False}}},
                  verify=verify)


def _org_product_create(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert Product.objects.get(name="Fresh Org Product").account_id == cast.org.pk

    return Target(f"/v1/orgs/{cast.org.pk}/products", {"product": {"name": "Fresh Org Product", "platform_id": 13}},
                  verify=verify)


def _invitee(cast: Cast) -> User:
    return UserFactory(email="invitee@example.com")


def _org_invite(cast: Cast) -> Target:
    _invitee(cast)

    def verify(cast, role, r):
        assert r.json()["invited"]["username"] == "invitee@example.com"
        assert OrgMembership.objects.get(account=cast.org, user__email="invitee@example.com").role == Role.SUPPORT

    return Target(f"/v1/orgs/{cast.org.pk}/team", {"username": "invitee@example.com", "role": "Support"},
                  verify=verify)


def _org_member(cast: Cast) -> User:
    user = UserFactory(email="orgmember@example.com")
    seat(cast.org, user, Role.VIEWER)
    return user


def _org_set_role(cast: Cast) -> Target:
    member = _org_member(cast)

    def verify(cast, role, r):
        assert OrgMembership.objects.get(account=cast.org, user=member).role == Role.SUPPORT

    return Target(f"/v1/orgs/{cast.org.pk}/team/{member.email}", {"role": "Support"}, verify=verify)


def _org_remove(cast: Cast) -> Target:
    member = _org_member(cast)

    def verify(cast, role, r):
        assert not OrgMembership.objects.filter(account=cast.org, user=member).exists()

    return Target(f"/v1/orgs/{cast.org.pk}/team/{member.email}", verify=verify)


def _product_invite(cast: Cast) -> Target:
    _invitee(cast)

    def verify(cast, role, r):
        assert ProductMembership.objects.get(product=cast.product, user__email="invitee@example.com").role == Role.SUPPORT

    return Target(f"/v1/products/{cast.product.pk}/team", {"username": "invitee@example.com", "role": "Support"},
                  verify=verify)


def _product_member(cast: Cast) -> User:
    user = UserFactory(email="productmember@example.com")
    seat(cast.product, user, Role.VIEWER)
    return user


def _product_set_role(cast: Cast) -> Target:
    member = _product_member(cast)

    def verify(cast, role, r):
        assert ProductMembership.objects.get(product=cast.product, user=member).role == Role.SUPPORT

    return Target(f"/v1/products/{cast.product.pk}/team/{member.email}", {"role": "Support"}, verify=verify)


def _product_remove(cast: Cast) -> Target:
    member = _product_member(cast)

    def verify(cast, role, r):
        assert not ProductMembership.objects.filter(product=cast.product, user=member).exists()

    return Target(f"/v1/products/{cast.product.pk}/team/{member.email}", verify=verify)


def _product_api_token(cast: Cast) -> Target:
    api_user, old = api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                                    friendly_name="fresh robot", scopes=["products:get"])

    def verify(cast, role, r):
        new = r.json()["updated"]["tokens"][0]["token"]
        assert new != old
        assert works(old, f"/v1/products/{cast.product.pk}") == 401
        assert works(new, f"/v1/products/{cast.product.pk}") == 200
        assert AccessToken.objects.filter(user=api_user).count() == 1

    return Target(f"/v1/products/{cast.product.pk}/team/{api_user.email}/token", verify=verify,
                  extra={"old_token": old})


def _org_api_token(cast: Cast) -> Target:
    api_user, old = api_user_create(principal=Principal.for_user(cast.owner), team=org_team(cast.org),
                                    friendly_name="fresh org robot", scopes=["products:get"])

    def verify(cast, role, r):
        new = r.json()["updated"]["tokens"][0]["token"]
        assert new != old
        assert works(old, f"/v1/products/{cast.product.pk}") == 401
        assert works(new, f"/v1/products/{cast.product.pk}") == 200
        assert AccessToken.objects.filter(user=api_user).count() == 1

    return Target(f"/v1/orgs/{cast.org.pk}/team/{api_user.email}/token", verify=verify, extra={"old_token": old})


def _product_client_create(cast: Cast) -> Target:
    def verify(cast, role, r):
        client = r.json()["client"]
        assert client["secret"]
        assert OAuthClient.objects.get(client_id=client["id"]).product_id == cast.product.pk

    return Target(f"/v1/products/{cast.product.pk}/clients", {"name": "fresh client", "type": "installed"},
                  verify=verify)


def _fresh_product_client(cast: Cast) -> OAuthClient:
    client, _ = client_services.client_create(principal=Principal.for_user(cast.owner), product_id=cast.product.pk,
                                       product_slug=cast.product.slug, name="to be changed", type="installed")
    return client


def _product_client_update(cast: Cast) -> Target:
    client = _fresh_product_client(cast)

    def verify(cast, role, r):
        client.refresh_from_db()
        assert client.name == "renamed"

    return Target(f"/v1/products/{cast.product.pk}/clients/{client.client_id}", {"name": "renamed"}, verify=verify)


def _product_client_delete(cast: Cast) -> Target:
    client = _fresh_product_client(cast)

    def verify(cast, role, r):
        assert not OAuthClient.objects.filter(pk=client.pk).exists()

    return Target(f"/v1/products/{cast.product.pk}/clients/{client.client_id}", verify=verify)


def _user_clients(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert r.json()["ok"] is True
        # sandbox clients only: the product's clients never show up here
        assert all("product_id" not in c for c in r.json()["clients"])

    return Target("/v1/clients", write=False, verify=verify)


def _user_client_create(cast: Cast) -> Target:
    def verify(cast, role, r):
        client = OAuthClient.objects.get(client_id=r.json()["client"]["id"])
        assert client.owner.email == f"{role}@example.com" and client.product_id is None

    return Target("/v1/clients", {"name": "my sandbox client", "type": "installed"}, verify=verify)


def _fresh_sandbox_client(cast: Cast) -> OAuthClient:
    """A sandbox client of the owner: only its owner may change or delete it."""
    client, _ = client_services.client_create(principal=Principal.for_user(cast.owner), owner=cast.owner,
                                       name="owner's app", type="installed")
    return client


def _user_client_update(cast: Cast) -> Target:
    client = _fresh_sandbox_client(cast)

    def verify(cast, role, r):
        client.refresh_from_db()
        assert client.name == "renamed" and r.json()["client"]["name"] == "renamed"

    return Target(f"/v1/clients/{client.client_id}", {"name": "renamed"}, verify=verify)


def _user_client_delete(cast: Cast) -> Target:
    client = _fresh_sandbox_client(cast)

    def verify(cast, role, r):
        assert not OAuthClient.objects.filter(pk=client.pk).exists()

    return Target(f"/v1/clients/{client.client_id}", verify=verify)


def _user_update(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert User.objects.get(email=f"{role}@example.com").first_name == "Matrix"

    return Target("/v1/user", {"account_info": {"first_name": "Matrix"}}, verify=verify)


def _token_list(cast: Cast) -> Target:
    def verify(cast, role, r):
        listed = r.json()
        assert isinstance(listed, list) and len(listed) == AccessToken.objects.filter(
            user__email=f"{role}@example.com", kind=AccessToken.Kind.USER).count() >= 1

    return Target("/v1/access_tokens", write=False, verify=verify)


def _token_revoke_all(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert r.json() == {"ok": True}
        assert works(cast.tokens[role], "/v1/user") == 401
        assert not AccessToken.objects.filter(user__email=f"{role}@example.com", kind=AccessToken.Kind.USER).exists()

    return Target("/v1/access_tokens", verify=verify)


def _token_revoke_current(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert r.json() == {"ok": True}
        assert works(cast.tokens[role], "/v1/access_tokens/current") == 401

    return Target("/v1/access_tokens/current", verify=verify)


def _org_create(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert Account.objects.get(name="Fresh Org").owner.email == f"{role}@example.com"

    return Target("/v1/orgs", {"name": "Fresh Org"}, verify=verify)


def _sandbox_product_create(cast: Cast) -> Target:
    def verify(cast, role, r):
        made = Product.objects.get(name="Fresh Sandbox Product")
        assert made.account.is_sandbox and made.account.owner.email == f"{role}@example.com"

    return Target("/v1/user/products", {"product": {"name": "Fresh Sandbox Product", "platform_id": 13}},
                  verify=verify)


def _sandbox_product_list(cast: Cast) -> Target:
    def verify(cast, role, r):
        listed = [p["id"] for p in r.json()["products"]]
        assert listed == list(Product.objects.filter(account__kind="sandbox", account__owner__email=f"{role}@example.com")
                              .order_by("pk").values_list("pk", flat=True)), (role, listed)
        assert cast.product.pk not in listed and cast.outsider_product.pk not in listed
        if role == "owner":
            assert listed == [cast.sandbox_product.pk]

    return Target("/v1/user/products", write=False, verify=verify)


def _user(cast: Cast) -> Target:
    def verify(cast, role, r):
        assert r.json()["username"] == f"{role}@example.com"

    return Target("/v1/user", write=False, verify=verify)


def _mfa_begin(cast: Cast) -> Target:
    def verify(cast, role, r):
        row = UserMfa.objects.get(user__email=f"{role}@example.com")
        assert not row.enabled and r.json()["secret"] == row.secret

    return Target("/v1/user/mfa-enable", verify=verify)


def _mfa_confirm(cast: Cast) -> Target:
    """Every person has a pending enrolment; each caller confirms their own with a code from their secret."""
    pending = {name: mfa_services.mfa_enrol_begin(user=getattr(cast, name)) for name in PEOPLE}

    def body(role):
        if role not in pending:
            return {"mfa_token": "x", "otp": "123456"}
        return {"mfa_token": pending[role].mfa_token, "otp": steps(pending[role].secret).current}

    def verify(cast, role, r):
        assert r.json()["enrolled"] is True and len(r.json()["tokens"]) == 10
        assert UserMfa.objects.get(user__email=f"{role}@example.com").enabled

    return Target("/v1/user/mfa-enable", body, verify=verify)


def _mfa_disable(cast: Cast) -> Target:
    for name in PEOPLE:
        enrol(getattr(cast, name))

    def verify(cast, role, r):
        assert r.json() == {"ok": True}
        assert not UserMfa.objects.filter(user__email=f"{role}@example.com").exists()

    return Target("/v1/user/mfa-disable", {"current_password": PASSWORD}, verify=verify)


def _current_token(cast: Cast) -> Target:
    def verify(cast, role, r):
        body = r.json()
        assert set(body) >= {"expires_at", "client", "scopes", "orgs"}
        slugs = [o["slug"] for o in body["orgs"]]
        assert (cast.org.slug in slugs) == (role in ("owner", "admin", "viewer")), (role, slugs)

    return Target("/v1/access_tokens/current", write=False, verify=verify)


ALL_200 = (200,) * 9
USERS_ONLY = lambda ok: (ok,) * 6 + (400,) * 3  # noqa: E731 - a table shorthand
OWNER_ONLY = lambda ok: (ok,) + (404,) * 5 + (400,) * 3  # noqa: E731 - the owner's own sandbox client

#  endpoint                                            arrange                    own  adm  dev  sup  view out  api+ api- prod
MATRIX: list[tuple[str, Callable[[Cast], Target], tuple[int, ...]]] = [
    ("GET /v1/products/:p",                           _product_get,             (200, 200, 200, 200, 200, 404, 200, 403, 200)),
    ("PUT /v1/products/:p",                           _product_put,             (200, 200, 403, 403, 403, 404, 403, 403, 403)),
    ("GET /v1/products",                              _product_list,            ALL_200),
    ("GET /v1/orgs",                                  _org_list,                ALL_200),
    ("GET /v1/orgs/:org",                             _read("/v1/orgs/{org}"),  (200, 200, 404, 404, 200, 404, 404, 404, 404)),
    ("GET /v1/orgs/:org/products",                    _read("/v1/orgs/{org}/products"),
                                                                                (200, 200, 404, 404, 200, 404, 404, 404, 404)),
    ("POST /v1/orgs/:org/products",                   _org_product_create,      (201, 201, 404, 404, 403, 404, 404, 404, 404)),
    ("GET /v1/orgs/:org/team",                        _read("/v1/orgs/{org}/team"),
                                                                                (200, 200, 404, 404, 200, 404, 404, 404, 404)),
    ("POST /v1/orgs/:org/team",                       _org_invite,              (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("PUT /v1/orgs/:org/team/:username",              _org_set_role,            (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("POST /v1/orgs/:org/team/:username",            _org_set_role,            (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("DELETE /v1/orgs/:org/team/:username",           _org_remove,              (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("PUT /v1/orgs/:org/team/:api-username/token",   _org_api_token,           (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("POST /v1/orgs/:org/team/:api-username/token",  _org_api_token,           (200, 200, 404, 404, 403, 404, 404, 404, 404)),
    ("GET /v1/products/:p/team",                      _read("/v1/products/{p}/team"),
                                                                                (200, 200, 200, 200, 200, 404, 200, 403, 403)),
    # api_with holds the team scopes but not Support's device and SIM actions, so it may not grant Support.
    ("POST /v1/products/:p/team",                     _product_invite,          (200, 200, 403, 403, 403, 404, 403, 403, 403)),
    ("PUT /v1/products/:p/team/:username",            _product_set_role,        (200, 200, 403, 403, 403, 404, 403, 403, 403)),
    ("POST /v1/products/:p/team/:username",           _product_set_role,        (200, 200, 403, 403, 403, 404, 403, 403, 403)),
    ("DELETE /v1/products/:p/team/:username",         _product_remove,          (200, 200, 403, 403, 403, 404, 200, 403, 403)),
    ("PUT /v1/products/:p/team/:api-username/token",  _product_api_token,       (200, 200, 403, 403, 403, 404, 200, 403, 403)),
    ("POST /v1/products/:p/team/:api-username/token", _product_api_token,       (200, 200, 403, 403, 403, 404, 200, 403, 403)),
    ("GET /v1/products/:p/clients",                   _read("/v1/products/{p}/clients"),
                                                                                (200, 200, 200, 200, 200, 404, 200, 403, 200)),
    ("POST /v1/products/:p/clients",                  _product_client_create,   (201, 201, 201, 403, 403, 404, 201, 403, 403)),
    ("PUT /v1/products/:p/clients/:id",               _product_client_update,   (200, 200, 200, 403, 403, 404, 200, 403, 403)),
    ("DELETE /v1/products/:p/clients/:id",            _product_client_delete,   (204, 204, 204, 403, 403, 404, 204, 403, 403)),
    ("GET /v1/clients",                               _user_clients,            USERS_ONLY(200)),
    ("POST /v1/clients",                              _user_client_create,      USERS_ONLY(201)),
    ("PUT /v1/clients/:id",                           _user_client_update,      OWNER_ONLY(200)),
    ("DELETE /v1/clients/:id",                        _user_client_delete,      OWNER_ONLY(204)),
    ("GET /v1/user",                                  _user,                    USERS_ONLY(200)),
    ("PUT /v1/user",                                  _user_update,             USERS_ONLY(200)),
    ("GET /v1/user/mfa-enable",                       _mfa_begin,               USERS_ONLY(200)),
    ("POST /v1/user/mfa-enable",                      _mfa_confirm,             USERS_ONLY(200)),
    ("PUT /v1/user/mfa-disable",                      _mfa_disable,             USERS_ONLY(200)),
    ("POST /v1/orgs",                                 _org_create,              USERS_ONLY(201)),
    # (API users and product tokens get 200 and an empty list, while POST answers them 400 unauthorized)
    ("GET /v1/user/products",                         _sandbox_product_list,    ALL_200),
    ("POST /v1/user/products",                        _sandbox_product_create,  USERS_ONLY(201)),
    ("GET /v1/access_tokens",                         _token_list,              USERS_ONLY(200)),
    ("DELETE /v1/access_tokens",                      _token_revoke_all,        USERS_ONLY(200)),
    ("GET /v1/access_tokens/current",                 _current_token,           ALL_200),
    ("DELETE /v1/access_tokens/current",              _token_revoke_current,    ALL_200),
]

CELLS = [
    pytest.param(endpoint, arrange, role, expected[i], id=f"{endpoint} [{role}]")
    for endpoint, arrange, expected in MATRIX
    for i, role in enumerate(ROLES)
]


@pytest.mark.parametrize("endpoint,arrange,role,expected", CELLS)
def test_role_matrix(cast, endpoint, arrange, role, expected):
    method = endpoint.split()[0]
    target = arrange(cast)
    before = team_state()
    body = target.body(role) if callable(target.body) else target.body
    r = cast.api(role).call(method, target.path, body)
    assert (method, r.resolver_match.route) == TEAM_MATRIX_ROUTES[endpoint], "tests/support/routes.py is out of date"
    after_status = r.status_code
    assert after_status == expected, f"{endpoint} as {role}: {after_status} {r.content[:300]!r}"
    if after_status >= 400:
        body = assert_json_error(r)
        if after_status == 400:
            assert body["error"] == "unauthorized", body  # the only 400 in this matrix: a user-only route
        assert team_state() == before, f"{endpoint} as {role} was refused but wrote to the database"
        if "old_token" in target.extra:
            assert works(target.extra["old_token"], f"/v1/products/{cast.product.pk}") == 200
    else:
        if target.write:
            assert team_state() != before, f"{endpoint} as {role} answered {after_status} but changed nothing"
        else:
            assert team_state() == before, f"{endpoint} is a read but wrote to the database"
        if target.verify is not None:
            target.verify(cast, role, r)
    if role == "outsider":
        assert_no_leak(cast, r)


def test_the_route_registry_lists_exactly_this_matrix():
    """tests/support/routes.py's TEAM_MATRIX_ROUTES is what tests/test_routes.py checks the URL conf against."""
    assert [endpoint for endpoint, _, _ in MATRIX] == list(TEAM_MATRIX_ROUTES)
    for endpoint, (method, _) in TEAM_MATRIX_ROUTES.items():
        assert endpoint.split()[0] == method, endpoint


# --- outsiders: 404 that looks exactly like "no such thing" --------------------------------------


@pytest.mark.parametrize("path", [
    "/v1/products/{ident}", "/v1/products/{ident}/team", "/v1/products/{ident}/clients",
])
def test_outsider_404_by_slug_is_indistinguishable_from_a_missing_product(cast, path):
    outsider = cast.api("outsider")
    real = outsider.get(path.format(ident=cast.product.slug))
    missing = outsider.get(path.format(ident="no-such-product"))
    assert real.status_code == missing.status_code == 404
    assert real.json() == {k: (v.replace("no-such-product", cast.product.slug) if isinstance(v, str) else v)
                           for k, v in missing.json().items()}


def test_outsider_404_on_org_by_slug_matches_a_missing_org(cast):
    outsider = cast.api("outsider")
    real = outsider.get(f"/v1/orgs/{cast.org.slug}/team")
    missing = outsider.get("/v1/orgs/no-such-org/team")
    assert real.status_code == missing.status_code == 404
    assert real.json()["error"] == missing.json()["error"]


# --- tokens bound to one product stay there ----------------------------------------------------

OTHER_PRODUCT_ROUTES = [
    ("GET", "/v1/products/{p}", None),
    ("PUT", "/v1/products/{p}", {"description": "hijacked"}),
    ("GET", "/v1/products/{p}/team", None),
    ("POST", "/v1/products/{p}/team", {"username": "outsider@example.com", "role": "Administrator"}),
    ("GET", "/v1/products/{p}/clients", None),
    ("POST", "/v1/products/{p}/clients", {"name": "hijack", "type": "installed"}),
]


@pytest.mark.parametrize("which", ["outsider_product", "sandbox_product"])
@pytest.mark.parametrize("role", ["api_with", "api_without", "product_token", "developer", "support"])
@pytest.mark.parametrize("method,path,data", OTHER_PRODUCT_ROUTES)
def test_tokens_for_one_product_get_404_on_another(cast, role, which, method, path, data):
    other = getattr(cast, which)
    before = team_state()
    r = cast.api(role).call(method, path.format(p=other.pk), data)
    assert r.status_code == 404, (role, which, r.status_code, r.content[:200])
    assert_json_error(r)
    assert other.name not in r.content.decode() and other.slug not in r.content.decode()
    assert team_state() == before


@pytest.mark.parametrize("role,expected", [
    ("owner", 200), ("admin", 200), ("viewer", 200),  # org seats reach every org product
    ("developer", 404), ("support", 404),  # a seat on Trackers is not a seat on its sibling
    ("api_with", 404), ("product_token", 404),  # bound to Trackers
])
def test_a_sibling_product_in_the_same_org(cast, role, expected):
    sibling = make_product(cast.org, name="Sibling")
    r = cast.api(role).get(f"/v1/products/{sibling.pk}")
    assert r.status_code == expected, (role, r.content)
    if expected == 404:
        assert "Sibling" not in r.content.decode() and sibling.slug not in r.content.decode()


def _outsider_client(cast: Cast) -> OAuthClient:
    client, _ = client_services.client_create(principal=Principal.for_user(cast.outsider), product_id=cast.outsider_product.pk,
                                       product_slug=cast.outsider_product.slug, name="theirs", type="installed")
    return client


# Product tokens may not manage clients at all (a 403 on their own product), so they are not in this list.
@pytest.mark.parametrize("role", ["owner", "developer", "api_with"])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_another_products_client_is_404_through_your_own_product(cast, role, method):
    theirs = _outsider_client(cast)
    before = team_state()
    r = cast.api(role).call(method, f"/v1/products/{cast.product.pk}/clients/{theirs.client_id}",
                            {"name": "pwned"} if method == "PUT" else None)
    assert r.status_code == 404, r.content
    assert team_state() == before


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_product_client_is_not_reachable_as_a_sandbox_client(cast, method):
    client = _fresh_product_client(cast)
    before = team_state()
    r = cast.api("owner").call(method, f"/v1/clients/{client.client_id}", {"name": "x"} if method == "PUT" else None)
    assert r.status_code == 404, r.content
    assert team_state() == before


@pytest.mark.parametrize("method,suffix,data", [("PUT", "", {"role": "Support"}), ("DELETE", "", None),
                                                ("PUT", "/token", None)])
def test_another_teams_member_is_404_through_your_own_team(cast, method, suffix, data):
    stranger = UserFactory(email="their-member@example.com")
    seat(cast.outsider_product, stranger, Role.VIEWER)
    _, their_robot_token = api_user_create(principal=Principal.for_user(cast.outsider),
                                           team=product_team(cast.outsider_product), friendly_name="their robot",
                                           scopes=["products:get"])
    their_robot = User.objects.get(friendly_name="their robot").email
    target = their_robot if suffix else stranger.email
    before = team_state()
    r = cast.api("owner").call(method, f"/v1/products/{cast.product.pk}/team/{target}{suffix}", data)
    assert r.status_code == 404, r.content
    assert team_state() == before
    assert works(their_robot_token, f"/v1/products/{cast.outsider_product.pk}") == 200


def test_a_client_restricted_to_customers_create_hands_out_restricted_tokens(cast):
    client, secret = client_services.client_create(principal=Principal.for_user(cast.owner), product_id=cast.product.pk,
                                            product_slug=cast.product.slug, name="shop", type="installed",
                                            scope="customers:create")
    shop = Api(_product_token_for(client, secret))
    p = cast.product.pk
    before = team_state()
    assert shop.get(f"/v1/products/{p}").status_code == 403
    assert shop.get(f"/v1/products/{p}/team").status_code == 403
    assert shop.post(f"/v1/products/{p}/clients", {"name": "x", "type": "installed"}).status_code == 403
    assert shop.get(f"/v1/products/{cast.outsider_product.pk}").status_code == 404
    assert p not in [x["id"] for x in shop.get("/v1/products").json()["products"]]
    assert team_state() == before


def test_product_token_cannot_delete_its_own_client(cast):
    own = OAuthClient.objects.get(product_id=cast.product.pk, name="server")
    before = team_state()
    r = cast.api("product_token").delete(f"/v1/products/{cast.product.pk}/clients/{own.client_id}")
    assert r.status_code == 403, r.content
    assert team_state() == before


def test_org_level_api_user_reaches_org_products_only(cast):
    r = cast.api("owner").post(f"/v1/orgs/{cast.org.slug}/team",
                               {"friendly_name": "org robot", "scopes": ["products:get", "teams.users:list"]})
    assert r.status_code == 200, r.content
    robot = Api(r.json()["created"]["tokens"][0]["token"])
    assert robot.get(f"/v1/products/{cast.product.pk}").status_code == 200
    assert robot.get(f"/v1/orgs/{cast.org.pk}/team").status_code == 200
    assert robot.get(f"/v1/products/{cast.product.pk}/clients").status_code == 403  # no clients:list
    assert robot.get(f"/v1/products/{cast.outsider_product.pk}").status_code == 404
    assert robot.get(f"/v1/products/{cast.sandbox_product.pk}").status_code == 404
    assert robot.get("/v1/user").status_code == 400


# --- a role is the *minimum*: org Developer / Support at org level -------------------------------


@pytest.mark.parametrize("role,expected", [(Role.ADMINISTRATOR, 201), (Role.DEVELOPER, 201),
                                           (Role.SUPPORT, 403), (Role.VIEWER, 403)])
def test_org_developer_may_create_org_products(cast, role, expected):
    person = UserFactory(email=f"org-{role}@example.com")
    seat(cast.org, person, role)
    before = Product.objects.count()
    r = Api(user_token(person)).post(f"/v1/orgs/{cast.org.slug}/products",
                                     {"product": {"name": "Made By Seat", "platform_id": 32}})
    assert r.status_code == expected, r.content
    assert Product.objects.count() == before + (1 if expected == 201 else 0)


@pytest.mark.parametrize("role,can_put_settings,can_manage_team,can_create_client", [
    (Role.ADMINISTRATOR, True, True, True),
    (Role.DEVELOPER, False, False, True),
    (Role.SUPPORT, False, False, False),
    (Role.VIEWER, False, False, False),
])
@pytest.mark.parametrize("where", ["org", "product"])
def test_org_seats_and_product_seats_give_the_same_rights(cast, where, role, can_put_settings, can_manage_team,
                                                          can_create_client):
    person = UserFactory(email="seated@example.com")
    seat(cast.org if where == "org" else cast.product, person, role)
    UserFactory(email="newcomer@example.com")
    api = Api(user_token(person))
    p = cast.product.pk
    assert api.get(f"/v1/products/{p}").status_code == 200
    assert api.put(f"/v1/products/{p}", {"description": "x"}).status_code == (200 if can_put_settings else 403)
    assert api.post(f"/v1/products/{p}/team", {"username": "newcomer@example.com", "role": "View-only"}
                    ).status_code == (200 if can_manage_team else 403)
    assert api.post(f"/v1/products/{p}/clients", {"name": "c", "type": "installed"}
                    ).status_code == (201 if can_create_client else 403)


# --- API users: scopes, tokens ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["product", "org"])
def test_scope_change_issues_a_new_token_and_kills_the_old_one(cast, where):
    team_path = f"/v1/products/{cast.product.pk}/team" if where == "product" else f"/v1/orgs/{cast.org.pk}/team"
    owner = cast.api("owner")
    r = owner.post(team_path, {"friendly_name": "robot", "scopes": ["products:get"]})
    assert r.status_code == 200, r.content
    created = r.json()["created"]
    username, first = created["username"], created["tokens"][0]["token"]
    assert created["is_programmatic"] is True and username.endswith("@api.particle.io")
    robot_user = User.objects.get(email=username)
    assert AccessToken.objects.filter(user=robot_user).count() == 1
    product_path = f"/v1/products/{cast.product.pk}"
    assert works(first, product_path) == 200
    assert works(first, f"{product_path}/clients") == 403

    # Same scopes, new name: no new token.
    r = owner.put(f"{team_path}/{username}", {"friendly_name": "renamed robot", "scopes": ["products:get"]})
    assert r.status_code == 200 and "tokens" not in r.json()["updated"], r.content
    assert works(first, product_path) == 200

    # A scope change: a new token, and the old one is dead (401, not merely 403).
    r = owner.put(f"{team_path}/{username}", {"scopes": ["products:get", "clients:list"]})
    assert r.status_code == 200, r.content
    second = r.json()["updated"]["tokens"][0]["token"]
    assert second != first
    assert works(first, product_path) == 401
    assert works(second, f"{product_path}/clients") == 200
    assert AccessToken.objects.filter(user=robot_user).count() == 1

    # Regenerate: again exactly one token.
    r = owner.put(f"{team_path}/{username}/token")
    assert r.status_code == 200, r.content
    third = r.json()["updated"]["tokens"][0]["token"]
    assert works(second, product_path) == 401 and works(third, product_path) == 200
    assert AccessToken.objects.filter(user=robot_user).count() == 1

    # Listed with the humans, as Particle does.
    team = owner.get(team_path).json()["team"]
    entry = next(e for e in team if e["username"] == username)
    assert entry["is_programmatic"] is True and entry["scopes"] == ["clients:list", "products:get"]


def test_api_user_cannot_sign_in_with_a_password(cast):
    robot = User.objects.filter(kind=User.Kind.API).first()
    r = Api().call("POST", "/oauth/token", {"grant_type": "password", "username": robot.email, "password": "x",
                                            "client_id": "particle", "client_secret": "particle"}, form=True)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("how", ["rescope itself", "create a broader API user"])
def test_api_user_cannot_grant_scopes_it_does_not_hold(cast, how):
    """Proposed rule: an API user with teams.users:invite/update must not mint scopes it lacks
    (here products:update), or the scope system is one hop from Administrator."""
    robot = cast.api("api_with")
    me = next(e for e in cast.api("owner").get(f"/v1/products/{cast.product.pk}/team").json()["team"]
              if e.get("friendly_name") == "with scopes")
    before = team_state()
    if how == "rescope itself":
        r = robot.put(f"/v1/products/{cast.product.pk}/team/{me['username']}",
                      {"scopes": me["scopes"] + ["products:update"]})
    else:
        r = robot.post(f"/v1/products/{cast.product.pk}/team",
                       {"friendly_name": "escalator", "scopes": ["products:update"]})
    assert r.status_code == 403, r.content
    assert_json_error(r)
    assert team_state() == before


# --- the owner is fixed -------------------------------------------------------------------------


@pytest.mark.parametrize("where,by", [("org", "owner"), ("org", "admin"),
                                      ("product", "owner"), ("product", "admin"), ("product", "api_with")])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_owner_cannot_be_removed_or_have_their_role_changed(cast, where, method, by):
    team_path = f"/v1/orgs/{cast.org.pk}/team" if where == "org" else f"/v1/products/{cast.product.pk}/team"
    before = team_state()
    r = cast.api(by).call(method, f"{team_path}/{cast.owner.email}", {"role": "View-only"} if method == "PUT" else None)
    assert r.status_code == 400, (r.status_code, r.content)
    assert_json_error(r)
    assert team_state() == before
    assert cast.api("owner").put(f"/v1/products/{cast.product.pk}", {"description": "still mine"}).status_code == 200


def test_team_list_marks_the_owner(cast):
    for path in (f"/v1/orgs/{cast.org.pk}/team", f"/v1/products/{cast.product.pk}/team"):
        team = cast.api("admin").get(path).json()["team"]
        owners = [e for e in team if e["username"] == cast.owner.email]
        assert len(owners) == 1, (path, team)
        assert owners[0]["role"]["name"] == "Administrator" and owners[0]["role_label"] == "Administrator (Owner)"
        names = {e["username"]: e["role"]["name"] for e in team if not e.get("is_programmatic")}
        if path.startswith("/v1/orgs"):
            assert names["admin@example.com"] == "Administrator" and names["viewer@example.com"] == "View-only"
        else:
            assert names["developer@example.com"] == "Developer" and names["support@example.com"] == "Support"


# --- removing a seat removes access -------------------------------------------------------------


def test_removing_a_product_member_removes_their_access(cast):
    developer = cast.api("developer")
    p = cast.product.pk
    assert developer.get(f"/v1/products/{p}").status_code == 200
    r = cast.api("admin").delete(f"/v1/products/{p}/team/developer@example.com")
    assert r.status_code == 200 and r.json() == {"ok": True}
    for path in (f"/v1/products/{p}", f"/v1/products/{p}/team", f"/v1/products/{p}/clients"):
        assert developer.get(path).status_code == 404, path
    assert p not in [x["id"] for x in developer.get("/v1/products").json()["products"]]


def test_removing_an_org_member_removes_access_to_every_org_product(cast):
    viewer = cast.api("viewer")
    r = cast.api("owner").delete(f"/v1/orgs/{cast.org.pk}/team/viewer@example.com")
    assert r.status_code == 200
    assert viewer.get(f"/v1/products/{cast.product.pk}").status_code == 404
    assert viewer.get(f"/v1/orgs/{cast.org.pk}").status_code == 404
    assert viewer.get("/v1/orgs").json()["organizations"] == []


def test_removing_an_api_user_kills_its_token(cast):
    team = cast.api("owner").get(f"/v1/products/{cast.product.pk}/team").json()["team"]
    username = next(e["username"] for e in team if e.get("friendly_name") == "no scopes")
    assert cast.api("owner").delete(f"/v1/products/{cast.product.pk}/team/{username}").status_code == 200
    # its token went with it: 401 invalid_token (the token is unknown), not a 404 on the product
    r = cast.api("api_without").get(f"/v1/products/{cast.product.pk}")
    assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.content
    assert not User.objects.filter(email=username).exists()


def test_role_change_takes_effect_on_the_next_request(cast):
    support = cast.api("support")
    p = cast.product.pk
    assert support.put(f"/v1/products/{p}", {"description": "x"}).status_code == 403
    r = cast.api("admin").put(f"/v1/products/{p}/team/support@example.com", {"role": "Administrator"})
    assert r.status_code == 200 and r.json()["updated"]["role"]["name"] == "Administrator"
    assert support.put(f"/v1/products/{p}", {"description": "x"}).status_code == 200


# --- moving a product into an organization ------------------------------------------------------


def _product_token_for(client: OAuthClient, secret: str) -> str:
    r = Api().call("POST", "/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                            "client_secret": secret}, form=True)
    assert r.status_code == 200, r.content
    return r.json()["access_token"]


@pytest.mark.parametrize("solo_seat", [None, Role.VIEWER])
def test_moving_a_sandbox_product_into_an_org_keeps_credentials_and_the_old_owner(db, solo_seat):
    solo = UserFactory(email="solo@example.com")
    boss = UserFactory(email="boss@example.com")
    org = make_org(boss, "Big Co")
    if solo_seat:
        seat(org, solo, solo_seat)
    product = make_product(user_services.sandbox_of(solo), name="Solo Product")
    client, secret = client_services.client_create(principal=Principal.for_user(solo), product_id=product.pk,
                                            product_slug=product.slug, name="srv", type="installed")
    old_product_token = _product_token_for(client, secret)
    _, robot = api_user_create(principal=Principal.for_user(solo), team=product_team(product),
                               friendly_name="robot", scopes=["products:get"])
    path = f"/v1/products/{product.pk}"

    product_move(principal=None, product=product, to_account=org)

    assert works(old_product_token, path) == 200
    assert works(_product_token_for(client, secret), path) == 200  # the client still issues tokens
    assert works(robot, path) == 200
    solo_api, boss_api = Api(user_token(solo)), Api(user_token(boss))
    assert solo_api.get(path).status_code == 200
    assert boss_api.get(path).json()["product"]["org"] == org.slug
    assert product.pk in [p["id"] for p in boss_api.get(f"/v1/orgs/{org.slug}/products").json()["products"]]
    assert Api(user_token(UserFactory(email="stranger@example.com"))).get(path).status_code == 404
    if solo_seat is None:
        assert solo_api.put(path, {"description": "still editing"}).status_code == 200


# --- query counts do not grow with the data -----------------------------------------------------


def _queries(api: Api, path: str) -> int:
    api.get(path)  # warm up: the first use of a token records last_used_at
    with CaptureQueriesContext(connection) as ctx:
        r = api.get(path)
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_product_list_query_count_is_flat(cast, django_assert_max_num_queries):
    owner = cast.api("owner")
    for i in range(3):
        make_product(cast.org, name=f"Bulk {i}")
    small = _queries(owner, "/v1/products")
    for i in range(3, 15):
        make_product(cast.org if i % 2 else user_services.sandbox_of(cast.owner), name=f"Bulk {i}")
    with django_assert_max_num_queries(small):
        r = owner.get("/v1/products")
    assert len(r.json()["products"]) >= 17


@pytest.mark.parametrize("where", ["product", "org"])
def test_team_list_query_count_is_flat(cast, where, django_assert_max_num_queries):
    target = cast.product if where == "product" else cast.org
    path = f"/v1/products/{cast.product.pk}/team" if where == "product" else f"/v1/orgs/{cast.org.pk}/team"
    owner = cast.api("owner")
    for i in range(3):
        seat(target, UserFactory(email=f"m{i}@example.com"), Role.SUPPORT)
    small = _queries(owner, path)
    for i in range(3, 15):
        seat(target, UserFactory(email=f"m{i}@example.com"), Role.VIEWER)
    team = product_team(cast.product) if where == "product" else org_team(cast.org)
    api_user_create(principal=Principal.for_user(cast.owner), team=team, friendly_name="bulk robot",
                    scopes=["devices:list"])
    with django_assert_max_num_queries(small):
        r = owner.get(path)
    assert len(r.json()["team"]) >= 16


# --- team services refuse on their own (Team.require), whatever door calls them ---------------------


TEAM_SERVICES = {
    "invite": lambda p, team, cast: team_invite(principal=p, team=team, username="newcomer@example.com",
                                                role="Support"),
    "set_role": lambda p, team, cast: team_set_role(principal=p, team=team, username="member@example.com",
                                                    role="Administrator"),
    "remove": lambda p, team, cast: team_remove(principal=p, team=team, username="member@example.com"),
    "api_user_create": lambda p, team, cast: api_user_create(principal=p, team=team, friendly_name="sneaky",
                                                             scopes=["products:get"]),
    "api_user_update": lambda p, team, cast: api_user_update(principal=p, team=team, username=cast.robot,
                                                             scopes=["products:get", "devices:list"]),
    "api_user_regenerate": lambda p, team, cast: api_user_regenerate(principal=p, team=team, username=cast.robot),
}


@pytest.mark.parametrize("service", sorted(TEAM_SERVICES))
@pytest.mark.parametrize("who", ["viewer", "support", "outsider"])
@pytest.mark.parametrize("where", ["product", "org"])
def test_team_services_called_directly_refuse_an_unauthorized_principal(cast, where, who, service):
    """The API and the console check access before calling a team service; the service checks again."""
    target = cast.product if where == "product" else cast.org
    team = product_team(cast.product) if where == "product" else org_team(cast.org)
    UserFactory(email="newcomer@example.com")
    seat(target, UserFactory(email="member@example.com"), Role.VIEWER)
    robot, _ = api_user_create(principal=Principal.for_user(cast.owner), team=team, friendly_name="robot",
                               scopes=["products:get"])
    cast.robot = robot.email
    principal = Principal.for_user(getattr(cast, who))
    before = team_state()
    with pytest.raises(Forbidden):
        TEAM_SERVICES[service](principal, team, cast)
    assert team_state() == before
    # ... while the owner may (the same call goes through)
    TEAM_SERVICES[service](Principal.for_user(cast.owner), team, cast)
    assert team_state() != before
