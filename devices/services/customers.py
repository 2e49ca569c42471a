"""Writes for product customers (particle-api.md §8): creation by a team member or a product OAuth client,
tokens, password changes, deletion (which revokes their tokens and claim codes and releases their devices)."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from console import validation
from console.errors import Conflict, InvalidGrant, ValidationFailed
from console.models import AccessToken, OAuthClient, User
from console.scoping import Principal
from console.services.audit import audit_record
from console.services.login import customer_account, password_attempt
from console.services.tokens import IssuedToken, token_issue
from console.services.users import password_check
from devices.models import ClaimCode, Customer, Device
from products.models import Product


def _email(value: object) -> str:
    # Particle allows "any unique id" here, not only emails.
    return validation.text(value, field="email", max_length=254).lower()


def _password(value: object, *, email: str) -> str:
    password = validation.text(value, field="password", max_length=128)
    if len(password) < 8:
        raise ValidationFailed("password must be at least 8 characters", field="password")
    password_check(password, User(email=email))  # an unsaved stand-in: customers are not users
    return password


def customer_issue_token(customer: Customer, *, client: OAuthClient | None, expires_in: object = None,
                         expires_at: object = None) -> IssuedToken:
    return token_issue(kind=AccessToken.Kind.CUSTOMER, client=client, client_name=client.client_id if client else "",
                       product_id=customer.product_id, customer_id=customer.pk, expires_in=expires_in,
                       expires_at=expires_at)


@transaction.atomic
def customer_create(*, principal: Principal | None, product: Product, email: str, password: str | None = None,
                    no_password: bool = False, client: OAuthClient | None = None) -> tuple[Customer, IssuedToken]:
    """Create a customer and return its first token (201 body)."""
    address = _email(email)
    shadow = no_password
    if shadow and password not in (None, ""):
        raise ValidationFailed("Send either password or no_password, not both", field="password")
    if not shadow and password in (None, ""):
        raise ValidationFailed("password is required (or no_password=true for a shadow customer)", field="password")
    hashed = "" if shadow else make_password(_password(password, email=address))
    try:
        with transaction.atomic():
            customer = Customer.objects.create(product=product, email=address, password=hashed)
    except IntegrityError:
        raise Conflict(f"A customer {address} already exists in this product", field="email", code="customer_exists")
    audit_record(principal=principal, action="customer.create", target=address, account=product.account,
                 product_id=product.pk, data={"shadow": shadow})
    return customer, customer_issue_token(customer, client=client)


def customer_token_for_client(*, client: OAuthClient, email: str, expires_in: object = None,
                              expires_at: object = None) -> IssuedToken:
    """/oauth/token client_credentials + scope=customer=<email>, with the product's client."""
    customer = Customer.objects.filter(product_id=client.product_id, email=(email or "").strip().lower()).first()
    if customer is None:
        raise InvalidGrant(f"No customer {email} in this product")
    with transaction.atomic():
        return customer_issue_token(customer, client=client, expires_in=expires_in, expires_at=expires_at)


def customer_password_login(*, client: OAuthClient, username: str, password: str, ip: str,
                            expires_in: object = None) -> IssuedToken | None:
    """Password grant with a product client: the customer's token, or None if no such customer. The check is
    counted like a person's sign-in (per address and per customer), so customers' passwords cannot be
    guessed either."""
    customer = Customer.objects.filter(product_id=client.product_id, email=(username or "").strip().lower()).first()
    if customer is None:
        return None
    verify = (lambda raw: check_password(raw, customer.password)) if customer.password else (lambda raw: False)
    if not password_attempt(account=customer_account(customer.product_id, customer.email), ip=ip,
                            password=password, verify=verify):
        raise InvalidGrant("User credentials are invalid")
    with transaction.atomic():
        return customer_issue_token(customer, client=client, expires_in=expires_in)


@transaction.atomic
def customer_set_password(*, principal: Principal, customer: Customer, password: object) -> None:
    customer.password = make_password(_password(password, email=customer.email))
    customer.save(update_fields=["password"])
    audit_record(principal=principal, action="customer.password", target=customer.email,
                 product_id=customer.product_id)


@transaction.atomic
def customer_delete(*, principal: Principal, customer: Customer) -> None:
    """Delete a customer: its tokens and claim codes go, its devices stay in the product, unclaimed."""
    AccessToken.objects.filter(customer_id=customer.pk).delete()
    ClaimCode.objects.filter(customer=customer).delete()
    Device.objects.filter(customer=customer).update(customer=None, updated_at=timezone.now())
    audit_record(principal=principal, action="customer.delete", target=customer.email,
                 product_id=customer.product_id)
    customer.delete()
