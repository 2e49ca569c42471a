"""Columns that reference a device id must share its "C" collation (0003): with mixed collations PostgreSQL
compares them as text and can no longer probe an index, so the groups filter fell from a 25-row nested-loop
walk to a hash join over the whole product (bench/devices.py: ~300 ms → a few ms on 1M devices).

Any later AlterField on these foreign keys must keep COLLATE "C" (Django's model state does not know it).
"""

from django.db import migrations

COLUMNS = [("devices_devicegroupmembership", "device_id"), ("devices_simcard", "device_id")]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        for table, column in COLUMNS:
            c.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(24) COLLATE "C"')
        c.execute("SELECT indexname FROM pg_indexes WHERE tablename IN ('devices_devicegroupmembership', "
                  "'devices_simcard') AND indexname LIKE '%%device_id%%_like'")
        for (name,) in c.fetchall():
            c.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("devices", "0003_c_collation_partial_trigram")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
