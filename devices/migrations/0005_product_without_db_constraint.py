"""Device.product without a database FK constraint: see the comment on the field (bench/README.md)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0004_c_collation_device_fks'),
        ('products', '0003_product_device_count_devicegroup'),
    ]

    operations = [
        migrations.AlterField(
            model_name='device',
            name='product',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='devices', to='products.product'),
        ),
    ]
