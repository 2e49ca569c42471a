"""The parsers every door shares (console/validation.py), one table each, and the one paginator."""

from __future__ import annotations

import pytest

from console import validation
from console.errors import ValidationFailed
from console.pagination import Page

REFUSED = ValidationFailed

BOOLEANS = [
    # value, default, lenient -> result (or REFUSED)
    (True, None, False, True),
    (False, None, False, False),
    ("true", None, False, True),
    ("TRUE", None, False, True),
    (" yes ", None, False, True),
    ("on", None, False, True),  # an HTML checkbox
    ("1", None, False, True),
    (1, None, False, True),
    ("false", None, False, False),
    ("No", None, False, False),
    ("off", None, False, False),
    ("0", None, False, False),
    (0, None, False, False),
    ("", False, False, False),
    (None, True, False, True),
    ("", None, False, REFUSED),  # no default: "" is not an answer
    (None, None, False, REFUSED),
    ("banana", False, False, REFUSED),
    ("2", False, False, REFUSED),
    (2, False, False, REFUSED),
    (["true"], False, False, REFUSED),
    ({"a": 1}, False, False, REFUSED),
    (1.0, False, False, REFUSED),
    ("banana", False, True, False),  # the console: a stale bookmark falls back
    ("banana", True, True, True),
    ("yes", False, True, True),
]


@pytest.mark.parametrize("value,default,lenient,expected", BOOLEANS)
def test_boolean(value, default, lenient, expected):
    if expected is REFUSED:
        with pytest.raises(ValidationFailed) as exc:
            validation.boolean(value, field="flag", default=default, lenient=lenient)
        assert exc.value.field == "flag" and "flag must be true or false" == exc.value.description
    else:
        assert validation.boolean(value, field="flag", default=default, lenient=lenient) is expected


IDENTS = [
    ("42", {"pk": 42}),
    (42, {"pk": 42}),
    ("000123", {"pk": 123}),
    ("9" * 18, {"pk": int("9" * 18)}),
    ("9" * 19, None),  # past a bigint: neither an id nor a slug
    ("acme-trackers", {"slug": "acme-trackers"}),
    ("a", {"slug": "a"}),
    ("x" * 120, {"slug": "x" * 120}),
    ("x" * 121, None),
    ("Acme", None),  # slugs are lower-case
    ("-acme", None),
    ("acme_trackers", None),
    ("٣", None),  # an Arabic-Indic digit is not an id
    ("²", None),
    ("", None),
    ("a b", None),
    ("acme\n", None),
]


@pytest.mark.parametrize("value,expected", IDENTS)
def test_ident(value, expected):
    assert validation.ident(value) == expected


PAGES = [
    # params, lenient -> (page, per_page) or REFUSED
    ({}, False, (1, 25)),
    ({"page": "3", "perPage": "50"}, False, (3, 50)),
    ({"page": "3", "per_page": "50"}, False, (3, 50)),  # api-js
    ({"perPage": "10", "per_page": "50"}, False, (1, 10)),  # the documented spelling wins
    ({"perPage": "", "per_page": "50"}, False, (1, 50)),
    ({"per_page": "1000"}, False, (1, 1000)),
    ({"per_page": "1001"}, False, REFUSED),
    ({"page": "0"}, False, REFUSED),
    ({"page": "-1"}, False, REFUSED),
    ({"page": "x"}, False, REFUSED),
    ({"page": "²"}, False, REFUSED),
    ({"page": "1e3"}, False, REFUSED),
    ({"page": "0", "per_page": "x"}, True, (1, 25)),
    ({"page": "7", "per_page": "99999"}, True, (7, 25)),
]


@pytest.mark.parametrize("params,lenient,expected", PAGES)
def test_page_params(params, lenient, expected):
    if expected is REFUSED:
        with pytest.raises(ValidationFailed) as exc:
            validation.page_params(params, lenient=lenient)
        assert exc.value.field in ("page", "perPage", "per_page")
    else:
        assert validation.page_params(params, lenient=lenient) == expected


STRING_LISTS = [
    ("a,b", ["a", "b"]),
    ("a,,b, ", ["a", "b"]),
    (["a", "b"], ["a", "b"]),
    ([], []),
    ([1], REFUSED),
    ({"a": "b"}, REFUSED),
    (5, REFUSED),
]


@pytest.mark.parametrize("value,expected", STRING_LISTS)
def test_string_list(value, expected):
    if expected is REFUSED:
        with pytest.raises(ValidationFailed, match="groups must be a list of group names"):
            validation.string_list(value, field="groups", what="group names")
    else:
        assert validation.string_list(value, field="groups", what="group names") == expected


def test_unset_is_not_none_and_is_one_object():
    assert validation.UNSET is not None and not validation.given(validation.UNSET)
    assert validation.given(None) and validation.given("")
    assert type(validation.UNSET)() is validation.UNSET


PAGINATION = [
    # total, page, per_page, rows, capped -> total_pages, has_next, first, last
    (0, 1, 25, 0, False, 0, False, 0, 0),
    (1, 1, 25, 1, False, 1, False, 1, 1),
    (50, 1, 25, 25, False, 2, True, 1, 25),
    (50, 2, 25, 25, False, 2, False, 26, 50),
    (51, 3, 25, 1, False, 3, False, 51, 51),
    (100, 4, 25, 25, True, 4, True, 76, 100),  # counted only up to 100: there may be more
]


@pytest.mark.parametrize("total,page,per_page,rows,capped,pages,has_next,first,last", PAGINATION)
def test_page_arithmetic(total, page, per_page, rows, capped, pages, has_next, first, last):
    p = Page(rows=list(range(rows)), page=page, per_page=per_page, total=total, capped=capped)
    assert (p.total_pages, p.has_next, p.first_index, p.last_index) == (pages, has_next, first, last)
    assert p.meta() == {"total_pages": pages, "page": page, "per_page": per_page, "total": total}
