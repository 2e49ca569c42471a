"""Extension points that apps above `console/` register in their `AppConfig.ready()`.

Imports run one way (DESIGN.md §2): the token endpoint lives here but customers live in `devices/`,
so `devices/` registers how a customer token is issued and how a user's devices are counted.
"""

from __future__ import annotations

from typing import Callable

from console.errors import ValidationFailed

_customer_token_issuer: Callable | None = None
_customer_password_login: Callable | None = None
_device_counters: list[Callable] = []
_product_team_by_id: Callable | None = None
_user_delete_checks: list[Callable] = []
_user_delete_cleanups: list[Callable] = []


def register_customer_token_issuer(fn: Callable) -> None:
    global _customer_token_issuer
    _customer_token_issuer = fn


def register_customer_password_login(fn: Callable) -> None:
    global _customer_password_login
    _customer_password_login = fn


def customer_password_login(**kwargs):
    """A product customer's token for a password grant made with that product's client, or None."""
    if _customer_password_login is None:
        return None
    return _customer_password_login(**kwargs)


def register_device_counter(fn: Callable) -> None:
    if fn not in _device_counters:
        _device_counters.append(fn)


def customer_token(**kwargs):
    """Issue a token for a product's customer (`client_credentials` with `scope=customer=<email>`)."""
    if _customer_token_issuer is None:
        raise ValidationFailed("This server has no customer support installed", code="invalid_scope")
    return _customer_token_issuer(**kwargs)


def user_device_counts(user) -> tuple[int, int]:
    """(Wi-Fi, cellular) devices claimed to `user`, summed over the registered counters."""
    wifi = cellular = 0
    for counter in _device_counters:
        w, c = counter(user)
        wifi, cellular = wifi + w, cellular + c
    return wifi, cellular


def register_product_team_by_id(fn: Callable) -> None:
    global _product_team_by_id
    _product_team_by_id = fn


def product_team_by_id(product_id: int):
    """The `Team` of the product with this id (None when it is gone): an invitation to a product team is
    accepted here, below the app that owns products."""
    if _product_team_by_id is None:
        return None
    return _product_team_by_id(product_id)


def register_user_delete(*, check: Callable | None = None, cleanup: Callable | None = None) -> None:
    """`check(user)` raises a ServiceError while something the app owns keeps the account from being deleted;
    `cleanup(user)` lets go of the app's rows of the user, inside the deletion's transaction."""
    if check is not None and check not in _user_delete_checks:
        _user_delete_checks.append(check)
    if cleanup is not None and cleanup not in _user_delete_cleanups:
        _user_delete_cleanups.append(cleanup)


def user_delete_check(user) -> None:
    for check in _user_delete_checks:
        check(user)


def user_delete_cleanup(user) -> None:
    for cleanup in _user_delete_cleanups:
        cleanup(user)
