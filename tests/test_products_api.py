"""Products and organizations over the API: create, list, get by id or slug, settings, moves."""

from __future__ import annotations

import pytest

from console.models import AuditEntry, OAuthClient
from console.services.users import sandbox_of
from console.scoping import Principal
from products.models import Product, ProductMembership
from products.services import product_move
from tests.support.api import Api, user_token
from tests.factories import UserFactory, make_org

pytestmark = pytest.mark.django_db


def test_create_sandbox_product_cli_shape(cast):
    api = cast.api("outsider")
    r = api.post("/v1/user/products", {"product": {"name": "Weather Station", "description": "rooftop",
                                                    "platform_id": 32, "settings": {"location": {"opt_in": True}}}})
    assert r.status_code == 201, r.content
    product = r.json()["product"]
    assert product["slug"] == "weather-station" and product["platform_id"] == 32
    assert product["settings"]["location"]["opt_in"] is True and product["settings"]["quarantine"] is True
    assert product["user"] == "outsider@example.com"
    listed = api.get("/v1/user/products").json()["products"]
    assert [p["slug"] for p in listed] == ["weather-station"]
    assert AuditEntry.objects.filter(action="product.create", target="weather-station").exists()


def test_create_org_product_and_list(cast):
    r = cast.api("admin").post(f"/v1/orgs/{cast.org.slug}/products", {"name": "Gateways", "platform_id": 26})
    assert r.status_code == 201
    assert r.json()["product"]["org"] == cast.org.slug
    names = [p["name"] for p in cast.api("viewer").get(f"/v1/orgs/{cast.org.slug}/products").json()["products"]]
    assert names == ["Gateways", "Trackers"]


def test_get_product_by_id_and_slug(cast):
    api = cast.api("viewer")
    by_id = api.get(f"/v1/products/{cast.product.pk}").json()["product"]
    by_slug = api.get(f"/v1/products/{cast.product.slug}").json()["product"]
    assert by_id == by_slug and by_id["id"] == cast.product.pk
    assert set(by_id) >= {"id", "platform_id", "name", "slug", "description", "groups", "settings",
                          "device_protection", "requires_activation_codes"}


def test_products_list_covers_sandbox_and_orgs(cast):
    slugs = {p["slug"] for p in cast.api("owner").get("/v1/products").json()["products"]}
    assert slugs == {cast.product.slug, cast.sandbox_product.slug}


def test_settings_update_by_admin(cast):
    r = cast.api("admin").put(f"/v1/products/{cast.product.slug}",
                              {"description": "new", "settings": {"quarantine": False}})
    assert r.status_code == 200
    cast.product.refresh_from_db()
    assert cast.product.description == "new" and cast.product.quarantine is False


def test_platform_cannot_change(cast):
    r = cast.api("owner").put(f"/v1/products/{cast.product.slug}", {"platform_id": 12})
    assert r.status_code == 400 and r.json()["field"] == "platform_id"


def test_org_create_and_list(cast):
    api = cast.api("outsider")
    r = api.post("/v1/orgs", {"name": "Brand New Co"})
    assert r.status_code == 201
    org = r.json()["organization"]
    assert org["slug"] == "brand-new-co"
    assert "brand-new-co" in {o["slug"] for o in api.get("/v1/orgs").json()["organizations"]}
    team = api.get("/v1/orgs/brand-new-co/team").json()["team"]
    assert team[0]["username"] == "outsider@example.com" and team[0]["role_label"] == "Administrator (Owner)"


def test_orgs_list_is_empty_for_a_user_without_orgs(db):
    user = UserFactory(email="lonely@example.com")
    assert Api(user_token(user)).get("/v1/orgs").json() == {"organizations": []}


def test_move_sandbox_product_into_org_keeps_tokens_and_access(cast):
    owner = cast.owner
    product = cast.sandbox_product
    client_api = Api(cast.tokens["owner"])
    r = client_api.post(f"/v1/products/{product.slug}/clients", {"name": "srv", "type": "installed"})
    client = r.json()["client"]
    token = client_api.call("POST", "/oauth/token", {"grant_type": "client_credentials", "client_id": client["id"],
                                                     "client_secret": client["secret"]}, form=True).json()["access_token"]
    other = UserFactory(email="neworg@example.com")
    org = make_org(other, "Destination")
    product_move(principal=None, product=product, to_account=org)
    product.refresh_from_db()
    assert product.account == org
    # The product token and its client still work; the former owner keeps Administrator access.
    assert Api(token).get(f"/v1/products/{product.pk}").status_code == 200
    assert OAuthClient.objects.filter(client_id=client["id"]).exists()
    assert client_api.put(f"/v1/products/{product.slug}", {"description": "still mine"}).status_code == 200
    assert ProductMembership.objects.get(product=product, user=owner).role == "administrator"
    # It no longer lives in the old sandbox.
    assert product.slug not in {p["slug"] for p in client_api.get("/v1/user/products").json()["products"]}


def test_product_move_to_same_account_is_refused(cast):
    from console.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        product_move(principal=Principal.for_user(cast.owner), product=cast.sandbox_product,
                     to_account=sandbox_of(cast.owner))


def test_product_token_gets_only_its_product(cast):
    api = cast.api("product_token")
    assert api.get(f"/v1/products/{cast.product.slug}").status_code == 200
    assert api.get(f"/v1/products/{cast.outsider_product.slug}").status_code == 404
    assert [p["slug"] for p in api.get("/v1/products").json()["products"]] == [cast.product.slug]
    assert Product.objects.count() == 3
