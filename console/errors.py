"""Typed errors raised by services and selectors. The API turns each into Particle's JSON error body
(`{"error", "error_description"}`) and the console into a form or page message, so neither door needs to
know why a service refused."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, description: str, *, code: str | None = None, field: str | None = None, **extra):
        super().__init__(description)
        self.description = description
        if code:
            self.code = code
        self.field = field
        self.extra = extra


class ValidationFailed(ServiceError):
    """The input is malformed or breaks a rule; nothing was written."""


class NotFound(ServiceError):
    """Missing, or not visible to the caller: the two are indistinguishable on purpose."""

    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller can see the object but its role or scopes do not allow this action."""

    status = 403
    code = "forbidden"


class Conflict(ServiceError):
    status = 400
    code = "conflict"


class LimitExceeded(ServiceError):
    status = 400
    code = "limit_exceeded"


class LockedOut(ServiceError):
    """Too many attempts: a lockout or a rate limit (429, with `retry_after` seconds)."""

    status = 429
    code = "too_many_attempts"


class CounterUnavailable(LockedOut):
    """The attempt counters (Redis) cannot be reached, so a door that must count attempts stays shut for
    now rather than let them through uncounted (503, with `retry_after`)."""

    status = 503
    code = "temporarily_unavailable"


class InvalidGrant(ServiceError):
    """`/oauth/token`: the credentials or the token presented do not hold."""

    code = "invalid_grant"


class MfaRequired(ServiceError):
    """The password was right but the person also signs in with a code: 403 with an `mfa_token` to finish."""

    status = 403
    code = "mfa_required"


class InvalidClient(ServiceError):
    status = 401
    code = "invalid_client"


class DeviceError(ServiceError):
    """A device operation refused the way Particle words it: `{"ok": false, "error": "<Particle's words>"}`.
    The API adds `ok: false` (the clients read `error`) and keeps `error_description` like every other error."""

    ok_false = True


class DeviceTimedOut(DeviceError):
    """The device is not connected (answered at once), or connected but silent past the timeout: Particle's
    408 `{"ok": false, "error": "timed out"}` either way."""

    status = 408
    code = "timed out"


class DeviceNameNotFound(DeviceError):
    """The device is connected but has no function / variable of that name (Particle: 404)."""

    status = 404
