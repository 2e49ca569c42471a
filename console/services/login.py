"""Checking a password, on every door that takes one: `/oauth/token` (people and customers), HTTP Basic on
`/v1/access_tokens`, the console and admin sign-in forms, and `current_password` wherever an account change
asks for it.

Failures are counted twice, in Redis: per client address (Particle: 10 failures lock the address out for 30
minutes) and per account (so guessing one account's password from many addresses locks that account). A
success clears only its own account's count — never the address's: otherwise an attacker signing in to an
account of their own between guesses would never be locked out. While Redis is unreachable the doors answer
503 (CounterUnavailable) instead of checking passwords uncounted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.hashers import make_password
from console.counters import count_hit, counter_clear, counter_value
from console.errors import InvalidGrant, LockedOut
from console.models import User


def _address_key(ip: str) -> str:
    return f"login-failures:ip:{ip}"


def _account_key(account: str) -> str:
    # Hashed: the key holds an email, and cache keys show up in Redis monitoring.
    return "login-failures:account:" + hashlib.sha256(account.encode()).hexdigest()


def user_account(email: str) -> str:
    """The account key of a person's password, by email (whether or not such a person exists)."""
    return "user:" + (email or "").strip().lower()


def customer_account(product_id: int, email: str) -> str:
    return f"customer:{product_id}:{(email or '').strip().lower()}"


def login_gate(*, account: str, ip: str, account_limit: int | None = None) -> None:
    """LockedOut (429) while the address or the account has used up its failures (`account_limit`, default
    ACCOUNT_FAILURE_LIMIT: the MFA codes of `console.services.mfa` have their own)."""
    limit, seconds = settings.CYAN_LOGIN_FAILURE_LIMIT, settings.CYAN_LOGIN_LOCKOUT_SECONDS
    minutes = seconds // 60
    if counter_value(_address_key(ip)) >= limit:
        raise LockedOut(f"Too many failed sign-in attempts from this address; try again in {minutes} minutes.",
                        retry_after=seconds)
    if counter_value(_account_key(account)) >= (account_limit or settings.CYAN_ACCOUNT_FAILURE_LIMIT):
        raise LockedOut(f"Too many failed sign-in attempts for this account; try again in {minutes} minutes.",
                        retry_after=seconds)


def login_failed(*, account: str, ip: str) -> None:
    seconds = settings.CYAN_LOGIN_LOCKOUT_SECONDS
    count_hit(_address_key(ip), seconds, extend=True)
    count_hit(_account_key(account), seconds, extend=True)


def login_succeeded(*, account: str) -> None:
    counter_clear(_account_key(account))


def account_lockout_clear(*, account: str) -> None:
    """Forget an account's failed sign-ins (a completed password reset); the addresses' counts stay."""
    counter_clear(_account_key(account))


def password_attempt(*, account: str, ip: str, password: str, verify: Callable[[str], bool] | None) -> bool:
    """One counted password check: refused outright while locked out; `verify(password)` checks it against
    the account's hash (None when there is no such account: the same hashing work is done anyway, so the
    answer's timing does not tell whether the account exists)."""
    login_gate(account=account, ip=ip)
    if verify is None:
        make_password(password or "x")
        ok = False
    else:
        ok = bool(password) and verify(password)
    if ok:
        login_succeeded(account=account)
    else:
        login_failed(account=account, ip=ip)
    return ok


def authenticate_password(*, username: str, password: str, ip: str) -> User:
    """A person by email and password (InvalidGrant if they do not match), through the counted check."""
    email = (username or "").strip().lower()
    user = User.objects.filter(email=email, kind=User.Kind.HUMAN).first()
    verify = (lambda raw: user.is_active and user.check_password(raw)) if user is not None else None
    if not password_attempt(account=user_account(email), ip=ip, password=password, verify=verify):
        raise InvalidGrant("User credentials are invalid")
    return user


def current_password_check(*, user: User, password: object, ip: str) -> bool:
    """`current_password` on an account change: counted like a sign-in, so it cannot be guessed either."""
    return password_attempt(account=user_account(user.email), ip=ip, password=str(password or ""),
                            verify=lambda raw: user.check_password(raw))
