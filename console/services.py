"""Writes for accounts and credentials. Each service is one transaction, keyword-only, and raises the
typed errors of `console.errors` when it refuses; the API, console, admin and tasks all call these."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify

from console import hooks
from console.errors import Conflict, Forbidden, NotFound, ServiceError, ValidationFailed
from console.models import (
    AccessToken,
    Account,
    AuditEntry,
    OAuthClient,
    OrgMembership,
    RefreshToken,
    User,
    hash_secret,
    new_token,
    unique_account_slug,
)
from console.roles import Role
from console.scoping import Principal
from console import validation
from console.validation import UNSET, given

# Clients that need no registration (particle-api.md Part B §0.3): any of them may use the password grant.
BUILTIN_CLIENTS = {
    "particle": "particle",
    "particle-api": "particle-api",
    "particle-cli": "particle-cli",
    "CLI2": "client_secret_here",
    "user": "client_secret_here",
    "cyan-console": "",
}


class LockedOut(ServiceError):
    status = 429
    code = "too_many_attempts"


class InvalidGrant(ServiceError):
    code = "invalid_grant"


class InvalidClient(ServiceError):
    status = 401
    code = "invalid_client"


# --- audit --------------------------------------------------------------------------------------


def audit_record(
    *, principal: Principal | None, action: str, target: str = "", account: Account | None = None,
    product_id: int | None = None, data: dict | None = None,
) -> None:
    """Write one audit row (inside the caller's transaction, so it exists only if the change does)."""
    AuditEntry.objects.create(
        actor=principal.user if principal else None,
        actor_label=principal.label if principal else "system",
        action=action,
        target=target[:200],
        account=account,
        product_id=product_id,
        data=data or {},
    )


# --- users and accounts ---------------------------------------------------------------------------


@transaction.atomic
def user_create(*, email: str, password: str | None, first_name: str = "", last_name: str = "",
                company_name: str = "", is_staff: bool = False, validate: bool = True) -> User:
    """Create a person with their personal sandbox account."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("username must be a valid email address", field="username")
    if User.objects.filter(email=email).exists():
        raise Conflict("A user with that email already exists", field="username")
    if password and validate:
        password_check(password, User(email=email, first_name=first_name, last_name=last_name))
    return User.objects.create_user(email, password, first_name=first_name, last_name=last_name,
                                    company_name=company_name, is_staff=is_staff, is_superuser=is_staff)


def password_check(password: str, holder) -> None:
    """Django's validators (length, common, all digits, too close to the holder's email or name): a
    ValidationFailed on `password` naming every rule it breaks. `holder` is the user, or an unsaved
    stand-in with `email` (and a name) for someone who has no row yet."""
    try:
        validate_password(password, holder)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password")


def sandbox_of(user: User) -> Account:
    return Account.objects.get(kind=Account.Kind.SANDBOX, owner=user)


@transaction.atomic
def user_update(*, user: User, first_name: str = UNSET, last_name: str = UNSET, company_name: str = UNSET,
                business_account: bool = UNSET, password: str = UNSET, username: str = UNSET,
                current_password: str | None = None, invalidate_tokens: bool = False) -> dict:
    """PUT /v1/user: profile fields, a password change, an email change (both need current_password)."""
    result: dict = {"ok": True}
    for attr, value in (("first_name", first_name), ("last_name", last_name), ("company_name", company_name)):
        if given(value):
            setattr(user, attr, str(value or "")[:150])
    if given(business_account):
        user.business_account = business_account
    if given(password) or given(username):
        if not current_password or not user.check_password(str(current_password)):
            raise ValidationFailed("current_password is missing or incorrect", field="current_password")
    if given(password):
        new = str(password or "")
        password_check(new, user)
        user.set_password(new)
        result["message"] = "User's password updated."
    if given(username):
        email = str(username or "").strip().lower()
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed("username must be a valid email address", field="username")
        if User.objects.exclude(pk=user.pk).filter(email=email).exists():
            raise Conflict("A user with that email already exists", field="username")
        user.email = email
        result["message"] = "User's username updated."
    user.save()
    if invalidate_tokens:
        AccessToken.objects.filter(user=user, kind=AccessToken.Kind.USER).delete()
    return result


@transaction.atomic
def org_create(*, creator: User, name: str, slug: str | None = None) -> Account:
    """Create an organization; its creator becomes Administrator (Owner)."""
    name = validation.text(name, field="name", max_length=100)
    if creator.is_programmatic:
        raise Forbidden("API users cannot create organizations")
    if slug not in (None, ""):
        slug = validation.slug(slug)
        if Account.objects.filter(slug=slug).exists():
            raise Conflict(f"The slug {slug!r} is taken", field="slug")
    else:
        slug = unique_account_slug(name)
    # Names need not be unique (the slug is): refusing a name would tell a stranger that an org exists.
    org = Account.objects.create(kind=Account.Kind.ORGANIZATION, name=name, slug=slug, owner=creator)
    OrgMembership.objects.create(account=org, user=creator, role=Role.ADMINISTRATOR)
    audit_record(principal=Principal.for_user(creator), action="org.create", target=org.slug, account=org)
    return org


# --- tokens ---------------------------------------------------------------------------------------


@dataclass
class IssuedToken:
    token: AccessToken
    access_token: str
    refresh_token: str | None
    expires_in: int  # seconds; 0 = never


MAX_TOKEN_SECONDS = 10 * 365 * 24 * 3600


def _expiry(expires_in: object, expires_at: object) -> datetime | None:
    """Particle's `expires_in` (seconds, 0 = never) or `expires_at` (ISO-8601); default 90 days."""
    now = timezone.now()
    if expires_at not in (None, ""):
        try:
            parsed = parse_datetime(str(expires_at))
        except ValueError:  # well-formed but impossible, e.g. month 13
            parsed = None
        if parsed is None:
            raise ValidationFailed("expires_at must be an ISO-8601 date and time", field="expires_at")
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, dt_timezone.utc)
        if parsed <= now:
            raise ValidationFailed("expires_at must be in the future", field="expires_at")
        return parsed
    if expires_in in (None, ""):
        return now + timedelta(seconds=settings.CYAN_TOKEN_DEFAULT_LIFETIME)
    try:
        seconds = int(str(expires_in))
    except ValueError:
        raise ValidationFailed("expires_in must be a whole number of seconds (0 = never)", field="expires_in")
    if seconds < 0:
        raise ValidationFailed("expires_in must not be negative", field="expires_in")
    if seconds > MAX_TOKEN_SECONDS:
        raise ValidationFailed("expires_in may be at most 10 years (use 0 for a token that never expires)",
                               field="expires_in")
    return None if seconds == 0 else now + timedelta(seconds=seconds)


