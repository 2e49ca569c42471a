"""Multi-factor authentication (TOTP, RFC 6238, through pyotp) and single-use recovery codes.

Three flows share these services: enrolment (`GET`/`POST /v1/user/mfa-enable`, the console's /account/mfa/),
the second step of a sign-in (`/oauth/token` `grant_type=urn:custom:mfa-otp` after a 403 `mfa_required`, the
console's and the admin's sign-in forms, HTTP Basic on `/v1/access_tokens` with `otp`), and turning it off
(`PUT /v1/user/mfa-disable`, with the current password).

Wrong codes are counted like wrong passwords (`console.services.login`): per address, and per account under
an account key of their own (`mfa:<user id>`) that only a right code clears — a right *password* must not
clear it, or someone holding the password could sign in between guesses and guess codes for ever.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import segno
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from console.errors import Conflict, InvalidGrant, ValidationFailed
from console.models import AccessToken, MfaRecoveryCode, OAuthClient, User, UserMfa, hash_secret, new_token
from console.scoping import Principal
from console.services import login as login_services
from console.services.audit import audit_record

ISSUER = "Cyan"
RECOVERY_CODE_COUNT = 10
# 31 symbols without the look-alikes (0/o, 1/l/i): 16 of them carry ~79 bits.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 16
ENROL_SECONDS = 30 * 60  # time to scan the QR code and type the first code


@dataclass
class Enrolment:
    """What `GET /v1/user/mfa-enable` answers: the pending enrolment's token and the secret, three ways."""

    mfa_token: str
    secret: str
    otpauth_uri: str
    qr_data_uri: str  # data:image/svg+xml — rendered here, never fetched from elsewhere


@dataclass
class Challenge:
    """A sign-in waiting for its second step: who, and the token request the first step was."""

    user: User
    client_id: str
    expires_in: object
    expires_at: object


def mfa_account(user: User) -> str:
    """The lockout counter's account key for a person's MFA codes (apart from their password's)."""
    return f"mfa:{user.pk}"


def _qr_data_uri(uri: str) -> str:
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


@transaction.atomic
def mfa_enrol_begin(*, user: User) -> Enrolment:
    """Start (or restart) enrolment: a new secret, pending until `mfa_enrol_confirm` sees a code from it."""
    row = UserMfa.objects.select_for_update().filter(user=user).first()
    if row is not None and row.enabled:
        raise Conflict("Multi-factor authentication is already enabled", code="mfa_already_enabled")
    secret = pyotp.random_base32()
    token = new_token()
    if row is None:
        row = UserMfa(user=user)
    row.secret, row.enrol_token_hash, row.created_at, row.last_step = secret, hash_secret(token), timezone.now(), None
    row.save()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(mfa_token=token, secret=secret, otpauth_uri=uri, qr_data_uri=_qr_data_uri(uri))


def mfa_enrolment_resume(*, user: User, mfa_token: str) -> Enrolment | None:
    """The pending enrolment of `mfa_token` again (the console shows the QR code once more after a wrong
    code), or None when that token is not `user`'s live pending one."""
    row = UserMfa.objects.filter(user=user, enabled_at__isnull=True).first()
    if (row is None or not mfa_token or not secrets.compare_digest(row.enrol_token_hash, hash_secret(mfa_token))
            or row.created_at < timezone.now() - timedelta(seconds=ENROL_SECONDS)):
        return None
    uri = pyotp.TOTP(row.secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(mfa_token=mfa_token, secret=row.secret, otpauth_uri=uri, qr_data_uri=_qr_data_uri(uri))


def _new_recovery_codes(user: User) -> list[str]:
    """Replace every recovery code of `user` with ten new ones; the codes themselves are returned once."""
    MfaRecoveryCode.objects.filter(user=user).delete()
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT)]
    MfaRecoveryCode.objects.bulk_create([MfaRecoveryCode(user=user, code_hash=hash_secret(c)) for c in codes])
    return ["-".join(c[i:i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)) for c in codes]


