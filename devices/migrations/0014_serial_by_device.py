"""The serial registry indexed by device and serial: the device list's serial filter probes it once per device
it walks, and with both columns in one index the probe reads no table row (issue 14, bench/search.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("devices", "0013_list_indexes_for_search")]
    operations = [
        migrations.AddIndex(model_name="serialnumber",
                            index=models.Index(fields=["device", "serial"], name="serial_by_device")),
    ]
