"""Accounts and credentials: users, sandboxes and organizations, org teams, tokens, OAuth clients, audit.

Products live one app up (`products/`). Where a row here must name a product (a product's OAuth client,
a product token, a product API user) it stores the product id as a plain integer: imports run one way,
and `products.services` clears those rows when a product goes away.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from console import validation
from console.roles import Role
from console.scoping import Scope, restrict_q


def hash_secret(value: str) -> str:
    """Tokens and client secrets are 160-bit random strings, so an unsalted SHA-256 is enough to store them."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_token() -> str:
    """A Particle-shaped token: 40 lowercase hex characters."""
    return secrets.token_hex(20)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in (email + password), or an API user (programmatic, token only)."""

    class Kind(models.TextChoices):
        HUMAN = "human", "Person"
        API = "api", "API user"

    email = models.EmailField("email (username)", unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.HUMAN, db_index=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    company_name = models.CharField(max_length=200, blank=True)
    business_account = models.BooleanField(default=False)
    friendly_name = models.CharField(max_length=200, blank=True, help_text="API users only")
    is_staff = models.BooleanField(default=False, help_text="May sign in to the admin site.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs) -> None:
        """A person gets their sandbox in the same transaction as their row, whichever door made them (sign-up,
        `createsuperuser`, the admin's add-user form, an invitation): every person has exactly one."""
        adding = self._state.adding
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)
            if adding and self.kind == self.Kind.HUMAN:
                Account.objects.create_sandbox(self)

    @property
    def username(self) -> str:
        return self.email

    @property
    def is_programmatic(self) -> bool:
        return self.kind == self.Kind.API

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return self.friendly_name or full or self.email


def unique_account_slug(base: str) -> str:
    """A free account slug from `base` (never all digits: an all-digit reference is read as an id)."""
    base = validation.safe_auto_slug(slugify(base)[:80], "account")
    slug = base
    while Account.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(2)}"
    return slug


class AccountQuerySet(models.QuerySet["Account"]):
    def create_sandbox(self, user: "User") -> "Account":
        """The personal sandbox of a new person (`User.save` calls this)."""
        return self.create(kind=Account.Kind.SANDBOX, name=user.display_name, owner=user,
                           slug=unique_account_slug(user.email.split("@")[0] + "-sandbox"))

    def scope(self) -> Scope:
        return Scope(account_field=None, memberships=((OrgMembership, "account", "pk"),), self_account=True)

    def restrict(self, principal, action: str | None = None) -> "AccountQuerySet":
        """Accounts `principal` may take `action` on (None: may see). Sandboxes are visible to their owner only."""
        return self.filter(restrict_q(principal, action, self.scope()))


class Account(models.Model):
    """Owns products and devices: every user's personal sandbox, or an organization with a team."""

    class Kind(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"
        ORGANIZATION = "organization", "Organization"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_accounts")
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner"], condition=Q(kind="sandbox"), name="one_sandbox_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (sandbox)" if self.is_sandbox else self.name

    @property
    def is_sandbox(self) -> bool:
        return self.kind == self.Kind.SANDBOX


class MembershipBase(models.Model):
    """A seat on a team. Humans have a role; API users have scopes instead."""

    user = models.ForeignKey(User, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=Role.choices, null=True, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role else "API user"


class OrgMembership(MembershipBase):
    """A member of an organization's team; the org role applies to every product the org owns."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "user"], name="one_org_seat_per_user")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role_label})"


class OAuthClient(models.Model):
    """A registered OAuth client: a user's sandbox client, or a product client (bound to one product)."""

    class Type(models.TextChoices):
        INSTALLED = "installed", "Installed (mobile, desktop, server)"
        WEB = "web", "Web (browser, with redirect)"

    client_id = models.CharField(max_length=120, unique=True)
    secret_hash = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.INSTALLED)
    redirect_uri = models.URLField(blank=True)
    scope = models.CharField(max_length=200, blank=True, help_text="Space-separated; empty = unrestricted")
    owner = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="oauth_clients",
                              help_text="Set for sandbox clients")
    product_id = models.BigIntegerField(null=True, blank=True, db_index=True, help_text="Set for product clients")
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False, product_id__isnull=True) | Q(owner__isnull=True, product_id__isnull=False),
                name="client_has_exactly_one_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    def check_secret(self, secret: str) -> bool:
        return secrets.compare_digest(self.secret_hash, hash_secret(secret))

    @property
    def restricted_scopes(self) -> list[str]:
        """The actions its tokens are limited to; empty = a product token's full reach (`*:*` is no limit)."""
        return self.scope.split() if self.scope and self.scope != "*:*" else []


