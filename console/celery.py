"""The Celery app shared by web, worker and beat."""

from __future__ import annotations

import os

from celery import Celery, Task
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")


class CyanTask(Task):
    """Every task's defaults, in one place (a task may still override one in its decorator): acknowledged
    after it ran, so a worker killed mid-task leaves the message to be delivered again; and when a task lists
    `autoretry_for`, retried with jittered exponential backoff, at most five times."""

    acks_late = True
    reject_on_worker_lost = True
    retry_backoff = True
    retry_jitter = True
    max_retries = 5


class PooledWorkerFixup(DjangoWorkerFixup):
    """Celery's Django fixup, except that a task hands its database connection back to the pool instead of
    closing the pool. Celery 5.5 closes the whole psycopg pool before and after every task in a prefork child,
    so each task opened new PostgreSQL connections (94 backends started in 8 s of the webhook dispatch bench,
    a backend start each). The pool is still thrown away after the fork (`on_worker_process_init`, untouched),
    which is what the closing is for; between tasks a returned connection is checked by the pool as usual."""

    def close_database(self, **kwargs) -> None:
        for conn in self._db.connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()  # CONN_MAX_AGE=0: back to the pool (or closed, on SQLite)


class PooledDjangoFixup(DjangoFixup):
    """Celery's Django fixup with the worker part above, made when a worker starts (as Celery's is): building
    it reads the Celery settings, which would load Django's settings at import time."""

    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        if self._worker_fixup is None:
            self._worker_fixup = PooledWorkerFixup(self.app)
        return self._worker_fixup

    @worker_fixup.setter
    def worker_fixup(self, value: DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def pooled_django_fixup(app: Celery) -> DjangoFixup | None:
    """In place of Celery's built-in `celery.fixups.django:fixup` (the same condition)."""
    return PooledDjangoFixup(app).install() if os.environ.get("DJANGO_SETTINGS_MODULE") else None


app = Celery("cyan", task_cls=CyanTask, fixups=["console.celery:pooled_django_fixup"])
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "purge-expired-tokens": {"task": "console.purge_expired_tokens", "schedule": crontab(minute=17)},
    "requeue-stale-imports": {"task": "devices.requeue_stale_imports", "schedule": 60.0},
    "reap-gateways": {"task": "devices.reap_gateways", "schedule": 15.0},
    "requeue-stale-onboardings": {"task": "devices.requeue_stale_onboardings", "schedule": 30.0},
    "requeue-stale-deliveries": {"task": "integrations.requeue_stale", "schedule": 10.0},
    "recount-devices": {"task": "devices.recount_devices", "schedule": crontab(hour=3, minute=41)},
    "keep-list-marks": {"task": "devices.keep_list_marks", "schedule": 60.0},
    "fold-data-operations": {"task": "billing.fold_data_operations", "schedule": 30.0},
}
