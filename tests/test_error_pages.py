"""The console's error pages leave a way out: the 500 page links to the console and offers sign-out, and a
console address opened with the wrong method is a page, not an empty 405. The API keeps its JSON errors."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import include, path

from tests.factories import UserFactory
from tests.support.api import Api, user_token
from tests.support.console import signed_in

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("a view that fails")


urlpatterns = [path("boom/", _boom), path("", include("console.urls"))]
handler500 = "console.urls.handler500"


@pytest.mark.urls("tests.test_error_pages")
def test_the_500_page_offers_the_console_and_a_sign_out_that_works():
    user = UserFactory()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(user)
    client.get("/login/")  # any page: sets the CSRF cookie a real browser would hold
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert '<a class="btn btn-primary" href="/">Go to the console</a>' in html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    signed_out = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert signed_out.status_code == 302 and signed_out["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


@pytest.mark.urls("tests.test_error_pages")
def test_the_500_page_of_a_visitor_has_no_sign_out():
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Go to the console" in html and "Sign out" not in html


def test_a_get_on_a_post_only_console_address_is_a_page_with_a_way_back():
    client = signed_in(UserFactory())
    response = client.get("/logout/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "This address is the target of a button" in html
    assert "It answers POST requests only" in html
    assert 'href="/"' in html and "Sign out" in html  # the shell, with its user menu


def test_a_visitor_gets_the_bare_405_page():
    response = Client().get("/logout/")
    assert response.status_code == 405
    assert "This address is the target of a button" in response.content.decode()


def test_the_api_keeps_its_json_405():
    response = Api(user_token(UserFactory())).call("PATCH", "/v1/orgs", {})
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] and "This address" not in response.content.decode()
