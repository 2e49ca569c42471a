"""Which API routes the role matrices cover, and the walk of the URL conf they are checked against.

Each matrix (tests/test_role_matrix.py, tests/test_role_matrix_devices.py) registers here, row by row, the
(method, route pattern) its row exercises, keyed by the row's endpoint label. Each matrix checks its own
registry: every cell's response must resolve to its row's pattern (Django's `resolver_match.route`), and the
registry must list exactly the matrix's rows. tests/test_routes.py walks django.urls.get_resolver() and fails
when a /v1/... or /oauth/... route, with a method its view implements, is in no registry and not in
NO_ROLE_SEMANTICS below.
"""

from __future__ import annotations

from typing import Iterator

P = "v1/products/<str:product>"
ORG = "v1/orgs/<str:org>"

# tests/test_role_matrix.py: products, orgs, teams, OAuth clients, the user, tokens.
TEAM_MATRIX_ROUTES: dict[str, tuple[str, str]] = {
    "GET /v1/products/:p": ("GET", P),
    "PUT /v1/products/:p": ("PUT", P),
    "GET /v1/products": ("GET", "v1/products"),
    "GET /v1/orgs": ("GET", "v1/orgs"),
    "GET /v1/orgs/:org": ("GET", ORG),
    "GET /v1/orgs/:org/products": ("GET", f"{ORG}/products"),
    "POST /v1/orgs/:org/products": ("POST", f"{ORG}/products"),
    "GET /v1/orgs/:org/team": ("GET", f"{ORG}/team"),
    "POST /v1/orgs/:org/team": ("POST", f"{ORG}/team"),
    "PUT /v1/orgs/:org/team/:username": ("PUT", f"{ORG}/team/<str:username>"),
    "POST /v1/orgs/:org/team/:username": ("POST", f"{ORG}/team/<str:username>"),
    "DELETE /v1/orgs/:org/team/:username": ("DELETE", f"{ORG}/team/<str:username>"),
    "PUT /v1/orgs/:org/team/:api-username/token": ("PUT", f"{ORG}/team/<str:username>/token"),
    "POST /v1/orgs/:org/team/:api-username/token": ("POST", f"{ORG}/team/<str:username>/token"),
    "GET /v1/products/:p/team": ("GET", f"{P}/team"),
    "POST /v1/products/:p/team": ("POST", f"{P}/team"),
    "PUT /v1/products/:p/team/:username": ("PUT", f"{P}/team/<str:username>"),
    "POST /v1/products/:p/team/:username": ("POST", f"{P}/team/<str:username>"),
    "DELETE /v1/products/:p/team/:username": ("DELETE", f"{P}/team/<str:username>"),
    "PUT /v1/products/:p/team/:api-username/token": ("PUT", f"{P}/team/<str:username>/token"),
    "POST /v1/products/:p/team/:api-username/token": ("POST", f"{P}/team/<str:username>/token"),
    "GET /v1/products/:p/clients": ("GET", f"{P}/clients"),
    "POST /v1/products/:p/clients": ("POST", f"{P}/clients"),
    "PUT /v1/products/:p/clients/:id": ("PUT", f"{P}/clients/<str:client_id>"),
    "DELETE /v1/products/:p/clients/:id": ("DELETE", f"{P}/clients/<str:client_id>"),
    "GET /v1/clients": ("GET", "v1/clients"),
    "POST /v1/clients": ("POST", "v1/clients"),
    "PUT /v1/clients/:id": ("PUT", "v1/clients/<str:client_id>"),
    "DELETE /v1/clients/:id": ("DELETE", "v1/clients/<str:client_id>"),
    "GET /v1/user": ("GET", "v1/user"),
    "PUT /v1/user": ("PUT", "v1/user"),
    "GET /v1/user/mfa-enable": ("GET", "v1/user/mfa-enable"),
    "POST /v1/user/mfa-enable": ("POST", "v1/user/mfa-enable"),
    "PUT /v1/user/mfa-disable": ("PUT", "v1/user/mfa-disable"),
    "POST /v1/orgs": ("POST", "v1/orgs"),
    "GET /v1/user/products": ("GET", "v1/user/products"),
    "POST /v1/user/products": ("POST", "v1/user/products"),
    "GET /v1/access_tokens": ("GET", "v1/access_tokens"),
    "DELETE /v1/access_tokens": ("DELETE", "v1/access_tokens"),
    "GET /v1/access_tokens/current": ("GET", "v1/access_tokens/current"),
    "DELETE /v1/access_tokens/current": ("DELETE", "v1/access_tokens/current"),
}

