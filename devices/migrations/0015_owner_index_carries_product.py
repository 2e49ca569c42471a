"""The owner's index carries the product on PostgreSQL (devices/migrations/_sort_index.py): the sandbox list
counts a user's personal and product devices on every page, and with the product in the index those counts
read no table rows (issue 14, bench/search.py: 15 ms each for 10,100 claimed devices before)."""

from django.db import migrations

from devices.migrations import _sort_index


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor != "postgresql":
        return  # SQLite has no INCLUDE: its index stays as 0013 made it
    with schema_editor.connection.cursor() as c:
        c.execute("DROP INDEX IF EXISTS dev_owner_handshake")
        c.execute(_sort_index.owner_index_sql(vendor))


class Migration(migrations.Migration):
    dependencies = [("devices", "0014_serial_by_device")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
