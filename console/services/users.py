"""People: sign-up and creation, passwords, the sandbox, profile changes (`/v1/user`)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction

from console.errors import Conflict, ValidationFailed
from console.services.login import current_password_check
from console.models import AccessToken, Account, User
from console.validation import UNSET, given


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
                current_password: str | None = None, invalidate_tokens: bool = False, ip: str = "unknown") -> dict:
    """PUT /v1/user: profile fields, a password change, an email change (both need current_password)."""
    result: dict = {"ok": True}
    for attr, value in (("first_name", first_name), ("last_name", last_name), ("company_name", company_name)):
        if given(value):
            setattr(user, attr, str(value or "")[:150])
    if given(business_account):
        user.business_account = business_account
    if given(password) or given(username):
        if not current_password_check(user=user, password=current_password, ip=ip):
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
