"""Forgotten passwords: a mailed one-time link (`POST /v1/user/password-reset`, the console's "Forgot
password?") and setting a new password through it (`PUT /v1/user/password-reset`, `/password-reset/<token>/`).

The link carries one opaque string, `<user id, base64>.<Django reset token>`. Django's token is an HMAC of
the user's password hash, last sign-in and a timestamp under SECRET_KEY: nothing is stored, it expires after
PASSWORD_RESET_TIMEOUT and dies the moment the password changes, so it works once.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from console import validation
from console.errors import ValidationFailed
from console.models import AccessToken, User
from console.queue import enqueue_on_commit
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.login import account_lockout_clear, user_account
from console.services.users import password_check, sandbox_of

RESET_TASK = "console.send_password_reset"
SENT_MESSAGE = "Password reset email sent."


class BadResetToken(ValidationFailed):
    code = "invalid_reset_token"


def password_reset_request(*, email: object) -> None:
    """Mail a reset link to the person with this email, if there is one who signs in with a password (active,
    a person, a usable password). The caller answers the same either way: the answer must not tell who has an
    account."""
    email = validation.text(email, field="username", max_length=254).lower()
    user = User.objects.filter(email=email, kind=User.Kind.HUMAN, is_active=True).first()
    if user is None or not user.has_usable_password():
        return
    with transaction.atomic():
        audit_record(principal=None, action="user.password_reset.request", target=user.email,
                     account=sandbox_of(user))
        enqueue_on_commit(RESET_TASK, user_id=user.pk)


def password_reset_token(user: User) -> str:
    """The one opaque string of a reset link."""
    return f"{urlsafe_base64_encode(force_bytes(user.pk))}.{default_token_generator.make_token(user)}"


def password_reset_link(user: User) -> str:
    return f"{settings.PUBLIC_URL}/password-reset/{password_reset_token(user)}/"


def password_reset_email(*, user: User) -> None:
    """The reset mail (sent by the worker, so the token's clock starts when the mail leaves)."""
    minutes = settings.PASSWORD_RESET_TIMEOUT // 60
    lifetime = f"{minutes // 60} hours" if minutes >= 120 else f"{minutes} minutes"
    send_mail(
        subject="Reset your Cyan password",
        message=(f"Someone asked to reset the password of the Cyan account {user.email}.\n\n"
                 f"Choose a new password here (the link works once, for {lifetime}):\n"
                 f"{password_reset_link(user)}\n\n"
                 "If it was not you, ignore this email: your password stays as it is.\n"),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def password_reset_user(*, token: object) -> User:
    """The person a reset token is for, or BadResetToken (malformed, unknown, expired or already used)."""
    bad = BadResetToken("The password reset link is invalid, expired or already used; ask for a new one",
                        field="token")
    if not isinstance(token, str) or "." not in token or len(token) > 200:
        raise bad
    uid, _, secret = token.partition(".")
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise bad
    user = User.objects.filter(pk=pk, kind=User.Kind.HUMAN, is_active=True).first()
    if user is None or not user.has_usable_password() or not default_token_generator.check_token(user, secret):
        raise bad
    return user


@transaction.atomic
def password_reset_complete(*, token: object, password: object) -> User:
    """Set a new password through a reset token. Everything the old password opened closes: the user's access
    tokens are revoked, and every console session ends (a session is bound to the password hash). The
    account's failed-sign-in count is cleared, since whoever locked it out did not have the mailbox."""
    user = password_reset_user(token=token)
    if password in (None, ""):
        raise ValidationFailed("password is required", field="password")
    if not isinstance(password, str):
        raise ValidationFailed("password must be a string", field="password")
    password_check(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    revoked, _ = AccessToken.objects.filter(user=user, kind=AccessToken.Kind.USER).delete()
    account_lockout_clear(account=user_account(user.email))
    audit_record(principal=Principal.for_user(user), action="user.password_reset", target=user.email,
                 account=sandbox_of(user), data={"tokens_revoked": revoked})
    return user