def _totp_step(row: UserMfa, code: str) -> int | None:
    """The time step `code` belongs to, within one step either side of now (pyotp's valid_window=1), or None.
    Steps at or before `row.last_step` do not count: a code works once."""
    totp = pyotp.TOTP(row.secret)
    now_step = totp.timecode(timezone.now())
    for step in (now_step - 1, now_step, now_step + 1):
        if row.last_step is not None and step <= row.last_step:
            continue
        if pyotp.utils.strings_equal(code, totp.generate_otp(step)):
            return step
    return None


def _normalise(code: object) -> str:
    return "".join(str(code or "").split()).replace("-", "").lower()


def _gate(user: User, ip: str) -> None:
    login_services.login_gate(account=mfa_account(user), ip=ip, account_limit=settings.CYAN_MFA_FAILURE_LIMIT)


@transaction.atomic
def mfa_enrol_confirm(*, user: User, mfa_token: object, otp: object, ip: str, invalidate_tokens: bool = False,
                      keep_token: AccessToken | None = None) -> list[str]:
    """Turn MFA on once a code from the pending secret is right; returns the ten recovery codes (shown once).
    With `invalidate_tokens`, every other token of the person stops working."""
    if not mfa_token:
        raise ValidationFailed("mfa_token is required", field="mfa_token")
    code = _normalise(otp)
    if not code:
        raise ValidationFailed("otp is required", field="otp")
    _gate(user, ip)
    row = UserMfa.objects.select_for_update().filter(user=user).first()
    if row is not None and row.enabled:
        raise Conflict("Multi-factor authentication is already enabled", code="mfa_already_enabled")
    if (row is None or not secrets.compare_digest(row.enrol_token_hash, hash_secret(str(mfa_token)))
            or row.created_at < timezone.now() - timedelta(seconds=ENROL_SECONDS)):
        raise ValidationFailed("The mfa_token is invalid or has expired; start again with GET /v1/user/mfa-enable",
                               field="mfa_token")
    step = _totp_step(row, code) if code.isdigit() else None
    if step is None:
        login_services.login_failed(account=mfa_account(user), ip=ip)
        raise ValidationFailed("The one-time password is invalid", field="otp")
    login_services.login_succeeded(account=mfa_account(user))
    now = timezone.now()
    row.enabled_at, row.enrol_token_hash, row.last_step, row.last_used_at = now, "", step, now
    row.save()
    codes = _new_recovery_codes(user)
    if invalidate_tokens:
        others = AccessToken.objects.filter(user=user, kind=AccessToken.Kind.USER)
        if keep_token is not None:
            others = others.exclude(pk=keep_token.pk)
        others.delete()
    audit_record(principal=Principal.for_user(user), action="mfa.enabled", target=user.email,
                 data={"invalidate_tokens": invalidate_tokens})
    return codes


def mfa_verify(*, user: User, code: object, ip: str) -> str:
    """A person's second factor: a TOTP code (not one already used) or an unused recovery code, which is then
    spent. Returns "totp" or "recovery"; InvalidGrant when wrong (counted), LockedOut after too many."""
    _gate(user, ip)
    value = _normalise(code)
    with transaction.atomic():
        row = UserMfa.objects.select_for_update().filter(user=user, enabled_at__isnull=False).first()
        if row is None:
            raise InvalidGrant("Multi-factor authentication is not enabled for this account")
        kind = None
        if value.isdigit() and len(value) == 6:
            step = _totp_step(row, value)
            if step is not None:
                row.last_step, row.last_used_at = step, timezone.now()
                row.save(update_fields=["last_step", "last_used_at"])
                kind = "totp"
        elif len(value) == RECOVERY_CODE_LENGTH:
            spent = MfaRecoveryCode.objects.filter(user=user, code_hash=hash_secret(value),
                                                   used_at__isnull=True).update(used_at=timezone.now())
            if spent == 1:
                kind = "recovery"
                left = MfaRecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
                audit_record(principal=Principal.for_user(user), action="mfa.recovery_code_used", target=user.email,
                             data={"remaining": left})
    if kind is None:
        login_services.login_failed(account=mfa_account(user), ip=ip)
        raise InvalidGrant("The one-time password is invalid")
    login_services.login_succeeded(account=mfa_account(user))
    return kind