# tests/test_role_matrix_devices.py: devices, groups, SIMs, customers, claim codes, serial numbers.
DEVICE_MATRIX_ROUTES: dict[str, tuple[str, str]] = {
    "GET /v1/products/:p/devices": ("GET", f"{P}/devices"),
    "POST /v1/products/:p/devices": ("POST", f"{P}/devices"),
    "PUT /v1/products/:p/devices (groups)": ("PUT", f"{P}/devices"),
    "GET /v1/products/:p/devices/:id": ("GET", f"{P}/devices/<str:device_id>"),
    "PUT /v1/products/:p/devices/:id": ("PUT", f"{P}/devices/<str:device_id>"),
    "DELETE /v1/products/:p/devices/:id": ("DELETE", f"{P}/devices/<str:device_id>"),
    "DELETE /v1/products/:p/devices/:id (deny)": ("DELETE", f"{P}/devices/<str:device_id>"),
    "DELETE /v1/products/:p/devices/:id/owner": ("DELETE", f"{P}/devices/<str:device_id>/owner"),
    "GET /v1/devices": ("GET", "v1/devices"),
    "POST /v1/devices (a product device)": ("POST", "v1/devices"),
    "POST /v1/devices (self-provision)": ("POST", "v1/devices"),
    "GET /v1/devices/:id": ("GET", "v1/devices/<str:device_id>"),
    "PUT /v1/devices/:id": ("PUT", "v1/devices/<str:device_id>"),
    "PUT /v1/devices/:id (product fields)": ("PUT", "v1/devices/<str:device_id>"),
    "DELETE /v1/devices/:id": ("DELETE", "v1/devices/<str:device_id>"),
    "POST /v1/provisioning/:id": ("POST", "v1/provisioning/<str:device_id>"),
    "GET /v1/products/:p/groups": ("GET", f"{P}/groups"),
    "POST /v1/products/:p/groups": ("POST", f"{P}/groups"),
    "GET /v1/products/:p/groups/:name": ("GET", f"{P}/groups/<str:name>"),
    "PUT /v1/products/:p/groups/:name": ("PUT", f"{P}/groups/<str:name>"),
    "DELETE /v1/products/:p/groups/:name": ("DELETE", f"{P}/groups/<str:name>"),
    "GET /v1/sims": ("GET", "v1/sims"),
    "GET /v1/sims/:iccid": ("GET", "v1/sims/<str:iccid>"),
    "HEAD /v1/sims/:iccid": ("HEAD", "v1/sims/<str:iccid>"),
    "PUT /v1/sims/:iccid": ("PUT", "v1/sims/<str:iccid>"),
    "DELETE /v1/sims/:iccid": ("DELETE", "v1/sims/<str:iccid>"),
    "GET /v1/sims/:iccid/data_usage": ("GET", "v1/sims/<str:iccid>/data_usage"),
    "GET /v1/products/:p/sims": ("GET", f"{P}/sims"),
    "POST /v1/products/:p/sims": ("POST", f"{P}/sims"),
    "GET /v1/products/:p/sims/:iccid": ("GET", f"{P}/sims/<str:iccid>"),
    "HEAD /v1/products/:p/sims/:iccid": ("HEAD", f"{P}/sims/<str:iccid>"),
    "PUT /v1/products/:p/sims/:iccid": ("PUT", f"{P}/sims/<str:iccid>"),
    "DELETE /v1/products/:p/sims/:iccid": ("DELETE", f"{P}/sims/<str:iccid>"),
    "GET /v1/products/:p/sims/:iccid/data_usage": ("GET", f"{P}/sims/<str:iccid>/data_usage"),
    "GET /v1/products/:p/sims/data_usage": ("GET", f"{P}/sims/data_usage"),
    "GET /v1/products/:p/customers": ("GET", f"{P}/customers"),
    "POST /v1/products/:p/customers": ("POST", f"{P}/customers"),
    "PUT /v1/products/:p/customers/:email": ("PUT", f"{P}/customers/<str:email>"),
    "DELETE /v1/products/:p/customers/:email": ("DELETE", f"{P}/customers/<str:email>"),
    "POST /v1/device_claims": ("POST", "v1/device_claims"),
    "POST /v1/products/:p/device_claims": ("POST", f"{P}/device_claims"),
    "GET /v1/serial_numbers/:sn": ("GET", "v1/serial_numbers/<str:serial>"),
    "GET /v1/products/:p/devices/:id/:var": ("GET", f"{P}/devices/<str:device_id>/<particle_name:name>"),
    "POST /v1/products/:p/devices/:id/:fn": ("POST", f"{P}/devices/<str:device_id>/<particle_name:name>"),
    "PUT /v1/products/:p/devices/:id/ping": ("PUT", f"{P}/devices/<str:device_id>/ping"),
    "PUT /v1/products/:p/devices/:id (signal)": ("PUT", f"{P}/devices/<str:device_id>"),
    "GET /v1/devices/:id/:var": ("GET", "v1/devices/<str:device_id>/<particle_name:name>"),
    "POST /v1/devices/:id/:fn": ("POST", "v1/devices/<str:device_id>/<particle_name:name>"),
    "PUT /v1/devices/:id/ping": ("PUT", "v1/devices/<str:device_id>/ping"),
    "PUT /v1/devices/:id (signal)": ("PUT", "v1/devices/<str:device_id>"),
}

