"""Parsing what a door received into what a service takes: text fields, booleans, id-or-slug references and
page parameters. Every door (API, console, admin, management command) parses with these, so one input means
the same thing everywhere.

Particle's clients are lenient in a few places; this is the one list of them:

* booleans arrive as JSON booleans from api-js, as the strings ``"true"``/``"false"`` in form bodies and query
  strings (curl examples, api-js's qs encoding), and ``signal`` as ``"1"``/``"0"`` (api-js ``signalDevice``).
  `boolean()` takes all of these, plus ``yes``/``no`` and ``on``/``off`` (HTML checkboxes send ``on``), in any
  case; anything else is a 400 naming the field. An empty value means "not given" and falls back to the
  route's default where it has one.
* product and organization references are a numeric id or a slug on every route (`ident()`).
* list pages take ``perPage`` (the docs) or ``per_page`` (api-js) (`page_params()`).

The console differs only in what it does with a bad query string: a stale bookmark falls back to the
defaults instead of an error page (``lenient=True``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from console.errors import ValidationFailed

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Bidirectional overrides, embeddings, isolates and marks: a name holding them displays in another order than
# it compares ("Trojan Source"), so one product could pass for another in a list.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]*", re.ASCII)
SLUG_MAX = 120  # the longest slug any model holds (Product.slug)
ID_DIGITS_MAX = 18  # a bigint has 19 digits; 18 always fits


class _Unset:
    """A keyword argument's value when the caller did not send the field at all (None may be a value)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


def given(value: object) -> bool:
    return value is not UNSET


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
    if _BIDI.search(value):
        raise ValidationFailed(f"{field} must not contain text-direction control characters", field=field)
    return value


def email(value: object, *, field: str) -> str:
    """An email address as Cyan stores it: stripped, lowercased, and valid by Django's rules."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    address = text(value, field=field, max_length=254).lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationFailed(f"{field} must be a valid email address", field=field)
    return address


def slug(value: object, *, field: str = "slug", max_length: int = 100) -> str:
    """Lowercase letters, digits and dashes, and never all digits: an all-digit ident is read as an id."""
    value = text(value, field=field, max_length=max_length)
    if not SLUG_RE.fullmatch(value):
        raise ValidationFailed(f"{field} may hold only lowercase letters, digits and dashes", field=field)
    if value.isdigit():
        raise ValidationFailed(f"{field} must contain a letter (all-digit values are ids)", field=field)
    return value


def safe_auto_slug(candidate: str, fallback: str) -> str:
    """Generated slugs must not be all digits either."""
    candidate = candidate or fallback
    return f"{fallback}-{candidate}" if candidate.replace("-", "").isdigit() else candidate


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def boolean(value: object, *, field: str, default: bool | None = None, lenient: bool = False) -> bool:
    """A JSON boolean or one of the words above, in any case. None or "" is `default` (a 400 when the field has
    no default). With `lenient`, a value that is not a boolean is `default` too (console query strings)."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise ValidationFailed(f"{field} must be true or false", field=field)
        return default
    if isinstance(value, (str, int)):
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    if lenient and default is not None:
        return default
    raise ValidationFailed(f"{field} must be true or false", field=field)


def ident(value: object) -> dict[str, Any] | None:
    """How to look up a product or organization from a path segment: ``{"pk": n}`` for ASCII digits,
    ``{"slug": s}`` for a slug, None for anything that can be neither (never sent to the database)."""
    text_value = str(value)
    if text_value.isascii() and text_value.isdigit():  # slugs are never all digits (`slug()`)
        return {"pk": int(text_value)} if len(text_value) <= ID_DIGITS_MAX else None
    if len(text_value) <= SLUG_MAX and SLUG_RE.fullmatch(text_value):
        return {"slug": text_value}
    return None


def whole_number(raw: object, *, field: str, default: int, low: int, high: int, lenient: bool = False) -> int:
    """ASCII digits within [low, high]; empty is `default`. Anything else is a 400, or `default` when
    `lenient`. (`str.isdigit` alone lets '²' through, which int() then refuses.)"""
    if raw is None or raw == "":
        return default
    value = str(raw).strip()
    if value.isascii() and value.isdigit() and len(value) <= 12:
        number = int(value)
        if low <= number <= high:
            return number
        if lenient:
            return default
        raise ValidationFailed(f"{field} must be between {low} and {high}", field=field)
    if lenient:
        return default
    raise ValidationFailed(f"{field} must be a whole number", field=field)


DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 1000
MAX_PAGE = 10_000_000


def page_params(params: Mapping, *, default_per_page: int = DEFAULT_PER_PAGE, max_per_page: int = MAX_PER_PAGE,
                lenient: bool = False) -> tuple[int, int]:
    """(page, per_page) from `page` and `perPage` or `per_page`."""
    per_page_key = "perPage" if params.get("perPage") not in (None, "") else "per_page"
    page = whole_number(params.get("page"), field="page", default=1, low=1, high=MAX_PAGE, lenient=lenient)
    per_page = whole_number(params.get(per_page_key), field=per_page_key, default=default_per_page, low=1,
                            high=max_per_page, lenient=lenient)
    return page, per_page


def asks_for_page(params: Mapping) -> bool:
    """Whether the caller sent any page parameter (some Particle lists are whole unless asked)."""
    return any(params.get(k) not in (None, "") for k in ("page", "perPage", "per_page"))


def string_list(value: object, *, field: str, what: str) -> list[str]:
    """A list of strings, or one comma-separated string (form bodies and query strings send that)."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed(f"{field} must be a list of {what}", field=field)
    return value
