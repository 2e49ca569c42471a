"""Create (or leave as it is) the demo account that `make run` prints: idempotent, safe to run every start."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from console.models import Account, OrgMembership, User
from console.roles import Role
from console.scoping import Principal
from console.services import orgs as org_services
from console.services import users as user_services
from products.models import Product
from products.services import product_create

DEMO_PASSWORD = "cyan-demo-password"
DEMO_USER = "demo@cyan.test"
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
        self.stdout.write(self.style.SUCCESS(f"Demo account: {DEMO_USER} / {DEMO_PASSWORD}"))
