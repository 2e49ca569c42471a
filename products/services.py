"""Writes for products: create, settings, ownership moves, and the product team."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from console import validation
from console.errors import Conflict, Forbidden, ValidationFailed
from console.models import AccessToken, Account, Invitation, OAuthClient, User
from console.roles import Role
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.teams import Team
from console.validation import UNSET, given
from products.models import Platform, Product, ProductMembership

INVITE_TASK = "products.send_team_invite"


def product_team(product: Product) -> Team:
    return Team(kind="product", target=product, membership_model=ProductMembership, fk="product",
                owner=product.account.owner, slug=product.slug, product_id=product.pk, account=product.account,
                invite_task=INVITE_TASK)


def sandbox_products_check(user: User) -> None:
    """An account is not deleted while a product of its sandbox has devices: they would be left in a product
    nobody owns."""
    busy = Product.objects.filter(account__kind=Account.Kind.SANDBOX, account__owner=user, device_count__gt=0) \
        .order_by("name").first()
    if busy is not None:
        raise Conflict(f"Your product {busy.name} has {busy.device_count} device{'s' if busy.device_count != 1 else ''}"
                       ": remove them or delete the product before deleting your account", code="owns_devices")


def sandbox_products_delete(user: User) -> None:
    """The account is going: its (empty) sandbox products go first, with what names them by id."""
    principal = Principal.for_user(user)
    for product in Product.objects.filter(account__kind=Account.Kind.SANDBOX, account__owner=user):
        product_delete(principal=principal, product=product)


def product_team_by_id(product_id: int) -> Team | None:
    product = Product.objects.select_related("account__owner").filter(pk=product_id).first()
    return product_team(product) if product is not None else None


def _platform(value: object) -> Platform:
    try:
        platform_id = int(str(value))
    except (TypeError, ValueError):
        raise ValidationFailed("platform_id must be a number such as 13 (Boron) or 32 (P2)", field="platform_id")
    platform = Platform.objects.filter(pk=platform_id).first()
    if platform is None:
        raise ValidationFailed(f"There is no platform with id {platform_id}", field="platform_id",
                               code="invalid_platform")
    return platform


def _unique_slug(name: str) -> str:
    base = validation.safe_auto_slug(slugify(name)[:100], "product")
    slug, n = base, 1
    while Product.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def product_create(*, principal: Principal, account: Account, name: str, platform_id: object,
                   description: str = "", slug: str | None = None, quarantine: bool = UNSET,
                   location_opt_in: bool = UNSET) -> Product:
    """Create a product owned by `account` (the caller's sandbox, or an org where they are Developer+)."""
    if not Account.objects.restrict(principal, "products:create").filter(pk=account.pk).exists():
        raise Forbidden("You may not create products in this account")
    name = validation.text(name, field="name", max_length=100)
    description = validation.text(description, field="description", max_length=5000, required=False,
                                  multiline=True)
    platform = _platform(platform_id)
    if Product.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A product named {name!r} already exists; product names are unique", field="name",
                       code="name_taken")
    if slug not in (None, ""):
        slug = validation.slug(slug, max_length=120)
        if Product.objects.filter(slug=slug).exists():
            raise Conflict(f"The slug {slug!r} is taken", field="slug", code="slug_taken")
    else:
        slug = _unique_slug(name)
    product = Product(account=account, platform=platform, name=name, slug=slug,
                      description=description,
                      created_by=principal.user if principal.user and not principal.user.is_programmatic else None)
    if given(quarantine):
        product.quarantine = quarantine
    if given(location_opt_in):
        product.location_opt_in = location_opt_in
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError:  # a concurrent create took the name or slug first
        raise Conflict("A product with that name or slug already exists", field="name", code="name_taken")
    audit_record(principal=principal, action="product.create", target=product.slug, account=account,
                 product_id=product.pk, data={"platform_id": platform.pk})
    return product


@transaction.atomic
def product_update(*, principal: Principal, product: Product, name: str = UNSET, description: str = UNSET,
                   platform_id: object = UNSET, quarantine: bool = UNSET, location_opt_in: bool = UNSET) -> Product:
    """Rename, describe and change settings. The slug and platform are fixed once devices may exist."""
    changed = []
    if given(name):
        name = validation.text(name, field="name", max_length=100)
        if Product.objects.exclude(pk=product.pk).filter(name__iexact=name).exists():
            raise Conflict(f"A product named {name!r} already exists", field="name", code="name_taken")
        product.name = name
        changed.append("name")
    if given(description):
        product.description = validation.text(description, field="description", max_length=5000, required=False,
                                              multiline=True)
        changed.append("description")
    if given(platform_id) and str(platform_id) != str(product.platform_id):
        raise ValidationFailed("A product's platform cannot change", field="platform_id")
    if given(quarantine):
        product.quarantine = quarantine
    if given(location_opt_in):
        product.location_opt_in = location_opt_in
    if given(quarantine) or given(location_opt_in):
        changed.append("settings")
    product.save()
    audit_record(principal=principal, action="product.update", target=product.slug, account=product.account,
                 product_id=product.pk, data={"changed": sorted(changed)})
    return product


@transaction.atomic
def product_move(*, principal: Principal | None, product: Product, to_account: Account) -> Product:
    """Move a product to another owner (support staff): into an organization, or to another user's sandbox.

    Devices, product tokens, OAuth clients, customers and webhooks all hang off the product id, which does
    not change, so they keep working. The previous owner keeps access as an Administrator of the product
    unless they already have a seat through the new owner.
    """
    if to_account.pk == product.account_id:
        raise ValidationFailed("The product already belongs to that account", field="account")
    previous = product.account
    product.account = to_account
    product.save(update_fields=["account", "updated_at"])
    old_owner = previous.owner
    if old_owner.pk != to_account.owner_id:
        # An org seat may be lower than what they had as owner: keep Administrator on this product.
        ProductMembership.objects.update_or_create(product=product, user=old_owner,
                                                   defaults={"role": Role.ADMINISTRATOR})
    # The new owner's own seat, if any, would only shadow their owner rights.
    ProductMembership.objects.filter(product=product, user=to_account.owner).delete()
    audit_record(principal=principal, action="product.move", target=product.slug, account=to_account,
                 product_id=product.pk, data={"from": previous.slug, "to": to_account.slug})
    return product


@transaction.atomic
def product_delete(*, principal: Principal, product: Product, as_staff: bool = False) -> None:
    """Delete a product with the credentials that name it by id (OAuth clients, product tokens, its API
    users): rows in `console/` hold the product id as a plain integer, so no cascade reaches them. Its
    owner deletes it; support staff (`as_staff`, the admin) may delete any."""
    if not as_staff and not (principal.is_user and principal.user and product.account.owner_id == principal.user.pk):
        raise Forbidden("Only the product's owner may delete it")
    OAuthClient.objects.filter(product_id=product.pk).delete()
    AccessToken.objects.filter(product_id=product.pk).delete()
    Invitation.objects.filter(product_id=product.pk).delete()
    programmatic = list(User.objects.filter(productmembership__product=product, kind=User.Kind.API))
    audit_record(principal=principal, action="product.delete", target=product.slug, account=product.account,
                 product_id=product.pk)
    product.delete()
    for user in programmatic:
        user.delete()
