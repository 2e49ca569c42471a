"""Order statistics for deep pages of a big product's device list (PostgreSQL only; `_list_marks` has the
design). The tables start empty: a product gets marks when the worker first builds them
(devices.services.listmarks), and until then its list pages as before."""

from django.db import migrations

from devices.migrations import _list_marks


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        for sql in _list_marks.TABLES:
            c.execute(sql)
        c.execute(_list_marks.FUNCTION)
        c.execute(_list_marks.TRUNCATE_FUNCTION)
        for sql in _list_marks.TRIGGERS:
            c.execute(sql)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as c:
        for sql in _list_marks.DROP:
            c.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("devices", "0017_device_group_ids")]
    operations = [migrations.RunPython(forwards, backwards)]