def token_issue(*, kind: str, user: User | None = None, client: OAuthClient | None = None, client_name: str = "",
                product_id: int | None = None, account: Account | None = None, customer_id: int | None = None,
                scopes: list[str] | None = None, expires_in: object = None, expires_at: object = None,
                with_refresh: bool = True) -> IssuedToken:
    expiry = _expiry(expires_in, expires_at)
    raw = new_token()
    token = AccessToken.objects.create(
        token_hash=hash_secret(raw), prefix=raw[:8], kind=kind, user=user, client=client,
        client_name=client_name or (client.client_id if client else ""), product_id=product_id,
        account=account, customer_id=customer_id, scopes=list(scopes or []), expires_at=expiry,
    )
    refresh_raw = None
    if with_refresh:
        refresh_raw = new_token()
        RefreshToken.objects.create(
            token_hash=hash_secret(refresh_raw), access_token=token,
            expires_at=timezone.now() + timedelta(seconds=settings.CYAN_REFRESH_TOKEN_LIFETIME),
        )
    lifetime = 0 if expiry is None else max(1, int((expiry - timezone.now()).total_seconds() + 0.5))
    return IssuedToken(token=token, access_token=raw, refresh_token=refresh_raw, expires_in=lifetime)


def token_lookup(raw: str) -> AccessToken | None:
    """The live token for a raw bearer string, or None (unknown, expired or malformed)."""
    if not raw or len(raw) > 200:
        return None
    token = (
        AccessToken.objects.select_related("user", "client").filter(token_hash=hash_secret(raw)).first()
    )
    if token is None or token.is_expired():
        return None
    if token.user_id is not None and not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        # Throttled so that a busy token does not turn every read into a write.
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _lockout_key(ip: str) -> str:
    return f"login-failures:{ip}"


def login_check_lockout(*, ip: str) -> None:
    if (cache.get(_lockout_key(ip)) or 0) >= settings.CYAN_LOGIN_FAILURE_LIMIT:
        minutes = settings.CYAN_LOGIN_LOCKOUT_SECONDS // 60
        raise LockedOut(f"Too many failed sign-in attempts from this address; try again in {minutes} minutes.",
                        retry_after=settings.CYAN_LOGIN_LOCKOUT_SECONDS)


