"""Checking a person's password, and locking out an address that keeps guessing."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from console.counters import count_hit
from console.errors import InvalidGrant, LockedOut
from console.models import User


def _lockout_key(ip: str) -> str:
    return f"login-failures:{ip}"


def login_check_lockout(*, ip: str) -> None:
    if (cache.get(_lockout_key(ip)) or 0) >= settings.CYAN_LOGIN_FAILURE_LIMIT:
        minutes = settings.CYAN_LOGIN_LOCKOUT_SECONDS // 60
        raise LockedOut(f"Too many failed sign-in attempts from this address; try again in {minutes} minutes.",
                        retry_after=settings.CYAN_LOGIN_LOCKOUT_SECONDS)


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
