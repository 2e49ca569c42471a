"""Celery tasks of the accounts half: thin, idempotent, ids in and a service call inside."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from console.models import AccessToken, Invitation, OrgMembership, RefreshToken, User
from console.services.password_reset import password_reset_email
from console.services.teams import invitation_email, team_invite_email


@shared_task(name="console.send_org_invite", autoretry_for=(OSError,))
def send_org_invite(*, seat_id: int) -> bool:
    """Tell a new organization member where they were added. False when the seat is already gone."""
    seat = OrgMembership.objects.select_related("user", "account").filter(pk=seat_id).first()
    if seat is None:
        return False
    team_invite_email(seat=seat, where=f"the organization {seat.account.name}",
                      link=f"{settings.PUBLIC_URL}/orgs/{seat.account.slug}/")
    return True


@shared_task(name="console.send_invitation", autoretry_for=(OSError,))
def send_invitation(*, invitation_id: int) -> bool:
    """Mail an invitation's sign-up link. False when it is gone or no longer open."""
    invitation = Invitation.objects.select_related("invited_by").filter(pk=invitation_id).first()
    if invitation is None or invitation.state != "pending":
        return False
    invitation_email(invitation=invitation)
    return True


@shared_task(name="console.send_password_reset", autoretry_for=(OSError,))
def send_password_reset(*, user_id: int) -> bool:
    """Mail a password-reset link. False when the person is gone or no longer signs in with a password."""
    user = User.objects.filter(pk=user_id, kind=User.Kind.HUMAN, is_active=True).first()
    if user is None or not user.has_usable_password():
        return False
    password_reset_email(user=user)
    return True


@shared_task(name="console.purge_expired_tokens")
def purge_expired_tokens() -> int:
    """Expired tokens are useless; delete them so the token table stays small."""
    now = timezone.now()
    RefreshToken.objects.filter(expires_at__lte=now).delete()
    deleted, _ = AccessToken.objects.filter(expires_at__lte=now).delete()
    return deleted