def count_hit(key: str, window: int, *, extend: bool = False) -> int:
    """Count one more hit on `key` in Redis and return the count. The count lives `window` seconds from the
    first hit (from the latest with `extend`)."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        hits = cache.incr(key)
        if extend:
            cache.touch(key, window)
        return hits
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def _login_failed(ip: str) -> None:
    count_hit(_lockout_key(ip), settings.CYAN_LOGIN_LOCKOUT_SECONDS, extend=True)


def authenticate_password(*, username: str, password: str, ip: str) -> User:
    """Check a username and password; 10 consecutive failures from one address lock it out for 30 minutes."""
    login_check_lockout(ip=ip)
    user = User.objects.filter(email=(username or "").strip().lower(), kind=User.Kind.HUMAN).first()
    if user is None or not user.is_active or not password or not user.check_password(password):
        if user is None:
            User().set_password(password or "x")  # same work either way, so timing does not reveal users
        _login_failed(ip)
        raise InvalidGrant("User credentials are invalid")
    cache.delete(_lockout_key(ip))
    return user


def client_authenticate(*, client_id: str, client_secret: str) -> OAuthClient | None:
    """A registered client whose secret matches, None for a built-in public client; else InvalidClient."""
    if client_id in BUILTIN_CLIENTS:
        return None
    client = OAuthClient.objects.filter(client_id=client_id).first()
    if client is None or not client_secret or not client.check_secret(client_secret):
        raise InvalidClient("Invalid or missing client credentials")
    return client


def product_client_authenticate(*, client_id: str, client_secret: str, refusal: str) -> OAuthClient | None:
    """A product OAuth client by its credentials, for two-legged calls; None for a built-in public client
    (the caller then needs a token); InvalidClient for bad credentials; `refusal` for a sandbox client."""
    client = client_authenticate(client_id=client_id, client_secret=client_secret)
    if client is not None and client.product_id is None:
        raise ValidationFailed(refusal, code="unauthorized_client")
    return client


def token_grant(*, grant_type: object, client_id: str, client_secret: str, username: object = None,
                password: object = None, refresh_token: object = None, scope: object = None,
                expires_in: object = None, expires_at: object = None, ip: str) -> IssuedToken:
    """POST /oauth/token: one of Particle's grant types (particle-api.md §2)."""
    if not grant_type:
        raise ValidationFailed("grant_type is required", field="grant_type")
    if grant_type == "password":
        return _password_grant(username=username, password=password, client_id=client_id,
                               client_secret=client_secret, expires_in=expires_in, expires_at=expires_at, ip=ip)
    if grant_type == "client_credentials":
        return _client_credentials_grant(client_id=client_id, client_secret=client_secret, scope=str(scope or ""),
                                         expires_in=expires_in, expires_at=expires_at)
    if grant_type == "refresh_token":
        client = client_authenticate(client_id=client_id, client_secret=client_secret) if client_id else None
        return token_refresh(refresh_token=str(refresh_token or ""), client=client)
    raise ValidationFailed(f"The grant type {grant_type!r} is not supported", code="unsupported_grant_type")


def _password_grant(*, username: object, password: object, client_id: str, client_secret: str,
                    expires_in: object, expires_at: object, ip: str) -> IssuedToken:
    if not username or not password:
        raise ValidationFailed("username and password are required", field="username")
    login_check_lockout(ip=ip)
    client = None
    if client_id and OAuthClient.objects.filter(client_id=client_id).exists():
        client = client_authenticate(client_id=client_id, client_secret=client_secret)
    if client is not None and client.product_id is not None:
        # A product client's password grant signs in that product's customers (simple auth).
        issued = hooks.customer_password_login(client=client, username=str(username), password=str(password),
                                               expires_in=expires_in)
        if issued is not None:
            return issued
    user = authenticate_password(username=str(username), password=str(password), ip=ip)
    with transaction.atomic():
        return token_issue(kind=AccessToken.Kind.USER, user=user, client=client, client_name=client_id[:120],
                           expires_in=expires_in, expires_at=expires_at)


def _client_credentials_grant(*, client_id: str, client_secret: str, scope: str, expires_in: object,
                              expires_at: object) -> IssuedToken:
    if not client_id:
        raise ValidationFailed("client_id and client_secret are required", code="invalid_client")
    if client_id in BUILTIN_CLIENTS:
        raise InvalidClient("Built-in clients cannot use client_credentials; create an OAuth client")
    client = product_client_authenticate(client_id=client_id, client_secret=client_secret,
                                         refusal="Only product OAuth clients may use client_credentials")
    if scope.startswith("customer="):
        return hooks.customer_token(client=client, email=scope.removeprefix("customer="), expires_in=expires_in,
                                    expires_at=expires_at)
    if scope:
        raise ValidationFailed(f"The scope {scope!r} is not supported", code="invalid_scope")
    with transaction.atomic():
        return token_issue(kind=AccessToken.Kind.PRODUCT, client=client, product_id=client.product_id,
                           scopes=client.restricted_scopes, expires_in=expires_in, expires_at=expires_at)


