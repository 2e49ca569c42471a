"""Device search at fleet scale (issue 14, bench/search.py).

- The sort indexes serve both device lists: `quarantined` becomes their second key and only denied devices
  are left out, so the quarantine tab pages by any sort from an index too (dev_prod_quar is no longer needed).
- On PostgreSQL they carry the name (INCLUDE): a name search walks the sort order index-only, about 0.3 µs a
  row instead of 4 µs with a table read, which is what lets the list try the walk before the name index.
- Search terms of one or two characters get their own GIN index (`_sort_index.SHORT_GRAMS_*`): the trigram
  index cannot serve them, and a rare one ("zz") otherwise means reading the whole fleet.
- The sandbox list (devices of one owner, newest handshake first) reads dev_owner_handshake instead of
  sorting all of a user's devices; it also serves every `owner = …` lookup dev_owner served.

Model state knows the three Django-made indexes (without INCLUDE, which SQLite lacks); the last-connection
and owner indexes are raw SQL as in 0002 and checked by tests/test_migrations_indexes.py.
"""

from django.db import migrations, models
from django.db.models import Q

from devices.migrations import _sort_index

REPLACED = ["dev_prod_lastheard", "dev_prod_name", "dev_prod_fw", "dev_prod_id", "dev_prod_quar", "dev_owner"]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as c:
        for name in REPLACED:
            c.execute(f"DROP INDEX IF EXISTS {name}")
        for sql in _sort_index.list_index_sql(vendor):
            c.execute(sql)
        if vendor == "postgresql":
            c.execute(_sort_index.SHORT_GRAMS_FUNCTION)
            c.execute(_sort_index.SHORT_GRAMS_INDEX)


class Migration(migrations.Migration):
    dependencies = [("devices", "0012_device_keys_onboarding")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="device", name="dev_prod_name"),
                migrations.RemoveIndex(model_name="device", name="dev_prod_fw"),
                migrations.RemoveIndex(model_name="device", name="dev_prod_id"),
                migrations.RemoveIndex(model_name="device", name="dev_prod_quar"),
                migrations.RemoveIndex(model_name="device", name="dev_owner"),
                migrations.AddIndex(model_name="device", index=models.Index(
                    fields=["product", "quarantined", "name", "id"], name="dev_prod_name",
                    condition=Q(denied=False))),
                migrations.AddIndex(model_name="device", index=models.Index(
                    fields=["product", "quarantined", "firmware_version", "id"], name="dev_prod_fw",
                    condition=Q(denied=False))),
                migrations.AddIndex(model_name="device", index=models.Index(
                    fields=["product", "quarantined", "id"], name="dev_prod_id", condition=Q(denied=False))),
            ],
            database_operations=[migrations.RunPython(forwards, migrations.RunPython.noop)],
        ),
    ]
