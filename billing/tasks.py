"""Celery tasks of the billing app: thin, call one service."""

from __future__ import annotations

from celery import shared_task

from billing import metering


@shared_task(name="billing.fold_data_operations")
def fold_data_operations() -> int:
    return metering.operations_fold()
