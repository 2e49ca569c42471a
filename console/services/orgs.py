"""Organizations: creating one (the caller becomes Administrator (Owner))."""

from __future__ import annotations

from django.db import transaction

from console import validation
from console.errors import Conflict, Forbidden
from console.models import Account, OrgMembership, User, unique_account_slug
from console.roles import Role
from console.scoping import Principal
from console.services.audit import audit_record


@transaction.atomic
def org_create(*, creator: User, name: str, slug: str | None = None) -> Account:
    """Create an organization; its creator becomes Administrator (Owner)."""
    name = validation.text(name, field="name", max_length=100)
    if creator.is_programmatic:
        raise Forbidden("API users cannot create organizations")
    if slug not in (None, ""):
        slug = validation.slug(slug)
        if Account.objects.filter(slug=slug).exists():
            raise Conflict(f"The slug {slug!r} is taken", field="slug")
    else:
        slug = unique_account_slug(name)
    # Names need not be unique (the slug is): refusing a name would tell a stranger that an org exists.
    org = Account.objects.create(kind=Account.Kind.ORGANIZATION, name=name, slug=slug, owner=creator)
    OrgMembership.objects.create(account=org, user=creator, role=Role.ADMINISTRATOR)
    audit_record(principal=Principal.for_user(creator), action="org.create", target=org.slug, account=org)
    return org
