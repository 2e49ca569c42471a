"""Access and refresh tokens: issuing, looking up, refreshing, revoking, and the grants of
`POST /oauth/token` (particle-api.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from console import hooks
from console.errors import InvalidClient, InvalidGrant, MfaRequired, ValidationFailed
from console.models import AccessToken, Account, OAuthClient, RefreshToken, User, hash_secret, new_token
from console.prepared import Prepared
from console.services.clients import BUILTIN_CLIENTS, client_authenticate, product_client_authenticate
from console.selectors import mfa_enabled
from console.services import mfa as mfa_services
from console.services.login import authenticate_password

MFA_REQUIRED = "Multiple factor authentication required"


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


# Every request pays for this lookup, so it is compiled once (console/prepared.py). The user is needed
# (is_active, the principal); the OAuth client only by the token listings, which load it when they name it.
_TOKEN_BY_HASH = Prepared(lambda p: AccessToken.objects.select_related("user").filter(token_hash=p.text("hash")))


def token_lookup(raw: str) -> AccessToken | None:
    """The live token for a raw bearer string, or None (unknown, expired or malformed)."""
    if not raw or len(raw) > 200:
        return None
    token = _TOKEN_BY_HASH.first(hash=hash_secret(raw))
    if token is None or token.is_expired():
        return None
    if token.user_id is not None and not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        # Throttled so that a busy token does not turn every read into a write.
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_grant(*, grant_type: object, client_id: str, client_secret: str, username: object = None,
                password: object = None, refresh_token: object = None, scope: object = None,
                expires_in: object = None, expires_at: object = None, mfa_token: object = None,
                otp: object = None, ip: str) -> IssuedToken:
    """POST /oauth/token: one of Particle's grant types (particle-api.md §2): password (a 403 mfa_required for
    a person with MFA), urn:custom:mfa-otp (its second step), client_credentials, refresh_token."""
    if not grant_type:
        raise ValidationFailed("grant_type is required", field="grant_type")
    if grant_type == "password":
        return _password_grant(username=username, password=password, client_id=client_id,
                               client_secret=client_secret, expires_in=expires_in, expires_at=expires_at, ip=ip)
    if grant_type == "urn:custom:mfa-otp":
        return _mfa_otp_grant(mfa_token=mfa_token, otp=otp, client_id=client_id, client_secret=client_secret, ip=ip)
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
    client = None
    if client_id and OAuthClient.objects.filter(client_id=client_id).exists():
        client = client_authenticate(client_id=client_id, client_secret=client_secret)
    if client is not None and client.product_id is not None:
        # A product client's password grant signs in that product's customers (simple auth).
        issued = hooks.customer_password_login(client=client, username=str(username), password=str(password), ip=ip,
                                               expires_in=expires_in)
        if issued is not None:
            return issued
    user = authenticate_password(username=str(username), password=str(password), ip=ip)
    if mfa_enabled(user):
        # No token before the second step; the token request waits in the mfa_token (particle-api.md §2).
        _expiry(expires_in, expires_at)  # a bad expires_in is refused now, not after the code
        raise MfaRequired(MFA_REQUIRED, mfa_token=mfa_services.mfa_challenge_issue(
            user=user, client_id=client_id[:120], expires_in=expires_in, expires_at=expires_at))
    with transaction.atomic():
        return token_issue(kind=AccessToken.Kind.USER, user=user, client=client, client_name=client_id[:120],
                           expires_in=expires_in, expires_at=expires_at)


def _mfa_otp_grant(*, mfa_token: object, otp: object, client_id: str, client_secret: str, ip: str) -> IssuedToken:
    """The second step of a password grant (api-js `sendOtp`, the CLI's login code): the token the first step
    asked for, once the code is right."""
    client = None
    if client_id and OAuthClient.objects.filter(client_id=client_id).exists():
        # Before the code is looked at: a wrong client secret must not spend the code or the mfa_token.
        client = client_authenticate(client_id=client_id, client_secret=client_secret)
    pending = mfa_services.mfa_challenge_complete(mfa_token=mfa_token, otp=otp, client_id=client_id, ip=ip)
    if client is not None and client.client_id != pending.client_id:
        client = None  # a registered client finishing a built-in client's sign-in: the token keeps the first
    with transaction.atomic():
        return token_issue(kind=AccessToken.Kind.USER, user=pending.user, client=client,
                           client_name=pending.client_id, expires_in=pending.expires_in,
                           expires_at=pending.expires_at)


def basic_user(*, username: str, password: str, otp: object, ip: str) -> User:
    """HTTP Basic username:password (`/v1/access_tokens`): a person with MFA also sends `otp` (a 403
    mfa_required without it; no mfa_token, since the code goes with this same request)."""
    user = authenticate_password(username=username, password=password, ip=ip)
    if mfa_enabled(user):
        if not otp:
            raise MfaRequired(MFA_REQUIRED + ": send the code as otp")
        mfa_services.mfa_verify(user=user, code=otp, ip=ip)
    return user


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
