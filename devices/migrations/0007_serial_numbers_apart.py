"""Serial numbers move to their own table (devices.SerialNumber); the device row keeps a display copy
without a unique index, so rewriting the row no longer re-indexes its serial (bench/README.md). Migration
0008 fills the table."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("devices", "0006_device_fillfactor"),
    ]

    operations = [
        migrations.CreateModel(
            name="SerialNumber",
            fields=[
                ("serial", models.CharField(max_length=40, primary_key=True, serialize=False)),
                ("device", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                                related_name="serial_entry", to="devices.device")),
            ],
            options={"ordering": ["serial"]},
        ),
        migrations.AlterField(
            model_name="device",
            name="serial_number",
            field=models.CharField(blank=True, max_length=40, null=True),
        ),
    ]
