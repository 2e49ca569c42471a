"""The last-connection sort index, and the trigram index behind the `deviceName` filter (PostgreSQL).

The sort index is written per database: SQLite cannot say NULLS LAST in an index (its DESC already puts
NULLs last). `deviceName` matches anywhere in the name (Django's `icontains`, i.e. UPPER(name) LIKE
'%X%'), which only a GIN trigram index on that expression, led by product_id (btree_gin), can serve.
`deviceId` and `serialNumber` match by prefix and use the btree pattern indexes Django already makes.
Creating extensions needs a privileged role: where that is refused the trigram index is skipped, and name
search still works, only slower.
"""

from django.db import migrations

MEMBERS = "WHERE NOT quarantined AND NOT denied"


def create(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        if schema_editor.connection.vendor != "postgresql":
            cursor.execute("CREATE INDEX IF NOT EXISTS dev_prod_lastheard ON devices_device "
                           f"(product_id, last_heard DESC, id) {MEMBERS}")
            return
        cursor.execute("CREATE INDEX IF NOT EXISTS dev_prod_lastheard ON devices_device "
                       f"(product_id, last_heard DESC NULLS LAST, id) {MEMBERS}")
        try:
            cursor.execute("SAVEPOINT cyan_ext")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
            cursor.execute("RELEASE SAVEPOINT cyan_ext")
        except Exception:  # noqa: BLE001 - no privilege: run without the trigram index
            cursor.execute("ROLLBACK TO SAVEPOINT cyan_ext")
            return
        cursor.execute("CREATE INDEX IF NOT EXISTS dev_name_trgm ON devices_device "
                       "USING gin (product_id, (upper(name::text)) gin_trgm_ops)")


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS dev_prod_lastheard")
        cursor.execute("DROP INDEX IF EXISTS dev_name_trgm")


class Migration(migrations.Migration):
    dependencies = [("devices", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
