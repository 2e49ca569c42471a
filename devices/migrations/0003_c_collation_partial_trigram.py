"""Fewer index writes per imported device (bench/devices.py):

- on PostgreSQL, device ids and serials use the "C" collation, so prefix searches (LIKE 'ab%') run on the
  primary-key and unique indexes and Django's extra varchar_pattern_ops copies of both can go;
- the name trigram index holds only named devices (a fresh import has no names, so it skips it).
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'devices_device' AND indexname LIKE '%%_like'")
        for (name,) in c.fetchall():
            c.execute(f'DROP INDEX IF EXISTS "{name}"')
        c.execute('ALTER TABLE devices_device ALTER COLUMN id TYPE varchar(24) COLLATE "C"')
        c.execute('ALTER TABLE devices_device ALTER COLUMN serial_number TYPE varchar(40) COLLATE "C"')
        c.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'dev_name_trgm'")
        if c.fetchone():
            c.execute("DROP INDEX dev_name_trgm")
            c.execute("CREATE INDEX dev_name_trgm ON devices_device USING gin (product_id, (upper(name::text)) "
                      "gin_trgm_ops) WHERE name <> ''")


class Migration(migrations.Migration):
    dependencies = [("devices", "0002_search_indexes")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
