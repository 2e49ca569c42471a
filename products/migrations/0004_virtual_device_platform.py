from django.db import migrations


def load(apps, schema_editor):
    from products.platforms import load_platforms

    load_platforms(apps.get_model("products", "Platform"))


class Migration(migrations.Migration):
    """Adds platform 3, Device OS's virtual device, to the catalogue."""

    dependencies = [("products", "0003_product_device_count_devicegroup")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