# tests/test_role_matrix_events.py: the event streams and publishing.
_D = "<str:device>"
_PX = "/<path:prefix>"
EVENT_MATRIX_ROUTES: dict[str, tuple[str, str]] = {
    "GET /v1/events/:prefix": ("GET", f"v1/events{_PX}"),
    "GET /v1/events": ("GET", "v1/events"),
    "GET /v1/devices/events": ("GET", "v1/devices/events"),
    "GET /v1/devices/events/:prefix": ("GET", f"v1/devices/events{_PX}"),
    "POST /v1/devices/events": ("POST", "v1/devices/events"),
    "GET /v1/devices/:id/events": ("GET", f"v1/devices/{_D}/events"),
    "GET /v1/devices/:id/events/:prefix": ("GET", f"v1/devices/{_D}/events{_PX}"),
    "GET /v1/products/:p/events": ("GET", f"{P}/events"),
    "POST /v1/products/:p/events": ("POST", f"{P}/events"),
    "GET /v1/products/:p/events/:prefix": ("GET", f"{P}/events{_PX}"),
    "GET /v1/products/:p/devices/:id/events": ("GET", f"{P}/devices/{_D}/events"),
    "GET /v1/products/:p/devices/:id/events/:prefix": ("GET", f"{P}/devices/{_D}/events{_PX}"),
    "GET /v1/orgs/products/:p/events": ("GET", "v1/orgs/products/<str:product>/events"),
    "GET /v1/orgs/products/:p/events/:prefix": ("GET", f"v1/orgs/products/<str:product>/events{_PX}"),
    "GET /v1/orgs/:org/events": ("GET", f"{ORG}/events"),
    "GET /v1/orgs/:org/events/:prefix": ("GET", f"{ORG}/events{_PX}"),
    "GET /v1/orgs/:org/devices/:id/events": ("GET", f"{ORG}/devices/{_D}/events"),
    "GET /v1/orgs/:org/devices/:id/events/:prefix": ("GET", f"{ORG}/devices/{_D}/events{_PX}"),
    "GET /v1/orgs/:org/products/:p/events": ("GET", f"{ORG}/products/<str:product>/events"),
    "GET /v1/orgs/:org/products/:p/events/:prefix": ("GET", f"{ORG}/products/<str:product>/events{_PX}"),
    "GET /v1/orgs/:org/products/:p/devices/:id/events": ("GET", f"{ORG}/products/<str:product>/devices/{_D}/events"),
    "GET /v1/orgs/:org/products/:p/devices/:id/events/:prefix":
        ("GET", f"{ORG}/products/<str:product>/devices/{_D}/events{_PX}"),
}

