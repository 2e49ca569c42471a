"""Create (or leave as it is) the demo account that `make run` prints: idempotent, safe to run every start."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from console.models import Account, OrgMembership, User
from console.roles import Role
from console.scoping import Principal
from console.services import orgs as org_services
from console.services import users as user_services
from devices.services.importing import device_import
from products.models import Product
from products.services import product_create

DEMO_PASSWORD = "cyan-demo-password"
DEMO_USER = "demo@cyan.test"
FLEET = 8          # simulated Photons `make run` connects (Procfile `fleet`)
FLEET_MEMBERS = 6  # imported into Lab Photons; the other two present its id and wait in quarantine
TEAM = [
    ("admin@cyan.test", Role.ADMINISTRATOR),
    ("developer@cyan.test", Role.DEVELOPER),
    ("support@cyan.test", Role.SUPPORT),
    ("viewer@cyan.test", Role.VIEWER),
]


def _user(email: str, first: str, last: str, staff: bool = False) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = user_services.user_create(email=email, password=DEMO_PASSWORD, first_name=first, last_name=last,
                                         is_staff=staff, validate=False)
    return user


class Command(BaseCommand):
    help = "Create the demo user, organization, products and team (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        demo = _user(DEMO_USER, "Dana", "Demo", staff=True)
        principal = Principal.for_user(demo)
        org = Account.objects.filter(kind=Account.Kind.ORGANIZATION, slug="acme-devices").first()
        if org is None:
            org = org_services.org_create(creator=demo, name="Acme Devices", slug="acme-devices")
        for email, role in TEAM:
            first = email.split("@")[0].capitalize()
            member = _user(email, first, "Example")
            OrgMembership.objects.get_or_create(account=org, user=member, defaults={"role": role})
        if not Product.objects.filter(slug="acme-trackers").exists():
            product_create(principal=principal, account=org, name="Acme Trackers", platform_id=13, slug="acme-trackers",
                           description="Boron-based asset trackers shipped to customers.")
        if not Product.objects.filter(slug="desk-sensors").exists():
            product_create(principal=principal, account=user_services.sandbox_of(demo), name="Desk Sensors",
                           platform_id=12, slug="desk-sensors",
                           description="Argon prototypes on the developers' desks.")
        lab = Product.objects.filter(slug="lab-photons").first()
        if lab is None:
            lab = product_create(principal=principal, account=org, name="Lab Photons", platform_id=6,
                                 slug="lab-photons",
                                 description="Photons on the lab bench, played by the fleet simulator.")
        self._demo_fleet(principal, lab)
        self.stdout.write(self.style.SUCCESS(f"Demo account: {DEMO_USER} / {DEMO_PASSWORD}"))

    def _demo_fleet(self, principal: Principal, lab: Product) -> None:
        """Manufacture the simulated Photons once (keys in DATA_DIR/demo-fleet.jsonl, which `make run`'s
        `fleet` process reads) and import most of them into Lab Photons."""
        secrets = Path(settings.DATA_DIR) / "demo-fleet.jsonl"
        if secrets.exists():
            return
        ids = Path(settings.DATA_DIR) / "demo-fleet-ids.txt"
        call_command("manufacture", platform="photon", count=FLEET, out=str(ids), secrets=str(secrets),
                     port=int(getattr(settings, "GATEWAY_PORT", 5683)), stdout=self.stdout)
        lines = secrets.read_text().splitlines()
        header = json.loads(lines[0])
        header["product_id"] = lab.pk  # the product the simulated devices say in their Hello
        header["firmware_version"] = 1
        secrets.write_text("\n".join([json.dumps(header, separators=(",", ":")), *lines[1:]]) + "\n")
        members = ids.read_text().split()[:FLEET_MEMBERS]
        device_import(principal=principal, product=lab, values=list(enumerate(members, 1)))
