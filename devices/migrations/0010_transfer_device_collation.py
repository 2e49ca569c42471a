"""devices_devicetransfer.device_id shares the device id's "C" collation, as every column that references a
device id does (0004); a separate migration because Django creates the table's indexes at the end of the
migration that creates it."""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        c.execute('ALTER TABLE devices_devicetransfer ALTER COLUMN device_id TYPE varchar(24) COLLATE "C"')
        c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'devices_devicetransfer' "
                  "AND indexname LIKE '%device_id%_like'")
        for (name,) in c.fetchall():
            c.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("devices", "0009_device_transfers")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
