"""The Celery app shared by web, worker and beat."""

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("cyan")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "purge-expired-tokens": {"task": "console.purge_expired_tokens", "schedule": crontab(minute=17)},
    "requeue-stale-imports": {"task": "devices.requeue_stale_imports", "schedule": 60.0},
    "recount-devices": {"task": "devices.recount_devices", "schedule": crontab(hour=3, minute=41)},
}
