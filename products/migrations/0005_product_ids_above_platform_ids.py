"""New products are numbered from 1000 on.

A device body's `product_id` is the product's id, or the platform id for a device in no product (Particle's
rule), and the official clients tell the two apart by value: particle-cli shows a device whose product_id is
a known platform id as that platform ("Xenon") instead of "Product 14". Particle's own product ids are never
that small; with ids from 1000 on, Cyan's are not either. Existing products keep their ids.
"""

from django.db import migrations

FIRST_ID = 1000


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    table = apps.get_model("products", "Product")._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                           f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), %s))", [table, FIRST_ID - 1])
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            if row is None:
                cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, FIRST_ID - 1])
            elif row[0] < FIRST_ID - 1:
                cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [FIRST_ID - 1, table])


class Migration(migrations.Migration):
    dependencies = [("products", "0004_virtual_device_platform")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
