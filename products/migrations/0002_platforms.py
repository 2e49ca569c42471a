from django.db import migrations


def load(apps, schema_editor):
    from products.platforms import PLATFORMS

    Platform = apps.get_model("products", "Platform")
    for pid, slug, name, connectivity, generation, deprecated in PLATFORMS:
        Platform.objects.update_or_create(
            id=pid, defaults=dict(slug=slug, name=name, connectivity=connectivity, generation=generation,
                                  deprecated=deprecated))


class Migration(migrations.Migration):
    dependencies = [("products", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
