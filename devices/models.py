"""Devices, their SIM cards, product customers and claim codes.

A `Device` row exists from manufacture on (the registry): support staff register id, platform, serial,
ICCID and secret; importing into a product, claiming and onboarding only ever update that row, so an id
that was never manufactured is invalid everywhere.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from django.utils import timezone
from django.utils.functional import cached_property

from console.models import User
from console.scoping import NOTHING, Principal, Rights, rights_for
from products.models import DeviceGroup, Platform, Product

# What a customer token may do, on its own devices only (particle-api.md §8).
CUSTOMER_ACTIONS = frozenset({"devices:list", "devices:get", "devices:update", "devices:ping",
                              "devices.variable:get", "devices.function:call", "devices:release",
                              "events:get"})


class DeviceQuerySet(models.QuerySet["Device"]):
    def restrict(self, principal: Principal, action: str | None = None) -> "DeviceQuerySet":
        """Devices `principal` may take `action` on: through its products, plus (users) the devices claimed to
        it and (customers) the customer's own devices."""
        if principal.kind == "customer":
            if action is not None and action not in CUSTOMER_ACTIONS:
                return self.filter(NOTHING)
            return self.filter(customer_id=principal.customer_id, product_id=principal.product_id)
        q = Q(product__in=Product.objects.restrict(principal, action))
        if principal.kind == "user" and principal.user is not None:
            q |= Q(owner=principal.user)  # a claimed device is its owner's to use, in or out of a product
        return self.filter(q)


class DeviceRights:
    """`restrict()`'s twin for one device in hand (with its product and the product's account loaded): may
    `principal` see it (`may()`), or take `action` on it (`may(action)`)? The same three rules, each checked
    in Python, so that a lookup by id need not carry the scoping subqueries; tests/test_structure.py holds
    the two equal for every caller, device and action."""

    def __init__(self, principal: Principal, device: "Device"):
        self.principal = principal
        self.device = device

    @cached_property
    def _product(self) -> Rights | None:
        """The caller's rights on the device's product: asked only when the device is not simply its own."""
        if self.device.product_id is None or self.principal.kind == "customer":
            return None
        return rights_for(self.principal, self.device.product)

    def may(self, action: str | None = None) -> bool:
        principal, device = self.principal, self.device
        if principal.kind == "customer":
            return ((action is None or action in CUSTOMER_ACTIONS) and device.customer_id == principal.customer_id
                    and device.product_id == principal.product_id)
        if principal.kind == "user" and principal.user is not None and device.owner_id == principal.user.pk:
            return True
        if self._product is None:
            return False
        return self._product.visible if action is None else self._product.may(action)


