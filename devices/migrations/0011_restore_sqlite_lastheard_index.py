"""Put back dev_prod_lastheard on SQLite.

SQLite cannot drop a constraint in place, so the AlterFields of 0005 (no FK constraint) and 0007 (serial
no longer unique) rebuilt devices_device — and a rebuild recreates only the indexes Django's model state
knows about. The last-connection sort index is made with raw SQL (0002: SQLite cannot say NULLS LAST), so
it was lost there. PostgreSQL alters tables in place and kept it; the IF NOT EXISTS makes this a no-op
wherever the index survived. Any later AlterField on Device that rebuilds the table must do the same.
"""

from django.db import migrations

from devices.migrations import _sort_index


def forwards(apps, schema_editor):
    _sort_index.ensure_lastheard_index(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("devices", "0010_transfer_device_collation")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
