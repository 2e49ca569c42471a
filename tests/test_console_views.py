"""The browser console through Django's test client: sign-in, the account switcher, tenant isolation
(outsiders get 404), role checks (View-only reads, and its POSTs are refused with 403 and change nothing),
form errors from services, and secrets shown exactly once."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from console.models import AccessToken, Account, OAuthClient, OrgMembership, hash_secret
from console.roles import Role
from console.scoping import Principal
from console.services.teams import api_user_create
from products.models import Product, ProductMembership
from products.services import product_team
from tests.factories import PASSWORD, UserFactory
from tests.support.console import signed_in

pytestmark = pytest.mark.django_db


def secret_on(response) -> str:
    """The one-time secret a page reveals (the read-only input of the reveal box)."""
    match = re.search(r'value="([0-9a-f]{40})"[^>]*data-secret', response.content.decode())
    assert match, "no secret revealed on the page"
    return match.group(1)


# --- signing in and out -------------------------------------------------------------------------------


def test_sign_in_lands_on_sandbox_products_and_sign_out_ends_the_session(cast):
    client = Client()
    assert client.get("/products/")["Location"].startswith("/login/")
    r = client.post("/login/", {"username": "Owner@Example.com", "password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/"
    r = client.get("/", follow=True)
    assert r.redirect_chain[-1][0] == "/products/"
    assert "Owner Sandbox Product" in r.content.decode()

    assert client.get("/logout/").status_code == 405  # sign-out is a POST (CSRF-protected) only
    r = client.post("/logout/")
    assert r.status_code == 302 and r["Location"] == "/login/"
    assert client.get("/products/")["Location"].startswith("/login/")


def test_wrong_password_is_a_form_error(cast):
    client = Client()
    r = client.post("/login/", {"username": "owner@example.com", "password": "nope-nope"})
    assert r.status_code == 200
    assert "do not match an account" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_api_users_cannot_use_the_console(cast):
    api_user = cast.product.memberships.filter(user__kind="api").first().user
    r = Client().post("/login/", {"username": api_user.email, "password": "anything-at-all"})
    assert r.status_code == 200 and "_auth_user_id" not in r.wsgi_request.session
    # Even with a session forced on them, the console treats them as signed out.
    assert signed_in(api_user).get("/products/")["Location"].startswith("/login/")


def test_login_keeps_next(cast):
    r = Client().post("/login/?next=/authentication/", {"username": "owner@example.com", "password": PASSWORD,
                                                        "next": "/authentication/"})
    assert r["Location"] == "/authentication/"


# --- the account switcher --------------------------------------------------------------------------------


def test_switcher_lists_sandbox_then_organizations(cast):
    html = signed_in(cast.owner).get("/products/").content.decode()
    assert html.index('data-account="sandbox"') < html.index(f'data-account="{cast.org.slug}"')
    assert 'data-account="other-corp"' not in html
    assert "Create organization" in html


def test_switch_to_an_organization(cast):
    client = signed_in(cast.viewer)
    assert client.get("/switch/").status_code == 405
    r = client.post("/switch/", {"account_id": cast.org.pk})
    assert r.status_code == 302 and r["Location"] == f"/orgs/{cast.org.slug}/products/"
    assert client.session["account_id"] == cast.org.pk
    assert client.get("/")["Location"] == f"/orgs/{cast.org.slug}/products/"
    page = client.get(f"/orgs/{cast.org.slug}/products/").content.decode()
    assert "Trackers" in page


@pytest.mark.parametrize("target", ["outsider_org", "outsider_sandbox", "garbage"])
def test_switcher_refuses_accounts_the_user_cannot_see(cast, target):
    client = signed_in(cast.viewer)
    wanted = {
        "outsider_org": lambda: cast.outsider_product.account.pk,
        "outsider_sandbox": lambda: Account.objects.get(kind="sandbox", owner=cast.outsider).pk,
        "garbage": lambda: "1 OR 1=1",
    }[target]()
    r = client.post("/switch/", {"account_id": wanted})
    assert r.status_code == 404
    assert "account_id" not in client.session
    assert client.get("/")["Location"] == "/products/"


# --- tenant isolation: another tenant's pages are 404, GET or POST ---------------------------------------------


def product_urls(slug: str) -> list[tuple[str, str, dict]]:
    return [
        ("get", f"/products/{slug}/", {}),
        ("get", f"/products/{slug}/settings/", {}),
        ("post", f"/products/{slug}/settings/", {"name": "Pwned", "quarantine": "approve"}),
        ("get", f"/products/{slug}/team/", {}),
        ("post", f"/products/{slug}/team/", {"intent": "invite", "username": "outsider@example.com", "role": "administrator"}),
        ("post", f"/products/{slug}/team/developer@example.com/role/", {"role": "viewer"}),
        ("post", f"/products/{slug}/team/developer@example.com/remove/", {}),
        ("get", f"/products/{slug}/authentication/", {}),
        ("post", f"/products/{slug}/authentication/", {"intent": "client", "name": "x", "type": "installed"}),
    ]


def test_outsider_gets_404_on_every_product_page(cast):
    client = signed_in(cast.outsider)
    before = (Product.objects.get(pk=cast.product.pk).name, ProductMembership.objects.count(), OAuthClient.objects.count())
    for ident in (cast.product.slug, str(cast.product.pk)):
        for method, url, data in product_urls(ident):
            r = getattr(client, method)(url, data)
            assert r.status_code == 404, (method, url, r.status_code)
    server = OAuthClient.objects.get(product_id=cast.product.pk)
    assert client.post(f"/products/{cast.product.slug}/authentication/clients/{server.client_id}/delete/").status_code == 404
    after = (Product.objects.get(pk=cast.product.pk).name, ProductMembership.objects.count(), OAuthClient.objects.count())
    assert before == after


def test_outsider_gets_404_on_org_pages(cast):
    client = signed_in(cast.outsider)
    org = cast.org.slug
    for method, url, data in [
        ("get", f"/orgs/{org}/products/", {}),
        ("post", f"/orgs/{org}/products/", {"name": "Sneaky", "platform_id": 13}),
        ("get", f"/orgs/{org}/team/", {}),
        ("post", f"/orgs/{org}/team/", {"intent": "invite", "username": "outsider@example.com", "role": "viewer"}),
        ("post", f"/orgs/{org}/team/viewer@example.com/remove/", {}),
        ("get", f"/orgs/{org}/settings/", {}),
    ]:
        assert getattr(client, method)(url, data).status_code == 404, url
    assert not Product.objects.filter(name="Sneaky").exists()
    assert OrgMembership.objects.filter(account=cast.org, user=cast.viewer).exists()


def test_sandbox_products_are_private(cast):
    r = signed_in(cast.outsider).get(f"/products/{cast.sandbox_product.slug}/")
    assert r.status_code == 404
    assert cast.sandbox_product.name not in signed_in(cast.outsider).get("/products/").content.decode()


# --- roles: View-only reads, and is refused on write -------------------------------------------------------------


def test_view_only_member_sees_settings_read_only(cast):
    r = signed_in(cast.viewer).get(f"/products/{cast.product.slug}/settings/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Read-only" in html
    assert "Save changes" not in html
    name_input = re.search(r"<input[^>]*name=\"name\"[^>]*>", html).group(0)
    assert "disabled" in name_input


def test_view_only_settings_post_is_refused_and_changes_nothing(cast):
    r = signed_in(cast.viewer).post(f"/products/{cast.product.slug}/settings/",
                                    {"name": "Renamed", "description": "x", "quarantine": "approve",
                                     "location_opt_in": "on"})
    assert r.status_code == 403
    assert "can’t do that" in r.content.decode()
    product = Product.objects.get(pk=cast.product.pk)
    assert (product.name, product.description, product.quarantine, product.location_opt_in) == ("Trackers", "", True, False)


def test_administrator_saves_settings(cast):
    client = signed_in(cast.admin)
    assert "Save changes" in client.get(f"/products/{cast.product.slug}/settings/").content.decode()
    r = client.post(f"/products/{cast.product.slug}/settings/",
                    {"name": "Trackers v2", "description": "Boron fleet", "quarantine": "approve",
                     "location_opt_in": "on"})
    assert r.status_code == 302
    product = Product.objects.get(pk=cast.product.pk)
    assert (product.name, product.description, product.quarantine, product.location_opt_in) == (
        "Trackers v2", "Boron fleet", False, True)


def test_settings_rename_to_a_taken_name_is_a_field_error(cast):
    r = signed_in(cast.owner).post(f"/products/{cast.product.slug}/settings/",
                                   {"name": "owner sandbox product", "quarantine": "quarantine"})
    assert r.status_code == 400
    assert "already exists" in r.content.decode()
    assert Product.objects.get(pk=cast.product.pk).name == "Trackers"


def test_view_only_member_cannot_change_the_team_or_clients(cast):
    client = signed_in(cast.viewer)
    team_page = client.get(f"/products/{cast.product.slug}/team/").content.decode()
    assert "Invite member" not in team_page and 'hx-post' not in team_page
    assert client.post(f"/products/{cast.product.slug}/team/",
                       {"intent": "invite", "username": "outsider@example.com", "role": "viewer"}).status_code == 403
    assert client.post(f"/products/{cast.product.slug}/team/developer@example.com/role/",
                       {"role": "viewer"}).status_code == 403
    assert client.post(f"/products/{cast.product.slug}/team/developer@example.com/remove/").status_code == 403
    assert client.post(f"/products/{cast.product.slug}/authentication/",
                       {"intent": "client", "name": "x", "type": "installed"}).status_code == 403
    assert client.post(f"/orgs/{cast.org.slug}/products/", {"name": "Nope", "platform_id": 13}).status_code == 403
    assert ProductMembership.objects.get(product=cast.product, user=cast.developer).role == Role.DEVELOPER
    assert not Product.objects.filter(name="Nope").exists()
    assert OAuthClient.objects.filter(product_id=cast.product.pk).count() == 1


def test_product_member_without_org_seat_finds_the_product_under_shared(cast):
    html = signed_in(cast.developer).get("/products/").content.decode()
    assert "Shared with you" in html and f'data-product="{cast.product.slug}"' in html


# --- products -------------------------------------------------------------------------------------------------


def test_create_product_in_an_org(cast):
    r = signed_in(cast.admin).post(f"/orgs/{cast.org.slug}/products/",
                                   {"name": "Sensors", "platform_id": 32, "description": "P2 sensors"})
    product = Product.objects.get(name="Sensors")
    assert r.status_code == 302 and r["Location"] == f"/products/{product.slug}/"
    assert product.account == cast.org and product.platform_id == 32


def test_duplicate_product_name_is_a_form_error_and_writes_nothing(cast):
    before = Product.objects.count()
    r = signed_in(cast.admin).post(f"/orgs/{cast.org.slug}/products/", {"name": "TRACKERS", "platform_id": 13})
    assert r.status_code == 400
    html = r.content.decode()
    assert "already exists" in html and "data-open-on-load" in html  # the dialog reopens with the error
    assert Product.objects.count() == before


def test_unknown_platform_is_a_form_error(cast):
    r = signed_in(cast.owner).post("/products/", {"name": "Old Photons", "platform_id": 6})  # deprecated
    assert r.status_code == 400 and "Select a valid choice" in r.content.decode()
    assert not Product.objects.filter(name="Old Photons").exists()


def test_sandbox_product_create(cast):
    r = signed_in(cast.viewer).post("/products/", {"name": "My Bench", "platform_id": 12})
    assert r.status_code == 302
    product = Product.objects.get(name="My Bench")
    assert product.account.is_sandbox and product.account.owner == cast.viewer


# --- team ------------------------------------------------------------------------------------------------------------


def test_invite_change_role_with_htmx_and_remove(cast):
    client = signed_in(cast.owner)
    base = f"/products/{cast.product.slug}/team/"
    r = client.post(base, {"intent": "invite", "username": "outsider@example.com", "role": "support"})
    assert r.status_code == 302
    seat = ProductMembership.objects.get(product=cast.product, user=cast.outsider)
    assert seat.role == Role.SUPPORT

    r = client.post(f"{base}outsider@example.com/role/", {"role": "developer"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.lstrip().startswith("<tr") and "Saved" in html and "<nav" not in html
    seat.refresh_from_db()
    assert seat.role == Role.DEVELOPER

    r = client.post(f"{base}outsider@example.com/remove/")
    assert r.status_code == 302
    assert not ProductMembership.objects.filter(product=cast.product, user=cast.outsider).exists()


def test_invite_errors_are_form_errors(cast):
    client = signed_in(cast.owner)
    base = f"/orgs/{cast.org.slug}/team/"
    r = client.post(base, {"intent": "invite", "username": "not-an-email", "role": "viewer"})
    assert r.status_code == 400 and "Enter a valid email address." in r.content.decode()
    r = client.post(base, {"intent": "invite", "username": "viewer@example.com", "role": "viewer"})
    assert r.status_code == 400 and "already a member" in r.content.decode()


def test_owner_row_is_fixed(cast):
    client = signed_in(cast.owner)
    html = client.get(f"/orgs/{cast.org.slug}/team/").content.decode()
    assert "Administrator (Owner)" in html
    r = client.post(f"/orgs/{cast.org.slug}/team/owner@example.com/role/", {"role": "viewer"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "The owner keeps" in r.content.decode()
    r = client.post(f"/orgs/{cast.org.slug}/team/owner@example.com/remove/")
    assert r.status_code == 302
    assert Account.objects.get(pk=cast.org.pk).owner == cast.owner


def test_api_user_token_is_shown_once(cast):
    client = signed_in(cast.owner)
    base = f"/orgs/{cast.org.slug}/team/"
    r = client.post(base, {"intent": "api_user", "friendly_name": "Dashboard",
                           "scopes": ["devices:list", "products:get"]})
    assert r.status_code == 200
    token = secret_on(r)
    row = AccessToken.objects.get(token_hash=hash_secret(token))
    assert row.kind == "api_user" and sorted(row.scopes) == ["devices:list", "products:get"]
    assert token not in client.get(base).content.decode()
    assert "Dashboard" in client.get(base).content.decode()

    # API usernames hold a "+": the row's links must still resolve.
    r = client.post(f"{base}{row.user.email}/remove/")
    assert r.status_code == 302
    assert not AccessToken.objects.filter(pk=row.pk).exists()


def test_api_user_new_token_replaces_the_old_one(cast):
    client = signed_in(cast.owner)
    base = f"/products/{cast.product.slug}/team/"
    bot = ProductMembership.objects.filter(product=cast.product, user__kind="api").first().user
    old = set(AccessToken.objects.filter(user=bot).values_list("pk", flat=True))
    r = client.post(base, {"intent": "regenerate", "username": bot.email})
    assert r.status_code == 200
    new = AccessToken.objects.get(token_hash=hash_secret(secret_on(r)))
    assert new.user == bot and new.pk not in old
    assert not AccessToken.objects.filter(pk__in=old).exists()


def test_api_user_needs_a_scope(cast):
    r = signed_in(cast.owner).post(f"/orgs/{cast.org.slug}/team/", {"intent": "api_user", "friendly_name": "x"})
    assert r.status_code == 400 and "Choose at least one scope" in r.content.decode()


# --- tokens and OAuth clients -----------------------------------------------------------------------------------


def test_token_create_shows_it_once_and_revoke_works(cast):
    client = signed_in(cast.viewer)
    r = client.post("/authentication/", {"intent": "token", "expires_in": "3600"})
    assert r.status_code == 200
    raw = secret_on(r)
    token = AccessToken.objects.get(token_hash=hash_secret(raw))
    assert token.user == cast.viewer and token.kind == "user" and token.client_name == "cyan-console"
    assert 3500 < (token.expires_at - token.created_at).total_seconds() <= 3600

    page = client.get("/authentication/").content.decode()
    assert raw not in page and f"{token.prefix}…" in page

    # Someone else cannot revoke it; its owner can.
    assert signed_in(cast.outsider).post(f"/authentication/tokens/{token.pk}/revoke/").status_code == 404
    assert client.get(f"/authentication/tokens/{token.pk}/revoke/").status_code == 405
    r = client.post(f"/authentication/tokens/{token.pk}/revoke/")
    assert r.status_code == 302
    assert not AccessToken.objects.filter(pk=token.pk).exists()


def test_token_that_never_expires(cast):
    r = signed_in(cast.viewer).post("/authentication/", {"intent": "token", "expires_in": "0"})
    assert AccessToken.objects.get(token_hash=hash_secret(secret_on(r))).expires_at is None


def test_sandbox_oauth_client_secret_once_and_delete(cast):
    client = signed_in(cast.viewer)
    r = client.post("/authentication/", {"intent": "client", "name": "My app", "type": "installed"})
    assert r.status_code == 200
    secret = secret_on(r)
    made = OAuthClient.objects.get(owner=cast.viewer)
    assert made.check_secret(secret) and made.client_id in r.content.decode()
    assert secret not in client.get("/authentication/").content.decode()

    assert signed_in(cast.outsider).post(f"/authentication/clients/{made.client_id}/delete/").status_code == 404
    assert client.post(f"/authentication/clients/{made.client_id}/delete/").status_code == 302
    assert not OAuthClient.objects.filter(pk=made.pk).exists()


def test_web_client_needs_a_redirect_uri(cast):
    r = signed_in(cast.viewer).post("/authentication/", {"intent": "client", "name": "Site", "type": "web"})
    assert r.status_code == 400 and "redirect_uri is required" in r.content.decode()


def test_developer_creates_and_deletes_a_product_client(cast):
    client = signed_in(cast.developer)
    base = f"/products/{cast.product.slug}/authentication/"
    r = client.post(base, {"intent": "client", "name": "Backend", "type": "installed", "scope": "customers:create"})
    assert r.status_code == 200
    made = OAuthClient.objects.get(product_id=cast.product.pk, name="Backend")
    assert made.check_secret(secret_on(r)) and made.scope == "customers:create"
    r = client.post(f"{base}clients/{made.client_id}/delete/")
    assert r.status_code == 302 and not OAuthClient.objects.filter(pk=made.pk).exists()


# --- organizations ----------------------------------------------------------------------------------------------------


def test_create_organization(cast):
    client = signed_in(cast.outsider)
    r = client.post("/organizations/new/", {"name": "Zeta Labs", "slug": ""})
    org = Account.objects.get(name="Zeta Labs")
    assert r.status_code == 302 and r["Location"] == f"/orgs/{org.slug}/products/"
    assert client.session["account_id"] == org.pk
    r = client.post("/organizations/new/", {"name": "Another", "slug": cast.org.slug})
    assert r.status_code == 400 and "is taken" in r.content.decode()
    assert not Account.objects.filter(name="Another").exists()


def test_org_settings_shows_owner(cast):
    html = signed_in(cast.viewer).get(f"/orgs/{cast.org.slug}/settings/").content.decode()
    assert "owner@example.com" in html and cast.org.slug in html


def test_org_api_user_appears_in_both_lists_only_where_it_belongs(cast):
    api_user_create(principal=Principal.for_user(cast.owner), team=product_team(cast.product),
                    friendly_name="Product bot", scopes=["devices:list"])
    client = signed_in(cast.owner)
    assert "Product bot" in client.get(f"/products/{cast.product.slug}/team/").content.decode()
    assert "Product bot" not in client.get(f"/orgs/{cast.org.slug}/team/").content.decode()


def test_new_user_sees_an_empty_state(db):
    user = UserFactory(email="fresh@example.com")
    html = signed_in(user).get("/products/").content.decode()
    assert "No products yet" in html and "Create your first product" in html


def test_product_search_filters_the_list(cast):
    client = signed_in(cast.owner)
    html = client.get(f"/orgs/{cast.org.slug}/products/", {"q": "track"}).content.decode()
    assert f'data-product="{cast.product.slug}"' in html
    html = client.get(f"/orgs/{cast.org.slug}/products/", {"q": "nothing-like-it"}).content.decode()
    assert "No products match" in html and f'data-product="{cast.product.slug}"' not in html


def test_product_list_queries_do_not_grow_with_products(cast, django_assert_max_num_queries):
    from tests.factories import make_product

    client = signed_in(cast.owner)
    url = f"/orgs/{cast.org.slug}/products/"
    client.get(url)  # warm the session and content types
    with django_assert_max_num_queries(14) as few:
        client.get(url)
    for n in range(6):
        make_product(cast.org, name=f"Extra {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(url).content.decode().count("data-product=") == 7
