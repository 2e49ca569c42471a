"""A prefork Celery worker keeps its PostgreSQL connection pool between tasks (console/celery.py,
PooledWorkerFixup): Celery's own fixup closed the pool around every task, so each task started new backends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from console.celery import app

ROOT = Path(__file__).resolve().parent.parent
TASKS = 30

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="a worker subprocess needs the test database: SQLite's is in this process's memory")]


def _sessions(name: str) -> int:
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"], dbname="postgres",
                         password=s["PASSWORD"] or None, autocommit=True) as c:
        return c.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()[0]


def test_a_prefork_worker_runs_many_tasks_on_the_connections_it_opened_once(tmp_path):
    s = connection.settings_dict
    env = dict(os.environ, DATABASE_URL=f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:"
                                        f"{s['PORT'] or 5432}/{s['NAME']}")
    log = tmp_path / "worker.log"
    app.control.purge()
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "console", "worker", "--pool", "prefork",
                               "--concurrency", "1", "--without-gossip", "--without-mingle", "-l", "info"],
                              cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        # Only this test's tasks are counted, by id: a message an earlier test's worker handed back to the queue
        # when it was stopped may run here too, and is no business of this count.
        def done(ids: list[str]) -> int:
            text = log.read_text()
            return sum(f"[{i}] succeeded in" in text for i in ids)

        def wait_for(ids: list[str]) -> None:
            deadline = time.time() + 60
            while done(ids) < len(ids) and time.time() < deadline:
                time.sleep(0.2)
            assert done(ids) == len(ids), log.read_text()

        wait_for([app.send_task("integrations.requeue_stale").id])  # the child's first task opens its pool
        before = _sessions(s["NAME"])
        # each one queries the deliveries
        wait_for([app.send_task("integrations.requeue_stale").id for _ in range(TASKS)])
        started = _sessions(s["NAME"]) - before
        # Celery's fixup closed the pool before and after each task: at least one new backend per task.
        assert started <= 2, f"{started} new PostgreSQL sessions for {TASKS} tasks"
    finally:
        worker.terminate()
        worker.wait(30)
        app.control.purge()
