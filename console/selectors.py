"""Reads of the accounts half that more than one door needs."""

from __future__ import annotations

from console import validation
from console.errors import Forbidden, NotFound
from console.models import Account
from console.scoping import Principal


def org_get(*, principal: Principal, ident: str, action: str | None = None) -> Account:
    """The organization by id or slug: 404 when the caller has no seat, 403 when its role may not `action`."""
    lookup = validation.ident(ident)
    visible = Account.objects.restrict(principal).filter(kind=Account.Kind.ORGANIZATION).select_related("owner")
    org = visible.filter(**lookup).first() if lookup is not None else None
    if org is None:
        raise NotFound(f"Organization {ident} not found")
    if action and not Account.objects.restrict(principal, action).filter(pk=org.pk).exists():
        raise Forbidden("Your role in this organization does not allow this action")
    return org
