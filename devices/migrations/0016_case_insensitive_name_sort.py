"""The name sort is case-insensitive, and a name search sorted by name reads the names that start with the term
as one index range (issue 14, bench/search.py).

- dev_prod_name is rebuilt on the name's ASCII lower case (`_sort_index.NAME_KEY`), compared code point by code
  point: "alpha" and "Alpha-2" sort together, as a console user expects, and the order no longer depends on
  the server's collation. Every name that starts with a term, whatever its case, is then one range of it.
- PostgreSQL gets a trigram index of the names without their first character (`TAIL_TRIGRAM_INDEX`): the
  devices whose name holds a term further in than its start, which a name-sorted search merges with that
  range. Where pg_trgm is unavailable (migration 0002) it is skipped and the search plans as before.

Model state no longer knows dev_prod_name: an expression with a collation is written per database, like the
last-connection index, and tests/test_migrations_indexes.py checks it is there. A later migration that makes
SQLite rebuild the device table drops such indexes silently (migration 0011 had to restore one): such a
migration must create them again (`_sort_index.name_index_sql`).
"""

from django.db import migrations

from devices.migrations import _sort_index


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as c:
        c.execute("DROP INDEX IF EXISTS dev_prod_name")
        c.execute(_sort_index.name_index_sql(vendor))
        if vendor == "postgresql":
            # The index leads with product_id in a GIN: it needs btree_gin as well as pg_trgm (migration 0002
            # makes both or neither; a server may have pg_trgm alone).
            c.execute("SELECT count(*) FROM pg_extension WHERE extname IN ('pg_trgm', 'btree_gin')")
            if c.fetchone()[0] == 2:
                c.execute(_sort_index.TAIL_TRIGRAM_INDEX)


def backwards(apps, schema_editor):
    with schema_editor.connection.cursor() as c:
        c.execute("DROP INDEX IF EXISTS dev_name_tail_trgm")
        c.execute("DROP INDEX IF EXISTS dev_prod_name")
        c.execute("CREATE INDEX dev_prod_name ON devices_device (product_id, quarantined, name, id) WHERE NOT denied")


class Migration(migrations.Migration):
    dependencies = [("devices", "0015_owner_index_carries_product")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="device", name="dev_prod_name")],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
