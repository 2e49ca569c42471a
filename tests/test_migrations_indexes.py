"""The device table's indexes after all migrations, on whichever database the suite runs against.

Indexes created with raw SQL are invisible to Django's model state, so a later AlterField that makes SQLite
rebuild the table drops them silently; this is where that would show."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def device_indexes() -> set[str]:
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'devices_device'")
        else:
            c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'devices_device'")
        return {row[0] for row in c.fetchall()}


def test_every_sort_index_of_the_device_list_exists():
    names = device_indexes()
    for name in ("dev_prod_lastheard", "dev_prod_name", "dev_prod_fw", "dev_prod_id", "dev_owner_handshake"):
        assert name in names, f"{name} is missing: {sorted(names)}"


def test_the_name_sort_index_is_on_the_lower_case_name():
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'dev_prod_name'")
        else:
            c.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'dev_prod_name'")
        (definition,) = c.fetchone()
    assert "lower(" in definition.lower() and "upper(" not in definition.lower(), definition


def test_the_device_row_carries_no_serial_index():
    # Serial lookups go through devices_serialnumber; an index here would be rewritten on every import.
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'devices_device'")
        else:
            c.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'devices_device' "
                      "AND sql IS NOT NULL")
        assert not [d for (d,) in c.fetchall() if "serial_number" in d]


def test_postgresql_list_indexes_carry_the_name_and_short_terms_have_their_index():
    # The walk of a name search reads the sort index only (bench/search.py); without INCLUDE (name) it reads a
    # table row per index entry, ~13x slower. A walk filtered by group reads the device's groups there too
    # (migration 0017).
    if connection.vendor != "postgresql":
        pytest.skip("INCLUDE and the short-term GIN index are PostgreSQL's")
    with connection.cursor() as c:
        c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'devices_device'")
        defs = dict(c.fetchall())
    for name in ("dev_prod_lastheard", "dev_prod_fw", "dev_prod_id", "dev_prod_name"):
        assert "INCLUDE (name, group_ids)" in defs[name], defs[name]
    assert "cyan_short_grams" in defs["dev_name_short"]
    # The name sort's key is the ASCII lower case (migration 0016); the tail index serves a name-sorted search.
    assert 'lower(((name)::text COLLATE "C"))' in defs["dev_prod_name"], defs["dev_prod_name"]
    assert "substr(upper((name)::text), 2)" in defs["dev_name_tail_trgm"], defs["dev_name_tail_trgm"]
    # The sandbox list's counts of a user's personal and product devices read the owner's index alone.
    assert "INCLUDE (product_id)" in defs["dev_owner_handshake"], defs["dev_owner_handshake"]
