"""Handing work to the Celery workers. The database row is the work's state and the broker only carries
"work on this id" (DESIGN.md, "Durable work"), so a message is sent once the transaction that wrote the
row has committed — never for a row that was rolled back.

Tasks are sent by their registered name: a task module imports the services it calls, and the services
enqueue tasks without importing them back, so imports run one way (`tests/test_tasks.py` checks that every
name sent here is a registered task).
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


def enqueue_on_commit(task_name: str, **kwargs) -> None:
    """Send the task `task_name` with keyword arguments `kwargs` after the current transaction commits
    (at once outside a transaction)."""
    transaction.on_commit(lambda: current_app.send_task(task_name, kwargs=kwargs))
