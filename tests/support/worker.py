"""A real Celery worker in the test process: solo pool, this xdist worker's own queue (CELERY_QUEUE, set by
tests/support/isolation.py) on the run's broker."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def running_celery_worker():
    from celery.contrib.testing.worker import start_worker

    from console.celery import app

    app.control.purge()  # drop messages left on this queue by earlier runs
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield app
