"""The cast every API test uses: an org product with an owner and one member per role, an outsider in
another tenant, API users with and without a scope, and a product token."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.test import Client

from console import services
from console.models import AccessToken
from console.roles import Role
from console.teams import api_user_create
from console.scoping import Principal
from products.services import product_team
from tests.factories import PASSWORD, UserFactory, make_org, make_product, seat

REQUIRE_EXTERNAL = os.environ.get("CYAN_REQUIRE_EXTERNAL") == "1"


def need(tool_ok: bool, reason: str) -> None:
    """Skip with a visible reason, unless CI says every external tool must be there (then fail)."""
    if tool_ok:
        return
    if REQUIRE_EXTERNAL:
        pytest.fail(f"{reason} (CYAN_REQUIRE_EXTERNAL=1: CI must install it)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()  # lockout counters must not leak from one test into the next
    yield


@pytest.fixture(autouse=True)
def _platform_catalogue(request):
    """Transactional tests flush every table, the data migration's platform list included: reload it."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db", "live_server"} & set(request.fixturenames))
    if uses_db:
        request.getfixturevalue("_django_db_helper")
        from products.platforms import load_platforms

        load_platforms()


@pytest.fixture(autouse=True)
def _email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


class Api:
    """A JSON client that sends a Bearer token, like api-js does."""

    def __init__(self, token: str | None = None):
        self.client = Client(raise_request_exception=False)
        self.token = token

    def _headers(self, extra):
        headers = {}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    def call(self, method: str, path: str, data=None, *, form: bool = False, **extra):
        fn = getattr(self.client, method.lower())
        if method.upper() == "GET":
            return fn(path, data or {}, **self._headers(extra))
        if form:
            from urllib.parse import urlencode

            return fn(path, urlencode(data or {}, doseq=True), content_type="application/x-www-form-urlencoded",
                      **self._headers(extra))
        payload = json.dumps(data) if data is not None else ""
        return fn(path, payload, content_type="application/json", **self._headers(extra))

    def get(self, path, data=None, **extra):
        return self.call("GET", path, data, **extra)

    def post(self, path, data=None, **extra):
        return self.call("POST", path, data, **extra)

    def put(self, path, data=None, **extra):
        return self.call("PUT", path, data, **extra)

    def delete(self, path, data=None, **extra):
        return self.call("DELETE", path, data, **extra)


def user_token(user) -> str:
    return services.token_issue(kind=AccessToken.Kind.USER, user=user, client_name="test").access_token


@dataclass
class Cast:
    org: object
    product: object
    sandbox_product: object
    owner: object
    admin: object
    developer: object
    support: object
    viewer: object
    outsider: object
    outsider_product: object
    tokens: dict

    def api(self, who: str) -> Api:
        return Api(self.tokens[who])


@pytest.fixture
def cast(db) -> Cast:
    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers", platform_id=13)
    sandbox_product = make_product(services.sandbox_of(owner), name="Owner Sandbox Product", platform_id=12)
    people = {}
    for name, role, where in [
        ("admin", Role.ADMINISTRATOR, org),
        ("developer", Role.DEVELOPER, product),
        ("support", Role.SUPPORT, product),
        ("viewer", Role.VIEWER, org),
    ]:
        user = UserFactory(email=f"{name}@example.com")
        seat(where, user, role)
        people[name] = user
    outsider = UserFactory(email="outsider@example.com")
    outsider_org = make_org(outsider, "Other Corp")
    outsider_product = make_product(outsider_org, name="Other Product")
    principal = Principal.for_user(owner)
    team = product_team(product)
    _, api_with = api_user_create(principal=principal, team=team, friendly_name="with scopes",
                                  scopes=["products:get", "teams.users:list", "teams.users:invite",
                                          "teams.users:update", "teams.users:remove", "clients:list",
                                          "clients:create", "clients:update", "clients:remove", "devices:list"])
    _, api_without = api_user_create(principal=principal, team=team, friendly_name="no scopes",
                                     scopes=["devices:list"])
    client, secret = services.client_create(principal=principal, product_id=product.pk, product_slug=product.slug,
                                            name="server", type="installed")
    product_tok = services.token_issue(kind=AccessToken.Kind.PRODUCT, client=client, product_id=product.pk).access_token
    tokens = {name: user_token(u) for name, u in people.items()}
    tokens.update(owner=user_token(owner), outsider=user_token(outsider), api_with=api_with,
                  api_without=api_without, product_token=product_tok)
    return Cast(org=org, product=product, sandbox_product=sandbox_product, owner=owner, outsider=outsider,
                outsider_product=outsider_product, tokens=tokens, **people)


@pytest.fixture
def api():
    return Api()


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


__all__ = ["Api", "Cast", "PASSWORD", "need", "user_token"]
