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
}
