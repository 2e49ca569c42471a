"""Fill devices.SerialNumber from the device rows.

On PostgreSQL both columns use the "C" collation, like the device id they join to (0003, 0004): prefix
searches on the serial (`serialNumber` filter) run on the primary key, and Django's extra
varchar_pattern_ops indexes can go. (A separate migration: those indexes are created at the end of the
migration that creates the table.)
"""

from django.db import migrations


def copy_serials(apps, schema_editor):
    with schema_editor.connection.cursor() as c:
        if schema_editor.connection.vendor == "postgresql":
            c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'devices_serialnumber' "
                      "AND indexname LIKE '%_like'")
            for (name,) in c.fetchall():
                c.execute(f'DROP INDEX IF EXISTS "{name}"')
            c.execute('ALTER TABLE devices_serialnumber ALTER COLUMN serial TYPE varchar(40) COLLATE "C"')
            c.execute('ALTER TABLE devices_serialnumber ALTER COLUMN device_id TYPE varchar(24) COLLATE "C"')
        c.execute("INSERT INTO devices_serialnumber (serial, device_id) "
                  "SELECT serial_number, id FROM devices_device WHERE serial_number IS NOT NULL")


def copy_back(apps, schema_editor):
    with schema_editor.connection.cursor() as c:
        c.execute("DELETE FROM devices_serialnumber")


class Migration(migrations.Migration):
    dependencies = [("devices", "0007_serial_numbers_apart")]
    operations = [migrations.RunPython(copy_serials, copy_back)]