@transaction.atomic
def token_refresh(*, refresh_token: str, client: OAuthClient | None) -> IssuedToken:
    row = (
        RefreshToken.objects.select_for_update().select_related("access_token")
        .filter(token_hash=hash_secret(refresh_token or "")).first()
    )
    if row is None or row.used_at is not None or row.expires_at <= timezone.now():
        raise InvalidGrant("The refresh token is invalid or has expired")
    old = row.access_token
    if old.client_id is not None and (client is None or client.pk != old.client_id):
        raise InvalidGrant("The refresh token was issued to another client")
    row.used_at = timezone.now()
    row.save(update_fields=["used_at"])
    return token_issue(kind=old.kind, user=old.user, client=old.client, client_name=old.client_name,
                       product_id=old.product_id, account=old.account, customer_id=old.customer_id,
                       scopes=old.scopes)


def token_revoke(*, token: AccessToken) -> None:
    token.delete()


def token_revoke_raw(*, raw: str) -> bool:
    """DELETE /v1/access_tokens/:token: the token in the path is its own credential."""
    deleted, _ = AccessToken.objects.filter(token_hash=hash_secret(raw or "")).delete()
    return deleted > 0


def tokens_revoke_all(*, user: User) -> int:
    deleted, _ = AccessToken.objects.filter(user=user, kind=AccessToken.Kind.USER).delete()
    return deleted


# --- OAuth clients --------------------------------------------------------------------------------

CLIENT_SCOPES = {"", "customers:create", "*:*", "none"}


def _client_fields(*, name: object, type_: object, redirect_uri: object, scope: object, partial: bool) -> dict:
    out: dict = {}
    if name is not None or not partial:
        out["name"] = validation.text(name, field="name", max_length=200)
    if type_ is not None or not partial:
        if type_ not in (OAuthClient.Type.INSTALLED, OAuthClient.Type.WEB):
            raise ValidationFailed("type must be 'installed' or 'web'", field="type")
        out["type"] = type_
    if redirect_uri not in (None, ""):
        redirect_uri = validation.text(redirect_uri, field="redirect_uri", max_length=200)
        try:
            URLValidator()(redirect_uri)
        except DjangoValidationError:
            raise ValidationFailed("redirect_uri must be a URL", field="redirect_uri")
        out["redirect_uri"] = str(redirect_uri)
    if not partial and out.get("type") == OAuthClient.Type.WEB and not out.get("redirect_uri"):
        raise ValidationFailed("redirect_uri is required for web clients", field="redirect_uri")
    if scope is not None:
        scope = " ".join(validation.text(scope, field="scope", max_length=200, required=False).split())
        if any(s not in CLIENT_SCOPES for s in scope.split()):
            raise ValidationFailed("scope may be 'customers:create', '*:*' or 'none'", field="scope")
        out["scope"] = "" if scope == "none" else scope
    return out


@transaction.atomic
def client_create(*, principal: Principal, name: object, type: object, redirect_uri: object = None,
                  scope: object = None, owner: User | None = None, product_id: int | None = None,
                  product_slug: str = "") -> tuple[OAuthClient, str]:
    """Create a client; the secret is returned here and never again."""
    fields = _client_fields(name=name, type_=type, redirect_uri=redirect_uri, scope=scope, partial=False)
    base = slugify(product_slug or fields["name"])[:60] or "client"

    client_id = f"{base}-{secrets.token_hex(4)}"
    secret = new_token()
    client = OAuthClient.objects.create(client_id=client_id, secret_hash=hash_secret(secret), owner=owner,
                                        product_id=product_id,
                                        created_by=principal.user if principal.user and not principal.user.is_programmatic else None,
                                        **fields)
    audit_record(principal=principal, action="client.create", target=client_id, product_id=product_id)
    return client, secret


@transaction.atomic
def client_update(*, principal: Principal, client: OAuthClient, name: object = None, scope: object = None) -> OAuthClient:
    fields = _client_fields(name=name, type_=None, redirect_uri=None, scope=scope, partial=True)
    for key, value in fields.items():
        setattr(client, key, value)
    client.save()
    audit_record(principal=principal, action="client.update", target=client.client_id, product_id=client.product_id)
    return client


@transaction.atomic
def client_delete(*, principal: Principal, client: OAuthClient) -> None:
    audit_record(principal=principal, action="client.delete", target=client.client_id, product_id=client.product_id)
    client.delete()  # its tokens go with it (FK cascade)


def client_get_for_owner(*, client_id: str, owner: User | None = None, product_id: int | None = None) -> OAuthClient:
    qs = OAuthClient.objects.filter(client_id=client_id)
    qs = qs.filter(owner=owner, product_id__isnull=True) if owner is not None else qs.filter(product_id=product_id)
    client = qs.first()
    if client is None:
        raise NotFound(f"Client {client_id} not found")
    return client


__all__ = [name for name in dir() if not name.startswith("_")]