class AccessToken(models.Model):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once, when issued."""

    class Kind(models.TextChoices):
        USER = "user", "User"
        PRODUCT = "product", "Product"
        API_USER = "api_user", "API user"
        CUSTOMER = "customer", "Customer"

    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart in lists")
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens")
    client = models.ForeignKey(OAuthClient, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens")
    client_name = models.CharField(max_length=120, blank=True, help_text="Client id as presented at issue time")
    product_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, blank=True, related_name="+",
                                help_text="Org of an org-level API user")
    customer_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty = never expires")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.get_kind_display()})"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def client_label(self) -> str:
        return self.client.client_id if self.client_id else self.client_name


class RefreshToken(models.Model):
    """Exchanged once, at /oauth/token with grant_type=refresh_token, for a new access token."""

    token_hash = models.CharField(max_length=64, unique=True)
    access_token = models.ForeignKey(AccessToken, on_delete=models.CASCADE, related_name="refresh_tokens")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class AuditEntry(models.Model):
    """Who did what to which object, for the console's history and support staff."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    account = models.ForeignKey(Account, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    product_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class UserMfa(models.Model):
    """A person's authenticator (TOTP, RFC 6238): pending until a first code confirms it, then enabled.

    The secret is stored as it is: checking a TOTP code needs it in the clear (unlike a password or token,
    it cannot be hashed). `last_step` is the newest 30-second time step a code was accepted for, so the
    same code (or an older one) cannot be replayed.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="mfa")
    secret = models.CharField(max_length=64)
    enrol_token_hash = models.CharField(max_length=64, blank=True,
                                        help_text="The pending enrolment's mfa_token (SHA-256); empty once enabled")
    created_at = models.DateTimeField(default=timezone.now)
    enabled_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the enrolment is pending")
    last_step = models.BigIntegerField(null=True, blank=True, help_text="Newest TOTP time step accepted")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "MFA authenticator"

    def __str__(self) -> str:
        return f"{self.user} ({'enabled' if self.enabled_at else 'pending'})"

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


class MfaRecoveryCode(models.Model):
    """One single-use recovery code (SHA-256 of it: the codes carry ~79 random bits, so no salt is needed)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="mfa_recovery_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="one_row_per_recovery_code")]
        ordering = ["created_at", "pk"]


class Invitation(models.Model):
    """A team seat offered by email to someone with no account yet: signing up through its link joins the team
    with `role`. Org invitations name the org; product ones store the product id as a plain integer (imports
    run one way), as other rows here do. The link's token is not stored, only its SHA-256."""

    email = models.EmailField(db_index=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations",
                                help_text="Set for organization invitations")
    product_id = models.BigIntegerField(null=True, blank=True, db_index=True, help_text="Set for product invitations")
    where = models.CharField(max_length=200, help_text="The team's name, as the mail and sign-up page show it")
    role = models.CharField(max_length=16, choices=Role.choices)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=32, help_text="With SECRET_KEY, re-derives the mailed token (never stored)")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=False, product_id__isnull=True) | Q(account__isnull=True,
                                                                              product_id__isnull=False),
                name="invitation_has_exactly_one_team",
            ),
            # One open invitation per email and team (an expired one is revoked before a new one is made).
            models.UniqueConstraint(fields=["email", "account"], name="one_open_org_invitation",
                                    condition=Q(accepted_at__isnull=True, revoked_at__isnull=True,
                                                account__isnull=False)),
            models.UniqueConstraint(fields=["email", "product_id"], name="one_open_product_invitation",
                                    condition=Q(accepted_at__isnull=True, revoked_at__isnull=True,
                                                product_id__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.where} ({self.state})"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expires_at <= timezone.now() else "pending"

    @property
    def role_label(self) -> str:
        return Role(self.role).label
