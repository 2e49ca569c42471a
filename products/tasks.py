"""Celery tasks of the products app: thin, ids in and a service call inside."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from console.services.teams import team_invite_email
from products.models import ProductMembership


@shared_task(name="products.send_team_invite", autoretry_for=(OSError,))
def send_team_invite(*, seat_id: int) -> bool:
    """Tell a new product team member where they were added. False when the seat is already gone."""
    seat = ProductMembership.objects.select_related("user", "product").filter(pk=seat_id).first()
    if seat is None:
        return False
    team_invite_email(seat=seat, where=f"the product {seat.product.name}",
                      link=f"{settings.PUBLIC_URL}/products/{seat.product.slug}/")
    return True
