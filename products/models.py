"""Products (one platform each, owned by a sandbox or an organization), their teams, and the platform list."""

from __future__ import annotations

from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from console.models import Account, MembershipBase, OrgMembership, User
from console.scoping import Principal, Scope, restrict_q


class Platform(models.Model):
    """A device platform, by Particle's numeric id (12 Argon, 13 Boron, 32 P2, ...)."""

    class Connectivity(models.TextChoices):
        CELLULAR = "cellular", "Cellular"
        WIFI = "wifi", "Wi-Fi"

    id = models.PositiveIntegerField(primary_key=True)
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    connectivity = models.CharField(max_length=8, choices=Connectivity.choices)
    generation = models.PositiveSmallIntegerField(default=3)
    deprecated = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def is_cellular(self) -> bool:
        return self.connectivity == self.Connectivity.CELLULAR


class ProductQuerySet(models.QuerySet["Product"]):
    def scope(self) -> Scope:
        return Scope(account_field="account", self_product=True,
                     memberships=((ProductMembership, "product", "pk"), (OrgMembership, "account", "account")))

    def restrict(self, principal: Principal, action: str | None = None) -> "ProductQuerySet":
        """Products `principal` may take `action` on (None: may see at all). The only way to list products."""
        return self.filter(restrict_q(principal, action, self.scope()))


class Product(models.Model):
    """A fleet of devices of one platform, with its own team, groups, firmware, integrations and customers."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="products",
                                help_text="The owner: a user's sandbox or an organization")
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    quarantine = models.BooleanField(
        default=True,
        help_text="Unknown devices that present this product's id wait in quarantine; off = auto-approve",
    )
    location_opt_in = models.BooleanField(default=False)
    # Kept current by the device services (F() updates in the same transaction): counting a million rows
    # per list request takes ~80 ms, reading this takes nothing. `manage.py recount_devices` repairs drift.
    device_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="product_name_unique_ci")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def delete(self, *args, **kwargs):
        # devices.Device.product has no database constraint, so Django's SET_NULL is all that releases the
        # devices. An import holds this row while it moves devices in (devices/importing.py); taking the row
        # first makes a delete wait for that import, so the SET_NULL below sees every device it added.
        with transaction.atomic(using=kwargs.get("using")):
            list(Product.objects.select_for_update().filter(pk=self.pk).values_list("pk", flat=True))
            return super().delete(*args, **kwargs)


class ProductMembership(MembershipBase):
    """A member of one product's team (a person with a role, or a product-level API user)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "user"], name="one_product_seat_per_user")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.product} ({self.role_label})"


class DeviceGroupQuerySet(models.QuerySet["DeviceGroup"]):
    def restrict(self, principal: Principal, action: str | None = None) -> "DeviceGroupQuerySet":
        return self.filter(product__in=Product.objects.restrict(principal, action))


class DeviceGroup(models.Model):
    """A named subset of a product's devices (for filtering and firmware releases).

    `device_count` is kept current by the services that add and remove members, so lists never count rows.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    color = models.CharField(max_length=7, default="#0fa3b1")
    device_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeviceGroupQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["product", "name"], name="group_name_unique_per_product")]

    def __str__(self) -> str:
        return f"{self.name} ({self.product.slug})"
