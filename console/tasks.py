"""Celery tasks of the accounts half: thin, idempotent, ids in and a service call inside."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

TASK_DEFAULTS = dict(acks_late=True, reject_on_worker_lost=True, retry_backoff=True, retry_jitter=True,
                     max_retries=5)


@shared_task(name="console.send_team_invite", autoretry_for=(OSError,), **TASK_DEFAULTS)
def send_team_invite(*, seat_kind: str, seat_id: int) -> bool:
    """Tell a new team member where they were added. Returns False when the seat is already gone."""
    if seat_kind == "product":
        from products.models import ProductMembership as Seat  # noqa: PLC0415 - task runs above both apps

        seat = Seat.objects.select_related("user", "product").filter(pk=seat_id).first()
        where = f"the product {seat.product.name}" if seat else ""
        link = f"{settings.PUBLIC_URL}/products/{seat.product.slug}/" if seat else ""
    else:
        from console.models import OrgMembership as Seat  # noqa: PLC0415

        seat = Seat.objects.select_related("user", "account").filter(pk=seat_id).first()
        where = f"the organization {seat.account.name}" if seat else ""
        link = f"{settings.PUBLIC_URL}/orgs/{seat.account.slug}/" if seat else ""
    if seat is None:
        return False
    send_mail(
        subject=f"You were added to {where} on Cyan",
        message=f"You now have the role {seat.role_label} in {where}.\n\nOpen it: {link}\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[seat.user.email],
    )
    return True


@shared_task(name="console.purge_expired_tokens", **TASK_DEFAULTS)
def purge_expired_tokens() -> int:
    """Expired tokens are useless; delete them so the token table stays small."""
    from console.models import AccessToken, RefreshToken  # noqa: PLC0415

    now = timezone.now()
    RefreshToken.objects.filter(expires_at__lte=now).delete()
    deleted, _ = AccessToken.objects.filter(expires_at__lte=now).delete()
    return deleted
