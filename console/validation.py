"""Input checks shared by the services: every free-text field must be a real string of sane length."""

from __future__ import annotations

import re

from console.errors import ValidationFailed

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def text(value: object, *, field: str, max_length: int, required: bool = True, multiline: bool = False) -> str:
    """A stripped string; lists, objects, numbers-as-JSON-values and control characters are refused."""
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationFailed(f"{field} must be a string", field=field)
    value = str(value).strip()
    if required and not value:
        raise ValidationFailed(f"{field} is required", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    bad = _CONTROL.search(value) if multiline else _CONTROL.search(value) or "\n" in value or "\r" in value
    if bad:
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    return value


def slug(value: object, *, field: str = "slug", max_length: int = 100) -> str:
    """Lowercase letters, digits and dashes, and never all digits: an all-digit ident is read as an id."""
    value = text(value, field=field, max_length=max_length)
    if not SLUG_RE.match(value):
        raise ValidationFailed(f"{field} may hold only lowercase letters, digits and dashes", field=field)
    if value.isdigit():
        raise ValidationFailed(f"{field} must contain a letter (all-digit values are ids)", field=field)
    return value


def safe_auto_slug(candidate: str, fallback: str) -> str:
    """Generated slugs must not be all digits either."""
    candidate = candidate or fallback
    return f"{fallback}-{candidate}" if candidate.replace("-", "").isdigit() else candidate


def whole_number(raw: object, *, default: int, low: int, high: int) -> int:
    """A console query parameter such as `page`: ASCII digits within [low, high], else `default`. (`str.isdigit`
    alone lets '²' through, which int() then refuses.)"""
    value = str(raw or "")
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        return default
    number = int(value)
    return number if low <= number <= high else default
