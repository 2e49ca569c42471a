"""A device's groups on its own row, so a list filtered by group walks its sort index without a probe per row
(issue 14, bench/search.py; PostgreSQL only).

- `devices_device.group_ids` (bigint[], NULL in no group) holds the sorted ids of the device's groups, filled
  here from the memberships and kept by three statement triggers on devices_devicegroupmembership
  (`_sort_index.GROUP_IDS_*`): whatever adds or removes a membership keeps it true.
- The four sort indexes are rebuilt to carry it beside the name (INCLUDE). A walk of `groups=…` then tests
  each index entry's array (~0.1 µs) instead of probing the membership index for every row it reads (~2 µs):
  page 40 of a 10% group read 10,400 entries in 17 ms of probes, 3 ms with the array.

The column is outside Django's model state (the ORM neither reads nor writes it; an INSERT leaves it NULL,
the triggers fill it), like the raw-SQL indexes before it. SQLite keeps the probe: it needs no column.
"""

from django.db import migrations

from devices.migrations import _sort_index

SORT_INDEXES = ["dev_prod_lastheard", "dev_prod_name", "dev_prod_fw", "dev_prod_id"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        c.execute(_sort_index.GROUP_IDS_COLUMN)
        c.execute(_sort_index.GROUP_IDS_FUNCTION)
        # No membership may change between the fill and the triggers: the table is held until the migration ends.
        c.execute("LOCK TABLE devices_devicegroupmembership IN SHARE ROW EXCLUSIVE MODE")
        for sql in _sort_index.GROUP_IDS_TRIGGERS:
            c.execute(sql)
        c.execute(_sort_index.GROUP_IDS_FILL)
        for name in SORT_INDEXES:
            c.execute(f"DROP INDEX IF EXISTS {name}")
        for sql in _sort_index.grouped_list_index_sql():
            c.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        for trigger in ("insert", "delete", "update"):
            c.execute(f"DROP TRIGGER IF EXISTS dgm_group_ids_{trigger} ON devices_devicegroupmembership")
        c.execute("DROP FUNCTION IF EXISTS cyan_device_group_ids()")
        c.execute("ALTER TABLE devices_device DROP COLUMN IF EXISTS group_ids")  # and the indexes carrying it
        for sql in _sort_index.list_index_sql("postgresql")[:4]:
            c.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("devices", "0016_case_insensitive_name_sort")]
    operations = [migrations.RunPython(forwards, backwards)]
