"""Bodies nested absurdly deep are a 400 JSON error, before any token is looked at (issue 11, defect 6): a
1.8 KB bracket-form body nested ~500 deep and JSON nested 1,000 deep answered 500."""

from __future__ import annotations

import json

import pytest

from console.api.parsers import MAX_DEPTH
from console.models import Account

pytestmark = pytest.mark.django_db


def _assert_too_deep(r):
    assert r.status_code == 400, r.content[:300]
    body = r.json()
    assert body["error"] == "invalid_request" and f"deeper than {MAX_DEPTH}" in body["error_description"], body


@pytest.mark.parametrize("path", ["/oauth/token", "/v1/user", "/v1/products/1/devices", "/v1/devices"])
def test_a_bracket_form_nested_500_deep_is_a_400(client, path):
    key = "account_info" + "[a]" * 500
    r = client.post(path, f"{key}=1", content_type="application/x-www-form-urlencoded")
    _assert_too_deep(r)


def test_json_nested_1000_deep_is_a_400_at_the_token_endpoint(client):
    _assert_too_deep(client.post("/oauth/token", "[" * 1000 + "]" * 1000, content_type="application/json"))


@pytest.mark.parametrize("method,path", [("put", "/v1/user"), ("post", "/v1/orgs"),
                                         ("post", "/v1/products/{p}/devices"), ("put", "/v1/products/{p}")])
def test_json_nested_1000_deep_is_a_400_for_a_signed_in_caller(client, cast, method, path):
    r = getattr(client, method)(path.format(p=cast.product.pk), '{"a":' * 1000 + "1" + "}" * 1000,
                                content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {cast.tokens['owner']}")
    _assert_too_deep(r)


def test_json_just_past_the_limit_is_refused_and_at_the_limit_is_read(client, cast):
    token = cast.tokens["owner"]
    deep = {"name": "x"}
    for _ in range(MAX_DEPTH):
        deep = {"n": deep}
    r = client.post("/v1/orgs", json.dumps(deep), content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {token}")
    _assert_too_deep(r)
    ok = {"name": "Nested Org", "extra": [[["fine"]]]}
    before = Account.objects.count()
    r = client.post("/v1/orgs", json.dumps(ok), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert r.status_code == 201, r.content
    assert Account.objects.count() == before + 1


def test_a_form_just_within_the_limit_is_read(client, cast):
    key = "account_info" + "[a]" * (MAX_DEPTH - 2)
    r = client.put("/v1/user", f"{key}=1&account_info[first_name]=Ada",
                   content_type="application/x-www-form-urlencoded",
                   HTTP_AUTHORIZATION=f"Bearer {cast.tokens['owner']}")
    assert r.status_code == 200, r.content
    cast.owner.refresh_from_db()
    assert cast.owner.first_name == "Ada"
