"""People: sign-up and creation, passwords, the sandbox, profile changes (`/v1/user`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from console import hooks, validation
from console.errors import Conflict, Forbidden, ValidationFailed
from console.services.audit import audit_record
from console.services.login import current_password_check
from console.services.teams import invitation_accept, invitation_get
from console.models import AccessToken, Account, User
from console.scoping import Principal
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
    try:
        with transaction.atomic():  # a savepoint: two sign-ups with one email race to the unique index
            return User.objects.create_user(email, password, first_name=first_name, last_name=last_name,
                                            company_name=company_name, is_staff=is_staff, is_superuser=is_staff)
    except IntegrityError:
        raise Conflict("A user with that email already exists", field="username")


class SignupClosed(Forbidden):
    """SIGNUP_OPEN is false: only an invitation's link makes an account."""

    code = "signup_closed"


def signup_open() -> bool:
    return bool(settings.SIGNUP_OPEN)


@transaction.atomic
def user_signup(*, email: object, password: object, first_name: object = "", last_name: object = "",
                company_name: object = "", business_account: bool = False, invitation: object = None) -> User:
    """POST /v1/users and the console's sign-up page: a new person with their sandbox, signed up by themselves
    (so the password must pass every validator, the similarity to their email and name included).

    With an invitation's token (the mailed link) sign-up works even when closed, must use the invited email,
    and seats the new person on the team with the invited role. Without it nobody joins a team, even with an
    invited email: only the holder of the mailbox has the link."""
    invite = invitation_get(token=invitation) if invitation not in (None, "") else None
    if invite is None and not signup_open():
        raise SignupClosed("Sign-up is by invitation only on this server; ask a team administrator to invite you")
    if invite is not None and validation.email(email, field="username") != invite.email:
        raise ValidationFailed(f"This invitation is for {invite.email}; sign up with that email", field="username")
    user = _signup(email=email, password=password, first_name=first_name, last_name=last_name,
                   company_name=company_name, business_account=business_account)
    if invite is not None:
        invitation_accept(invitation=invite, user=user)
    return user


def _signup(*, email: object, password: object, first_name: object, last_name: object, company_name: object,
            business_account: bool) -> User:
    email = validation.text(email, field="username", max_length=254)
    if password in (None, ""):
        raise ValidationFailed("password is required", field="password")
    if not isinstance(password, str):
        raise ValidationFailed("password must be a string", field="password")
    names = {
        "first_name": validation.text(first_name, field="account_info.first_name", max_length=150, required=False),
        "last_name": validation.text(last_name, field="account_info.last_name", max_length=150, required=False),
        "company_name": validation.text(company_name, field="account_info.company_name", max_length=200,
                                        required=False),
    }
    user = user_create(email=email, password=password, **names)
    if business_account:
        user.business_account = True
        user.save(update_fields=["business_account"])
    audit_record(principal=Principal.for_user(user), action="user.signup", target=user.email,
                 account=sandbox_of(user))
    return user


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


@transaction.atomic
def user_delete(*, user: User, password: object, ip: str = "unknown") -> None:
    """DELETE /v1/user and the console's account page: delete a person for good, after their password (a counted
    check). Refused while they own an organization (its products and team would have no owner) or a sandbox
    product that has devices (the refusal names it). Otherwise their sandbox devices and SIMs are released, their
    empty sandbox products deleted, and their tokens, OAuth clients, seats and sandbox go with the row."""
    if not current_password_check(user=user, password=str(password or ""), ip=ip):
        raise ValidationFailed("password is missing or incorrect", field="password")
    user_remove(user=user, by=Principal.for_user(user))


@transaction.atomic
def user_remove(*, user: User, by: Principal) -> None:
    """The deletion itself, shared by `user_delete` (the person, after their password) and the admin (support
    staff, `by` a staff principal): the same refusals and the same clean-up on every door."""
    user = User.objects.select_for_update().get(pk=user.pk)  # one deletion at a time, and no claim meanwhile
    org = Account.objects.filter(kind=Account.Kind.ORGANIZATION, owner=user).order_by("name").first()
    if org is not None:
        raise Conflict(f"You own the organization {org.name}: delete it, or ask support to transfer it to someone "
                       "else, before deleting your account" if by.user == user else
                       f"This person owns the organization {org.name}: delete it, or transfer it to someone else, "
                       "before deleting the account", code="owns_organization")
    hooks.user_delete_check(user)
    audit_record(principal=by, action="user.delete", target=user.email)
    hooks.user_delete_cleanup(user)
    AccessToken.objects.filter(user=user).delete()
    Account.objects.filter(kind=Account.Kind.SANDBOX, owner=user).delete()
    user.delete()
