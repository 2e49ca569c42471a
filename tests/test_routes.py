"""Every API route is in a role matrix: the URL conf is walked, and a /v1/... or /oauth/... route (with each HTTP
method its view implements) that no matrix registers (tests/support/routes.py) and that is not allow-listed as
having no role semantics fails here. Add the route to a matrix, or, if who may call it does not depend on a
seat, a scope or a token kind, to NO_ROLE_SEMANTICS with its reason."""

from __future__ import annotations

import sys
import types

from django.urls import path
from rest_framework.views import APIView

from tests.support.routes import (
    DEVICE_MATRIX_ROUTES, MATRIX_REGISTRIES, NO_ROLE_SEMANTICS, TEAM_MATRIX_ROUTES, api_routes, covered_routes,
    uncovered_routes,
)


def test_every_api_route_is_in_a_role_matrix_or_allow_listed():
    missing = sorted(uncovered_routes())
    assert missing == [], (
        "API routes in no role matrix (tests/test_role_matrix.py, tests/test_role_matrix_devices.py) and not in "
        f"tests/support/routes.py's NO_ROLE_SEMANTICS: {missing}")


def test_the_registries_and_the_allow_list_name_real_routes_only():
    routes = api_routes()
    for name, registry in MATRIX_REGISTRIES.items():
        stale = sorted(set(registry.values()) - routes)
        assert stale == [], f"{name} registers routes the URL conf does not have: {stale}"
    assert sorted(set(NO_ROLE_SEMANTICS) - routes) == []
    assert sorted(set(NO_ROLE_SEMANTICS) & covered_routes()) == [], "allow-listed and in a matrix: pick one"
    assert all(reason.strip() for reason in NO_ROLE_SEMANTICS.values())


def test_the_walk_sees_the_whole_api():
    routes = api_routes()
    assert ("GET", "v1/products/<str:product>/devices/<str:device_id>") in routes
    assert ("HEAD", "v1/sims/<str:iccid>") in routes  # a view's own HEAD counts; Django's GET-derived one does not
    assert ("HEAD", "v1/products") not in routes
    assert ("POST", "oauth/token") in routes
    assert not any(route.startswith(("admin/", "api/", "products/")) for _, route in routes)
    assert len(routes) >= len(set(TEAM_MATRIX_ROUTES.values()) | set(DEVICE_MATRIX_ROUTES.values()))


class _Dummy(APIView):
    def get(self, request):  # pragma: no cover - never called
        raise AssertionError

    def delete(self, request, thing):  # pragma: no cover
        raise AssertionError


def test_a_route_added_without_a_matrix_row_is_reported():
    """The walk itself can fail: a URL conf with two new API routes reports both, with their methods."""
    urlconf = types.ModuleType("tests_routes_dummy_urlconf")
    urlconf.urlpatterns = [path("", __import__("django.urls", fromlist=["include"]).include("console.urls")),
                           path("v1/dummy", _Dummy.as_view()), path("v1/dummy/<str:thing>", _Dummy.as_view()),
                           path("not-api/dummy", _Dummy.as_view())]
    sys.modules[urlconf.__name__] = urlconf
    try:
        assert uncovered_routes(urlconf.__name__) - uncovered_routes() == {("GET", "v1/dummy"), ("DELETE", "v1/dummy"),
                                                      ("GET", "v1/dummy/<str:thing>"),
                                                      ("DELETE", "v1/dummy/<str:thing>")}
    finally:
        del sys.modules[urlconf.__name__]
