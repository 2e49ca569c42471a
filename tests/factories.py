"""factory_boy factories. Users are made through the service, so each gets its sandbox like a real sign-up."""

from __future__ import annotations

import factory

from console.services import orgs as org_services
from console.services import users as user_services
from console.models import Account, OrgMembership, User
from console.scoping import Principal
from products.models import Product, ProductMembership

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return user_services.user_create(email=kwargs["email"], password=kwargs.get("password", PASSWORD),
                                    first_name=kwargs.get("first_name", ""), validate=False)


def make_org(owner: User, name: str | None = None) -> Account:
    name = name or f"Org {Account.objects.count() + 1}"
    return org_services.org_create(creator=owner, name=name)


def make_product(account: Account, *, name: str | None = None, platform_id: int = 13) -> Product:
    from products.services import product_create

    name = name or f"Product {Product.objects.count() + 1}"
    return product_create(principal=Principal.for_user(account.owner), account=account, name=name,
                          platform_id=platform_id)


def seat(target, user: User, role: str | None, scopes: list[str] | None = None):
    if isinstance(target, Product):
        return ProductMembership.objects.create(product=target, user=user, role=role, scopes=scopes or [])
    return OrgMembership.objects.create(account=target, user=user, role=role, scopes=scopes or [])
