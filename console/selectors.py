"""Reads of the accounts half that more than one door needs."""

from __future__ import annotations

from console import validation
from console.errors import Forbidden, NotFound
from console.models import Account, MfaRecoveryCode, User, UserMfa
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


def mfa_enabled(user: User) -> bool:
    """Whether the person signs in with a second factor (an enrolment still pending does not count)."""
    return UserMfa.objects.filter(user=user, enabled_at__isnull=False).exists()


def mfa_status(user: User) -> dict:
    """The console's MFA page: enabled since when, and how many recovery codes are left."""
    row = UserMfa.objects.filter(user=user, enabled_at__isnull=False).first()
    left = MfaRecoveryCode.objects.filter(user=user, used_at__isnull=True).count() if row else 0
    return {"enabled": row is not None, "enabled_at": row.enabled_at if row else None, "recovery_codes_left": left}