class Customer(models.Model):
    """A product's end user: an email (any unique id) with a password, or a two-legged shadow customer."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="customers")
    email = models.CharField(max_length=254)
    password = models.CharField(max_length=128, blank=True, help_text="Hash; empty for shadow customers")
    full_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(fields=["product", "email"], name="customer_email_unique_per_product")]

    def __str__(self) -> str:
        return f"{self.email} ({self.product.slug})"

    @property
    def no_password(self) -> bool:
        return not self.password


MEMBERS = Q(quarantined=False, denied=False)
LISTED = Q(denied=False)  # the rows of either device list: the members, or (quarantined=True) the quarantine


class Device(models.Model):
    """One manufactured device: 24-hex id, platform, serial, secret; its product, owner and last contact."""

    class Status(models.TextChoices):
        NORMAL = "normal", "Normal"
        SAFE_MODE = "safe_mode", "Safe mode"

    id = models.CharField(primary_key=True, max_length=24)
    platform = models.ForeignKey(Platform, on_delete=models.PROTECT, related_name="+", db_index=False)
    # A copy for display; lookups and uniqueness go through SerialNumber (below), so rewriting this row (import,
    # every contact) does not re-index the serial.
    serial_number = models.CharField(max_length=40, null=True, blank=True)
    secret_hash = models.CharField(max_length=64, blank=True)
    imei = models.CharField(max_length=20, blank=True)
    mac_wifi = models.CharField(max_length=17, blank=True)
    manufactured_at = models.DateTimeField(default=timezone.now)

    # The composite indexes below all lead with product, so the FK needs no index of its own. Nor a database
    # constraint: PostgreSQL checks one with a trigger per changed row, 0.35-0.55 s for a 100,000-device
    # import (bench/README.md). Django still applies SET_NULL when a product is deleted, and products are
    # only ever deleted through the ORM.
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices",
                                db_index=False, db_constraint=False)
    added_to_product_at = models.DateTimeField(null=True, blank=True)
    name = models.CharField(max_length=63, blank=True)
    notes = models.TextField(blank=True)
    owner = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices",
                              db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices",
                                 db_index=False)
    development = models.BooleanField(default=False)
    quarantined = models.BooleanField(default=False)
    denied = models.BooleanField(default=False)
    groups = models.ManyToManyField(DeviceGroup, through="DeviceGroupMembership", related_name="devices")

    firmware_version = models.PositiveIntegerField(null=True, blank=True)
    desired_firmware_version = models.PositiveIntegerField(null=True, blank=True)
    system_firmware_version = models.CharField(max_length=32, blank=True)
    firmware_updates_enabled = models.BooleanField(default=True)
    firmware_updates_forced = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NORMAL)
    functions = models.JSONField(default=list, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    online = models.BooleanField(default=False)
    last_heard = models.DateTimeField(null=True, blank=True)
    last_handshake_at = models.DateTimeField(null=True, blank=True)
    last_ip_address = models.GenericIPAddressField(null=True, blank=True)
    # The first time the device ever came online (onboarding sets it once): metered billing starts here.
    first_connected_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = DeviceQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            # One index per sort of the product device list (particle-api.md §6), each ending in the id so a
            # page is one index range and the order is total. Each serves both lists, members and quarantine
            # (`quarantined` is the second key; denied devices are in no list), and on PostgreSQL carries the
            # name as well (migration 0013, INCLUDE), so a name search walks the sort order index-only.
            # (product, quarantined, last_heard DESC NULLS LAST, id) and the name sort's (product, quarantined,
            # lower(name), id) are created per database in raw SQL (devices/migrations/_sort_index.py): SQLite
            # cannot write NULLS LAST in an index, and PostgreSQL's key is lower(name COLLATE "C") (ASCII only).
            models.Index(fields=["product", "quarantined", "firmware_version", "id"], name="dev_prod_fw",
                         condition=LISTED),
            models.Index(fields=["product", "quarantined", "id"], name="dev_prod_id", condition=LISTED),
            # The owner's devices by last handshake (the sandbox list, GET /v1/devices) is raw SQL too:
            # dev_owner_handshake (owner_id, last_handshake_at DESC NULLS LAST, id).
            models.Index(fields=["customer"], name="dev_customer", condition=Q(customer__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.name or self.id

    @property
    def is_cellular(self) -> bool:
        return self.platform.connectivity == Platform.Connectivity.CELLULAR


class SerialNumber(models.Model):
    """The registry's serial number -> device map: written at manufacture and never rewritten, kept apart from
    the device row because that row is rewritten often (import, every contact) and each rewrite would add an
    entry to a serial index on it (0.3-0.4 s per 100,000 imported devices, bench/README.md)."""

    serial = models.CharField(primary_key=True, max_length=40)
    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="serial_entry")

    class Meta:
        ordering = ["serial"]
        # The device list's serial filter probes this table once per device it walks: with the serial beside
        # the device id the probe reads the index alone (~1.5 µs instead of ~6 µs with the row; bench/README.md).
        indexes = [models.Index(fields=["device", "serial"], name="serial_by_device")]

    def __str__(self) -> str:
        return self.serial


class DeviceGroupMembership(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE)
    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "device"], name="one_membership_per_group")]
        indexes = [models.Index(fields=["device"], name="dgm_device")]


class SimCard(models.Model):
    """A SIM by ICCID: which device carries it, which account/product owns it, and its state."""

    class Status(models.TextChoices):
        NEVER_ACTIVATED = "never_activated", "Never activated"  # in the registry, owned by nobody
        ACTIVE = "active", "Active"
        INACTIVE = "inactive", "Inactive"  # deactivated by its owner; may be reactivated

    iccid = models.CharField(primary_key=True, max_length=22)
    device = models.OneToOneField(Device, on_delete=models.SET_NULL, null=True, blank=True, related_name="sim")
    product = models.ForeignKey(Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="sims")
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="sims",
                             help_text="Sandbox owner of a SIM outside products")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEVER_ACTIVATED)
    carrier = models.CharField(max_length=40, default="Particle")
    msisdn = models.CharField(max_length=20, blank=True)
    base_country_code = models.CharField(max_length=2, default="US")
    mb_limit = models.PositiveIntegerField(null=True, blank=True)
    activations_count = models.PositiveIntegerField(default=0)
    deactivations_count = models.PositiveIntegerField(default=0)
    first_activated_on = models.DateTimeField(null=True, blank=True)
    last_activated_on = models.DateTimeField(null=True, blank=True)
    last_activated_via = models.CharField(max_length=40, blank=True)
    last_status_change_action = models.CharField(max_length=20, blank=True)
    last_status_change_action_error = models.BooleanField(default=False)
    last_device_name = models.CharField(max_length=63, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["iccid"]
        indexes = [models.Index(fields=["product", "iccid"], name="sim_prod_iccid"),
                   models.Index(fields=["user"], name="sim_user")]

    def __str__(self) -> str:
        return self.iccid


class SimUsage(models.Model):
    """Cellular data used by one SIM on one day (UTC), in MB."""

    sim = models.ForeignKey(SimCard, on_delete=models.CASCADE, related_name="usage")
    date = models.DateField()
    mbs_used = models.DecimalField(max_digits=12, decimal_places=3, default=0)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["sim", "date"], name="one_usage_row_per_sim_day")]


class ClaimCode(models.Model):
    """A one-hour code a device presents to be claimed to a user or a product's customer."""

    code = models.CharField(max_length=63, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    device_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class DeviceTransfer(models.Model):
    """A user's request to take over a device claimed to someone else (`POST /v1/devices` with
    `request_transfer=true`). The owner it was asked of approves or denies it in the console; it lapses if
    the device changes hands meanwhile."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        LAPSED = "lapsed", "Lapsed"  # the device was released or changed owner before a decision

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="transfers")
    requested_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+",
                              help_text="The owner the request was made to")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["device", "requested_by"], condition=Q(state="pending"),
                                               name="one_pending_transfer_per_requester")]
        indexes = [models.Index(fields=["owner", "state"], name="transfer_owner_state")]

    def __str__(self) -> str:
        return f"{self.device_id} -> {self.requested_by_id} ({self.state})"


class ImportJob(models.Model):
    """A product import that runs in the background; the row holds its state, progress and report."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    lines = models.TextField(help_text="The uploaded lines, one id/serial/ICCID per line")
    options = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class DeviceKey(models.Model):
    """A device's public key, which the gateway's handshake checks: manufactured with the device, or uploaded
    with `POST /v1/provisioning/:id` (`particle keys send`)."""

    device = models.OneToOneField(Device, primary_key=True, on_delete=models.CASCADE, related_name="key",
                                  db_constraint=False)
    algorithm = models.CharField(max_length=8, default="rsa")
    public_key = models.BinaryField(help_text="SubjectPublicKeyInfo DER")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)


class Onboarding(models.Model):
    """One connection's request to come online, decided by a worker (DESIGN.md "Durable work"): the gateway
    writes the row with what the device's Hello said, a task claims it with a conditional UPDATE, decides
    (online, quarantined or refused) and records the outcome in the same transaction as its effects."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    class Outcome(models.TextChoices):
        ONLINE = "online", "Online"
        QUARANTINED = "quarantined", "Quarantined"
        REFUSED = "refused", "Refused"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="onboardings", db_constraint=False)
    gateway = models.CharField(max_length=64, help_text="The gateway process holding the connection")
    session = models.CharField(max_length=32, help_text="That connection's id on the gateway")
    hello_product_id = models.PositiveIntegerField()
    hello_firmware_version = models.PositiveIntegerField()
    hello_platform_id = models.PositiveIntegerField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    claim_code = models.CharField(max_length=63, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["state", "claimed_at"], name="onboarding_state",
                                condition=~Q(state="done")),
                   models.Index(fields=["device", "created_at"], name="onboarding_device")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.state} {self.outcome}"
