"""Register manufactured devices and write the "wholesale order" file of their ids.

    manage.py manufacture --platform boron --count 500 --out ids.txt [--secrets secrets.csv]
"""

from __future__ import annotations

import csv

from django.core.management.base import BaseCommand, CommandError

from console.errors import ValidationFailed
from devices.services.registry import devices_manufacture
from products.models import Platform


class Command(BaseCommand):
    help = "Register N manufactured devices of a platform and write their ids (one per line)."

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, help="Platform id (13) or slug (boron)")
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--out", required=True, help="File for the device ids, one per line")
        parser.add_argument("--secrets", help="Optional CSV of id,serial_number,iccid,device_secret "
                                              "(what the device simulator needs to connect)")
        parser.add_argument("--serial-prefix", help="Serial number prefix (default from the platform)")

    def handle(self, *args, platform, count, out, secrets=None, serial_prefix=None, **options):
        found = (Platform.objects.filter(pk=int(platform)).first() if platform.isdigit()
                 else Platform.objects.filter(slug=platform.lower()).first())
        if found is None:
            raise CommandError(f"Unknown platform {platform!r}; see the platform list in the admin")
        try:
            made = devices_manufacture(platform=found, count=count, serial_prefix=serial_prefix)
        except ValidationFailed as exc:
            raise CommandError(exc.description)
        with open(out, "w") as fh:
            fh.writelines(f"{m.device_id}\n" for m in made)
        if secrets:
            with open(secrets, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["id", "serial_number", "iccid", "device_secret"])
                writer.writerows([m.device_id, m.serial_number, m.iccid or "", m.secret] for m in made)
        self.stdout.write(self.style.SUCCESS(f"Registered {len(made)} {found.name} devices; ids in {out}"))
