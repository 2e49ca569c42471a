"""Who may call what on the integration and webhook routes, against the whole cast (tests/support/cast.py).

Rules (particle-api.md §4, §9, §14; DESIGN.md §3):
* product hooks: View-only and up read (list, get, dead letters); Developer and up write (create, replace,
  delete, test, rotate the secret, replay); outsiders and customers get 404, never the hook's details;
  API users act within their scopes (403 without the route's); the product token acts as a Developer;
* sandbox hooks are the token's person's own: every person may list and create their own, another person's hook
  is a 404; API users, product tokens and customers get 400 `unauthorized` (a user-only route, §1).
Every refused request leaves the database as it was; every accepted write changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from console.scoping import Principal
from console.services.teams import api_user_create
from devices.models import Customer
from integrations.models import Delivery, DeliveryDay, Integration
from products.services import product_team
from tests.support.cast import Cast
from tests.support.errors import assert_json_error
from tests.support.fleet import customer_token
from tests.support.integrations_receiver import allow_loopback, running_receiver
from tests.support.api import Api
from tests.support.routes_integrations import INTEGRATION_MATRIX_ROUTES

pytestmark = pytest.mark.django_db

ROLES = ("owner", "admin", "developer", "support", "viewer", "outsider", "api_with", "api_without",
         "product_token", "customer")
SCOPES = ["integrations:list", "integrations:get", "integrations:create", "integrations:update",
          "integrations:remove", "integrations:test"]


@dataclass
class World:
    cast: Cast
    tokens: dict
    product_hook: Integration
    sandbox_hook: Integration
    url: str

    @property
    def p(self) -> int:
        return self.cast.product.pk


@pytest.fixture
def world(cast, settings):
    allow_loopback(settings)
    with running_receiver() as rx:
        url = rx.url("/matrix")
        owner = Principal.for_user(cast.owner)
        from integrations import services, validation

        fields = validation.webhook_fields({"event": "temp", "url": url})
        product_hook = services.integration_create(principal=owner, fields=fields, product=cast.product)
        sandbox_hook = services.integration_create(principal=owner, fields=fields, user=cast.owner)
        for hook in (product_hook, sandbox_hook):
            Delivery.objects.create(integration=hook, event_id="1-0", event={"name": "temp", "data": "", "coreid": "x",
                                                                               "published_at": "", "id": "1-0"},
                                    state=Delivery.State.DEAD, attempts=6, next_attempt_at=timezone.now(),
                                    finished_at=timezone.now() - timedelta(minutes=1), last_error="error status 500")
        alice = Customer.objects.create(product=cast.product, email="alice@example.com")
        tokens = dict(cast.tokens, customer=customer_token(alice))
        yield World(cast=cast, tokens=tokens, product_hook=product_hook, sandbox_hook=sandbox_hook, url=url)


def state() -> dict:
    return {"hooks": sorted(Integration.objects.values_list("pk", "product_id", "user_id", "event", "name", "disabled",
                                                           "signing_secret", "updated_at")),
            "deliveries": sorted(Delivery.objects.values_list("pk", "state", "attempts")),
            "days": DeliveryDay.objects.count()}


@dataclass
class Target:
    path: str
    body: dict | None = None
    scope: str | None = None
    write: bool = True


def _body(w: World) -> dict:
    return {"integration_type": "Webhook", "event": "matrix", "url": w.url}


def _targets(w: World, base: str, hook: Integration) -> dict[str, Target]:
    h = f"{base}/integrations/{hook.id}"
    return {
        "GET /integrations": Target(f"{base}/integrations", scope="integrations:list", write=False),
        "POST /integrations": Target(f"{base}/integrations", _body(w), scope="integrations:create"),
        "GET /integrations/:id": Target(h, scope="integrations:get", write=False),
        "PUT /integrations/:id": Target(h, _body(w), scope="integrations:update"),
        "DELETE /integrations/:id": Target(h, scope="integrations:remove"),
        "POST /integrations/:id/test": Target(f"{h}/test", {}, scope="integrations:test", write=False),
        "POST /integrations/:id/rotate_secret": Target(f"{h}/rotate_secret", {}, scope="integrations:update"),
        "GET /integrations/:id/dead_letters": Target(f"{h}/dead_letters", scope="integrations:get", write=False),
        "POST /integrations/:id/dead_letters/replay": Target(f"{h}/dead_letters/replay", {},
                                                             scope="integrations:update"),
        "GET /webhooks": Target(f"{base}/webhooks", scope="integrations:list", write=False),
        "POST /webhooks": Target(f"{base}/webhooks", {"event": "matrix", "url": w.url}, scope="integrations:create"),
        "GET /webhooks/:id": Target(f"{base}/webhooks/{hook.id}", scope="integrations:get", write=False),
        "DELETE /webhooks/:id": Target(f"{base}/webhooks/{hook.id}", scope="integrations:remove"),
    }


def target_for(w: World, endpoint: str) -> Target:
    method, label = endpoint.split(" ", 1)
    if label.startswith("/v1/products/:p"):
        key = label.removeprefix("/v1/products/:p")
        return _targets(w, f"/v1/products/{w.p}", w.product_hook)[f"{method} {key}"]
    return _targets(w, "/v1", w.sandbox_hook)[f"{method} {label.removeprefix('/v1')}"]


READ = (200, 200, 200, 200, 200, 404, 200, 403, 200, 404)


def DEV(ok):  # noqa: N802 - Developer and up, API users with the scope, the product token
    return (ok, ok, ok, 403, 403, 404, ok, 403, ok, 404)


NOT_A_PERSON = (400, 400, 400, 400)


def OWN(ok):  # noqa: N802 - a sandbox route on one's own sandbox: every person, nobody else
    return (ok,) * 6 + NOT_A_PERSON


def THEIRS(ok):  # noqa: N802 - a sandbox route naming the owner's own hook: others do not find it
    return (ok,) + (404,) * 5 + NOT_A_PERSON


EXPECTED = {
    "GET /integrations": (READ, OWN(200)),
    "POST /integrations": (DEV(201), OWN(201)),
    "GET /integrations/:id": (READ, THEIRS(200)),
    "PUT /integrations/:id": (DEV(200), THEIRS(200)),
    "DELETE /integrations/:id": (DEV(204), THEIRS(204)),
    "POST /integrations/:id/test": (DEV(200), THEIRS(200)),
    "POST /integrations/:id/rotate_secret": (DEV(200), THEIRS(200)),
    "GET /integrations/:id/dead_letters": (READ, THEIRS(200)),
    "POST /integrations/:id/dead_letters/replay": (DEV(200), THEIRS(200)),
    "GET /webhooks": (READ, OWN(200)),
    "POST /webhooks": (DEV(201), OWN(201)),
    "GET /webhooks/:id": (READ, THEIRS(200)),
    "DELETE /webhooks/:id": (DEV(200), THEIRS(200)),
}


def _expected(endpoint: str) -> tuple[int, ...]:
    method, label = endpoint.split(" ", 1)
    product = label.startswith("/v1/products/:p")
    key = f"{method} {label.removeprefix('/v1/products/:p') if product else label.removeprefix('/v1')}"
    return EXPECTED[key][0 if product else 1]


CELLS = [pytest.param(endpoint, role, _expected(endpoint)[i], id=f"{endpoint} [{role}]")
         for endpoint in INTEGRATION_MATRIX_ROUTES for i, role in enumerate(ROLES)]


def _api_user(cast: Cast, scopes: list[str]) -> str:
    _, token = api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                               friendly_name="matrix robot", scopes=scopes)
    return token


@pytest.mark.parametrize("endpoint,role,expected", CELLS)
def test_integration_role_matrix(world, endpoint, role, expected):
    method = endpoint.split()[0]
    target = target_for(world, endpoint)
    tokens = dict(world.tokens)
    if role == "api_with":
        tokens[role] = _api_user(world.cast, [target.scope])
    elif role == "api_without":
        tokens[role] = _api_user(world.cast, [s for s in SCOPES if s != target.scope])
    before = state()
    r = Api(tokens[role]).call(method, target.path, target.body)
    assert (method, r.resolver_match.route) == INTEGRATION_MATRIX_ROUTES[endpoint], "routes_integrations.py is stale"
    assert r.status_code == expected, f"{endpoint} as {role}: {r.status_code} (want {expected}) {r.content[:300]!r}"
    if r.status_code >= 400:
        body = assert_json_error(r)
        if r.status_code == 400:
            assert body["error"] == "unauthorized", body
        assert state() == before, f"{endpoint} as {role} was refused but wrote to the database"
        text = r.content.decode()
        for secret in (world.product_hook.id, world.sandbox_hook.id, world.url, world.cast.product.name):
            if secret not in target.path:
                assert secret not in text, f"{endpoint} as {role} leaks {secret!r}"
    elif target.write:
        assert state() != before, f"{endpoint} as {role} answered {r.status_code} but changed nothing"
    else:
        assert state() == before, f"{endpoint} is a read but wrote to the database"
    if r.status_code < 300 and "/test" in endpoint:
        assert r.json()["pass"] is True, r.json()
    # A secret is shown once, when made (create, rotate): no reply ever shows an existing one again.
    for hook in (world.product_hook, world.sandbox_hook):
        assert hook.signing_secret not in r.content.decode(), f"{endpoint} as {role} shows a signing secret"


def test_the_route_registry_lists_exactly_this_matrix():
    assert sorted({c.values[0] for c in CELLS}) == sorted(INTEGRATION_MATRIX_ROUTES)
    for endpoint, (method, _) in INTEGRATION_MATRIX_ROUTES.items():
        assert endpoint.split()[0] == method, endpoint
