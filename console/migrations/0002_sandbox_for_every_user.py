"""Give every person who has no sandbox one (users made by `createsuperuser` or the admin's add-user form
before `User.save` created it)."""

import secrets

from django.db import migrations
from django.utils.text import slugify

from console.validation import safe_auto_slug


def add_missing_sandboxes(apps, schema_editor):
    User = apps.get_model("console", "User")
    Account = apps.get_model("console", "Account")
    have = set(Account.objects.filter(kind="sandbox").values_list("owner_id", flat=True))
    for user in User.objects.filter(kind="human").exclude(pk__in=have).iterator():
        base = safe_auto_slug(slugify(user.email.split("@")[0] + "-sandbox")[:80], "account")
        slug = base
        while Account.objects.filter(slug=slug).exists():
            slug = f"{base}-{secrets.token_hex(2)}"
        name = f"{user.first_name} {user.last_name}".strip() or user.email
        Account.objects.create(kind="sandbox", name=name[:100], owner=user, slug=slug)


class Migration(migrations.Migration):
    dependencies = [("console", "0001_initial")]

    operations = [migrations.RunPython(add_missing_sandboxes, migrations.RunPython.noop)]
