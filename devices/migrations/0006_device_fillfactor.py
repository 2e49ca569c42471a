"""Leave 15% of each device page free (PostgreSQL).

Most writes to a device row change an indexed column (its product on import, `last_heard` on every
contact), so PostgreSQL cannot update it in place (HOT) and writes a new version. With room on the page that
version stays beside the old one instead of on a fresh page at the end of the table: half the pages
touched, and half the full-page images in the WAL, for a large import (bench/README.md). Applies to pages
written from now on; `VACUUM FULL devices_device` repacks an existing table.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE devices_device SET (fillfactor = 85)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE devices_device RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("devices", "0005_product_without_db_constraint")]
    operations = [migrations.RunPython(forwards, backwards)]
