"""The cast every API test uses: an org product with an owner and one member per role, an outsider in
another tenant, API users with and without a scope, and a product token."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.api import Api, user_token


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


def build_cast() -> Cast:
    from console.services import clients as client_services
    from console.services import tokens as token_services
    from console.services import users as user_services
    from console.models import AccessToken
    from console.roles import Role
    from console.scoping import Principal
    from console.services.teams import api_user_create
    from products.services import product_team
    from tests.factories import UserFactory, make_org, make_product, seat

    owner = UserFactory(email="owner@example.com")
    org = make_org(owner, "Acme")
    product = make_product(org, name="Trackers", platform_id=13)
    sandbox_product = make_product(user_services.sandbox_of(owner), name="Owner Sandbox Product", platform_id=12)
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
    client, secret = client_services.client_create(principal=principal, product_id=product.pk, product_slug=product.slug,
                                                   name="server", type="installed")
    product_tok = token_services.token_issue(kind=AccessToken.Kind.PRODUCT, client=client, product_id=product.pk).access_token
    tokens = {name: user_token(u) for name, u in people.items()}
    tokens.update(owner=user_token(owner), outsider=user_token(outsider), api_with=api_with,
                  api_without=api_without, product_token=product_tok)
    return Cast(org=org, product=product, sandbox_product=sandbox_product, owner=owner, outsider=outsider,
                outsider_product=outsider_product, tokens=tokens, **people)
