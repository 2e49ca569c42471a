"""Who may open which event stream and publish where: every route of tests/support/routes.py's
EVENT_MATRIX_ROUTES, for every kind of caller, over a real uvicorn (a stream that opens answers 200 and `:ok`;
a refusal is Particle's JSON with the status below). An outsider's stream is a 404, never a 403 that would
confirm the product exists; a customer reaches its own devices only; product tokens and API users have no
stream of their own (400 `unauthorized`)."""

from __future__ import annotations

import pytest

from console.scoping import Principal
from console.services.teams import api_user_create
from devices.models import Customer, Device
from products.services import product_team
from tests.support.api import Api
from tests.support.fleet import customer_token, import_devices
from tests.support.presence import clear_presence
from tests.support.routes import EVENT_MATRIX_ROUTES
from tests.support.sse import Stream

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = ("owner", "admin", "developer", "support", "viewer", "outsider", "product_token", "api_without",
           "api_events", "customer", "own_customer")
TEAM = {"owner": 200, "admin": 200, "developer": 200, "support": 200, "viewer": 200}
NOT_ON_TEAM = {"outsider": 404, "customer": 404, "own_customer": 404}
PRODUCT_READ = {**TEAM, **NOT_ON_TEAM, "product_token": 200, "api_without": 403, "api_events": 200}
OWN_STREAM = {**TEAM, "outsider": 200, "product_token": 400, "api_without": 400, "api_events": 400,
              "customer": 200, "own_customer": 200}
ORG_READ = {"owner": 200, "admin": 200, "viewer": 200, "developer": 404, "support": 404, "outsider": 404,
            "product_token": 404, "api_without": 404, "api_events": 404, "customer": 404, "own_customer": 404}
DEVICE_READ = {**PRODUCT_READ, "own_customer": 200}
PRODUCT_SEND = {"owner": 200, "admin": 200, "developer": 200, "support": 403, "viewer": 403, **NOT_ON_TEAM,
                "product_token": 200, "api_without": 403, "api_events": 403}
NO_PREFIX = dict.fromkeys(CALLERS, 400)

# label -> (path, who gets what); {p} product, {org} organization, {d} a device of the product.
MATRIX = {
    "GET /v1/events/:prefix": ("/v1/events/temp", OWN_STREAM),
    "GET /v1/events": ("/v1/events", NO_PREFIX),
    "GET /v1/devices/events": ("/v1/devices/events", OWN_STREAM),
    "GET /v1/devices/events/:prefix": ("/v1/devices/events/a%2Fb", OWN_STREAM),
    "POST /v1/devices/events": ("/v1/devices/events", OWN_STREAM),
    "GET /v1/devices/:id/events": ("/v1/devices/{d}/events", DEVICE_READ),
    "GET /v1/devices/:id/events/:prefix": ("/v1/devices/{d}/events/t", DEVICE_READ),
    "GET /v1/products/:p/events": ("/v1/products/{p}/events", PRODUCT_READ),
    "POST /v1/products/:p/events": ("/v1/products/{p}/events", PRODUCT_SEND),
    "GET /v1/products/:p/events/:prefix": ("/v1/products/{p}/events/t", PRODUCT_READ),
    "GET /v1/products/:p/devices/:id/events": ("/v1/products/{p}/devices/{d}/events", PRODUCT_READ),
    "GET /v1/products/:p/devices/:id/events/:prefix": ("/v1/products/{p}/devices/{d}/events/t", PRODUCT_READ),
    "GET /v1/orgs/products/:p/events": ("/v1/orgs/products/{p}/events", PRODUCT_READ),
    "GET /v1/orgs/products/:p/events/:prefix": ("/v1/orgs/products/{p}/events/t", PRODUCT_READ),
    "GET /v1/orgs/:org/events": ("/v1/orgs/{org}/events", ORG_READ),
    "GET /v1/orgs/:org/events/:prefix": ("/v1/orgs/{org}/events/t", ORG_READ),
    "GET /v1/orgs/:org/devices/:id/events": ("/v1/orgs/{org}/devices/{d}/events", ORG_READ),
    "GET /v1/orgs/:org/devices/:id/events/:prefix": ("/v1/orgs/{org}/devices/{d}/events/t", ORG_READ),
    "GET /v1/orgs/:org/products/:p/events": ("/v1/orgs/{org}/products/{p}/events", ORG_READ),
    "GET /v1/orgs/:org/products/:p/events/:prefix": ("/v1/orgs/{org}/products/{p}/events/t", ORG_READ),
    "GET /v1/orgs/:org/products/:p/devices/:id/events": ("/v1/orgs/{org}/products/{p}/devices/{d}/events",
                                                         ORG_READ),
    "GET /v1/orgs/:org/products/:p/devices/:id/events/:prefix":
        ("/v1/orgs/{org}/products/{p}/devices/{d}/events/t", ORG_READ),
}


def test_the_matrix_covers_exactly_the_registered_routes():
    assert set(MATRIX) == set(EVENT_MATRIX_ROUTES)
    assert all(set(expected) == set(CALLERS) for _, expected in MATRIX.values())


@pytest.fixture
def tokens(cast):
    clear_presence()
    (device,) = import_devices(cast.product, 1)
    customer = Customer.objects.create(product=cast.product, email="own@example.com")
    Device.objects.filter(pk=device).update(customer=customer)
    other = Customer.objects.create(product=cast.product, email="other@example.com")
    _, api_events = api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                                    friendly_name="events", scopes=["events:get"])
    out = {name: cast.tokens[name] for name in CALLERS if name in cast.tokens}
    out.update(api_events=api_events, customer=customer_token(other), own_customer=customer_token(customer))
    yield out, device
    clear_presence()


@pytest.mark.parametrize("label", sorted(MATRIX))
def test_who_gets_what(asgi_url, cast, tokens, label):
    tokens, device = tokens
    template, expected = MATRIX[label]
    method, route = EVENT_MATRIX_ROUTES[label]
    path = template.format(p=cast.product.slug, org=cast.org.slug, d=device)
    got = {}
    for caller in CALLERS:
        if method == "POST":
            r = Api(tokens[caller]).post(path, {"name": "matrix", "data": caller})
            assert r.resolver_match.route == route, (r.resolver_match.route, route)
            got[caller] = r.status_code
            if r.status_code != 200:
                assert set(r.json()) >= {"error", "error_description"}
            continue
        s = Stream(asgi_url, path, tokens[caller], timeout=10)
        got[caller] = s.status
        if s.status == 200:
            assert s.frame(5).comment == "ok"
        else:
            assert set(s.json()) >= {"error", "error_description"}
        s.close()
    assert got == expected, label
    anonymous = Stream(asgi_url, path, None) if method == "GET" else None
    if anonymous is not None:
        assert anonymous.status == 401
        anonymous.close()
