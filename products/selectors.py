"""Reads for products. Every product lookup goes through `Product.objects.restrict()`."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from console.errors import Forbidden, NotFound
from console.models import Account, User
from console.roles import RANK, Role
from console.scoping import Principal
from products.models import Platform, Product, ProductMembership


SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")


def product_list(*, principal: Principal, account: Account | None = None, action: str = "products:list") -> QuerySet[Product]:
    qs = Product.objects.restrict(principal, action).select_related("account", "account__owner", "platform")
    if account is not None:
        qs = qs.filter(account=account)
    return qs.order_by("name")


def product_get(*, principal: Principal, ident: str | int, action: str) -> Product:
    """The product by numeric id or slug: 404 if the caller cannot see it, 403 if it may not `action` it."""
    visible = Product.objects.restrict(principal).select_related("account", "account__owner", "platform")
    ident = str(ident)
    if ident.isascii() and ident.isdigit() and len(ident) <= 18:
        lookup = {"pk": int(ident)}
    elif SLUG.match(ident):
        lookup = {"slug": ident}
    else:  # cannot be an id or a slug: do not send it to the database at all
        raise NotFound(f"Product {ident[:100]} not found")
    product = visible.filter(**lookup).first()
    if product is None:
        raise NotFound(f"Product {ident} not found")
    if not Product.objects.restrict(principal, action).filter(pk=product.pk).exists():
        raise Forbidden(_forbidden_text(principal, action))
    return product


def _forbidden_text(principal: Principal, action: str) -> str:
    if principal.kind == "api_user":
        return f"This API user lacks the scope {action}"
    if principal.kind == "product":
        return "Product tokens cannot do this; sign in as a team member"
    return "Your role on this product does not allow this action"


def product_role(*, user: User, product: Product) -> tuple[Role | None, bool]:
    """(role, is_owner) of a person on a product: the owner, else the higher of product and org seats."""
    if product.account.owner_id == user.pk:
        return Role.ADMINISTRATOR, True
    roles = list(ProductMembership.objects.filter(product=product, user=user).values_list("role", flat=True))
    if not product.account.is_sandbox:
        roles += list(product.account.memberships.filter(user=user).values_list("role", flat=True))
    roles = [Role(r) for r in roles if r]
    return (max(roles, key=lambda r: RANK[r]) if roles else None), False


def platform_list() -> QuerySet[Platform]:
    return Platform.objects.filter(deprecated=False).order_by("name")
