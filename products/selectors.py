"""Reads for products. Every product lookup goes through `Product.objects.restrict()`."""

from __future__ import annotations

from django.db.models import QuerySet

from console import validation
from console.errors import Forbidden, NotFound
from console.prepared import Prepared
from console.models import Account, OrgMembership, User
from console.scoping import Principal, rights_for
from products.models import Platform, Product, ProductMembership


def product_list(*, principal: Principal, account: Account | None = None, action: str = "products:list") -> QuerySet[Product]:
    qs = Product.objects.restrict(principal, action).select_related("account", "account__owner", "platform")
    if account is not None:
        qs = qs.filter(account=account)
    return qs.order_by("name")


# Every product-form request starts here, so both lookups are compiled once (console/prepared.py).
_PRODUCT_BY = {
    "pk": Prepared(lambda p: Product.objects.select_related("account", "account__owner", "platform")
                   .filter(pk=p.integer("pk"))),
    "slug": Prepared(lambda p: Product.objects.select_related("account", "account__owner", "platform")
                     .filter(slug=p.text("slug"))),
}


def product_get(*, principal: Principal, ident: str | int, action: str) -> Product:
    """The product by numeric id or slug: 404 if the caller cannot see it, 403 if it may not `action` it."""
    lookup = validation.ident(ident)
    if lookup is None:  # cannot be an id or a slug: do not send it to the database at all
        raise NotFound(f"Product {str(ident)[:100]} not found")
    # rights_for is restrict()'s twin for one object in hand (console/scoping.py), so the lookup itself
    # need not carry the scoping subqueries: find the row, then ask who may see it and do `action`.
    (field, value), = lookup.items()
    product = _PRODUCT_BY[field].first(**{field: value})
    if product is None:
        raise NotFound(f"Product {ident} not found")
    product_check(principal=principal, product=product, ident=ident, action=action)
    return product


def product_check(*, principal: Principal, product: Product, ident: str | int, action: str) -> None:
    """product_get's verdict on a product row already in hand (found by `ident`): 404 unless the caller
    can see it, 403 unless it may `action` it. For lookups that fetch the product joined to something else."""
    rights = rights_for(principal, product)
    if not rights.visible:
        raise NotFound(f"Product {ident} not found")
    if not rights.may(action):
        raise Forbidden(_forbidden_text(principal, action))


def customer_product_get(*, principal: Principal, ident: str | int) -> Product:
    """A customer token's own product, by id or slug (the product-form routes a customer may call, such as
    claim codes); any other product is a 404, as for every other product route."""
    lookup = validation.ident(ident)
    if principal.kind != "customer" or lookup is None:
        raise NotFound(f"Product {str(ident)[:100]} not found")
    product = (Product.objects.filter(**lookup).filter(pk=principal.product_id)
               .select_related("account", "account__owner", "platform").first())
    if product is None:
        raise NotFound(f"Product {ident} not found")
    return product


def _forbidden_text(principal: Principal, action: str) -> str:
    if principal.kind == "api_user":
        return f"This API user lacks the scope {action}"
    if principal.kind == "product":
        if principal.scopes:
            return f"This OAuth client's scope does not allow {action}"
        return "Product tokens cannot do this; sign in as a team member"
    return "Your role on this product does not allow this action"


def platform_list() -> QuerySet[Platform]:
    return Platform.objects.filter(deprecated=False).order_by("name")


def visible_product_ids(principal: Principal, product_ids: set[int]) -> set[int]:
    """Which of these products the caller can open (a list links only those)."""
    if not product_ids:
        return set()
    return set(Product.objects.restrict(principal).filter(pk__in=product_ids).values_list("pk", flat=True))


def product_team_user_ids(product: Product) -> list[int]:
    """The people on a product's team, by user id: its account's owner, its product seats and, for an
    organization's product, the organization's seats (API users hold no devices and are left out)."""
    people = {product.account.owner_id}
    people.update(ProductMembership.objects.filter(product=product, user__kind=User.Kind.HUMAN)
                  .values_list("user_id", flat=True))
    if not product.account.is_sandbox:
        people.update(OrgMembership.objects.filter(account_id=product.account_id, user__kind=User.Kind.HUMAN)
                      .values_list("user_id", flat=True))
    return sorted(people)