@transaction.atomic
def mfa_disable(*, user: User, current_password: object, ip: str) -> None:
    """Turn MFA off (and drop the recovery codes): only with the current password, counted like a sign-in."""
    if not login_services.current_password_check(user=user, password=current_password, ip=ip):
        raise ValidationFailed("current_password is missing or incorrect", field="current_password")
    row = UserMfa.objects.select_for_update().filter(user=user).first()
    if row is None or not row.enabled:
        raise Conflict("Multi-factor authentication is not enabled", code="mfa_not_enabled")
    row.delete()
    MfaRecoveryCode.objects.filter(user=user).delete()
    audit_record(principal=Principal.for_user(user), action="mfa.disabled", target=user.email)


@transaction.atomic
def mfa_reset(*, user: User, principal: Principal) -> None:
    """Support staff (the admin) turn MFA off for someone who lost both their phone and recovery codes."""
    UserMfa.objects.filter(user=user).delete()
    MfaRecoveryCode.objects.filter(user=user).delete()
    audit_record(principal=principal, action="mfa.reset", target=user.email)


@transaction.atomic
def mfa_recovery_codes_regenerate(*, user: User, current_password: object, ip: str) -> list[str]:
    """Ten new recovery codes in place of the old ones (used or not), with the current password."""
    if not login_services.current_password_check(user=user, password=current_password, ip=ip):
        raise ValidationFailed("current_password is missing or incorrect", field="current_password")
    if not UserMfa.objects.select_for_update().filter(user=user, enabled_at__isnull=False).exists():
        raise Conflict("Multi-factor authentication is not enabled", code="mfa_not_enabled")
    codes = _new_recovery_codes(user)
    audit_record(principal=Principal.for_user(user), action="mfa.recovery_codes_regenerated", target=user.email)
    return codes


# --- the second step of /oauth/token --------------------------------------------------------------------


def _challenge_key(token: str) -> str:
    return "mfa-challenge:" + hash_secret(token)


def mfa_challenge_issue(*, user: User, client_id: str, expires_in: object, expires_at: object) -> str:
    """The opaque `mfa_token` of a 403 mfa_required: lives MFA_TOKEN_SECONDS in Redis, holds no access."""
    token = new_token()
    cache.set(_challenge_key(token), {"user": user.pk, "client_id": client_id, "expires_in": expires_in,
                                      "expires_at": expires_at}, timeout=settings.CYAN_MFA_TOKEN_SECONDS)
    return token


def mfa_challenge_complete(*, mfa_token: object, otp: object, client_id: str, ip: str) -> Challenge:
    """`grant_type=urn:custom:mfa-otp`: the pending sign-in of `mfa_token`, once `otp` is right for *its*
    person. A wrong code leaves the token for another try (each counted); a right one spends it. The client
    is checked first: a registered client's token needs that client (its secret is checked by the caller)."""
    if not mfa_token:
        raise ValidationFailed("mfa_token is required", field="mfa_token")
    if not otp:
        raise ValidationFailed("otp is required", field="otp")
    key = _challenge_key(str(mfa_token))
    pending = cache.get(key)
    user = User.objects.filter(pk=pending["user"], is_active=True).first() if pending else None
    if user is None:
        raise InvalidGrant("The mfa_token is invalid or has expired; sign in again")
    # A registered client's mfa_token is finished by that client only. The built-in public clients have
    # public secrets, so binding them protects nothing — and CLI 3.43.1's `token create` starts with `user`
    # and sends the code as `CLI2`.
    bound = pending["client_id"] and OAuthClient.objects.filter(client_id=pending["client_id"]).exists()
    if bound and client_id != pending["client_id"]:
        raise InvalidGrant("The mfa_token was issued to another client")
    mfa_verify(user=user, code=otp, ip=ip)
    # Redis DEL answers how many keys it removed: only one of two racing requests gets the token.
    if not cache.delete(key):
        raise InvalidGrant("The mfa_token is invalid or has expired; sign in again")
    return Challenge(user=user, client_id=pending["client_id"], expires_in=pending["expires_in"],
                     expires_at=pending["expires_at"])