from tests.support.routes_integrations import INTEGRATION_MATRIX_ROUTES  # noqa: E402 - the integrations matrix's rows

MATRIX_REGISTRIES = {"tests/test_role_matrix.py": TEAM_MATRIX_ROUTES,
                     "tests/test_role_matrix_devices.py": DEVICE_MATRIX_ROUTES,
                     "tests/test_role_matrix_events.py": EVENT_MATRIX_ROUTES,
                     "tests/test_integrations_role_matrix.py": INTEGRATION_MATRIX_ROUTES}

# Routes with deliberately no role semantics: who the caller is comes from the request itself, not from a
# seat, a scope or a token kind. Each is tested elsewhere (named in the reason).
NO_ROLE_SEMANTICS: dict[tuple[str, str], str] = {
    ("POST", "oauth/token"):
        "sign-in: the credentials are the request (password, client, refresh grants); tests/test_auth.py",
    ("DELETE", "v1/access_tokens/<str:token>"):
        "the token in the path is its own credential, no Authorization is read (the CLI sends none); test_auth.py",
    ("POST", "v1/users"):
        "sign-up: anyone, no token is read (api-js sends a stray default one); tests/test_signup.py",
    ("POST", "v1/user/password-reset"):
        "asking for a reset mail: anyone, the same answer for every email; tests/test_password_reset.py",
    ("DELETE", "v1/user"):
        "deletes the caller alone, whoever they are (a person's token; other kinds get 400 unauthorized); refusals "
        "depend on what they own, not on a seat; tests/test_account.py",
    ("PUT", "v1/user/password-reset"):
        "the mailed token is the credential, no Authorization is read; tests/test_password_reset.py",
}

API_PREFIXES = ("v1/", "oauth/")


def _join(route1: str, route2: str) -> str:
    """Django's URLResolver._join_route: how `resolver_match.route` concatenates nested patterns."""
    if not route1:
        return route2
    return route1 + route2.removeprefix("^")


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, object]]:
    from django.urls import URLResolver

    for entry in patterns:
        route = _join(prefix, str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry.callback


def view_methods(callback) -> list[str]:
    """The HTTP methods the view behind `callback` implements itself (OPTIONS, and the HEAD that Django
    derives from GET, are the framework's, not the view's)."""
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is None:  # a plain function view answers whatever it is sent: call that GET (and what it hands on)
        return ["GET", *getattr(callback, "sync_methods", {})]
    return [m.upper() for m in cls.http_method_names if m != "options" and hasattr(cls, m)]


def api_routes(urlconf=None) -> set[tuple[str, str]]:
    """Every (method, route pattern) of the API, e.g. ("GET", "v1/products/<str:product>/devices")."""
    from django.urls import get_resolver

    found = set()
    for route, callback in _walk(get_resolver(urlconf).url_patterns):
        if route.startswith(API_PREFIXES):
            found |= {(method, route) for method in view_methods(callback)}
    return found


def covered_routes() -> set[tuple[str, str]]:
    return {pair for registry in MATRIX_REGISTRIES.values() for pair in registry.values()}


def uncovered_routes(urlconf=None) -> set[tuple[str, str]]:
    """API routes that no role matrix covers and that are not allow-listed."""
    return api_routes(urlconf) - covered_routes() - set(NO_ROLE_SEMANTICS)
