from django.db import migrations


def load(apps, schema_editor):
    from products.platforms import load_platforms

    load_platforms(apps.get_model("products", "Platform"))


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
