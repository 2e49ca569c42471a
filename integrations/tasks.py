"""Celery tasks of the integrations app: thin, take ids, call one function of integrations/delivery.py."""

from __future__ import annotations

from celery import shared_task

from integrations import delivery


@shared_task(name="integrations.deliver")
def deliver(ids: list[int]) -> int:
    """Send a batch of deliveries (claimed by a conditional UPDATE, so a redelivered message is harmless)."""
    return delivery.deliveries_run(ids)


@shared_task(name="integrations.requeue_stale")
def requeue_stale() -> int:
    return delivery.deliveries_requeue_stale()
