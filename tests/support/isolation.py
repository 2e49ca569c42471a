"""One world per pytest-xdist worker, set up before Django reads its settings.

Loaded with `-p tests.support.isolation` (pytest.ini addopts), i.e. while pytest parses its arguments and
before pytest-django imports console.settings. pytest-xdist puts PYTEST_XDIST_WORKER (gw0, gw1, ...) in each
worker's environment before that worker builds its config, so each worker gets:

* its own CYAN_DATA_DIR (<data dir>/gw0, ...): its own SQLite file, embedded Redis server, mail directory and
  secret key (console/settings.py derives all of them from CYAN_DATA_DIR);
* its own CACHE_KEY_PREFIX and CELERY_QUEUE, for a shared external Redis (REDIS_URL): lockout counters and the
  other cache keys, and the queue the real Celery worker of tests/test_worker.py consumes, are the worker's own;
* its own test database: pytest-django suffixes the PostgreSQL test database name with the worker id itself
  (SQLite test databases are in memory, per process);
* its own live-server port (pytest-django's live_server binds port 0: the OS picks a free one) and tmp_path.

The npm clients are installed once for all workers, under a file lock (tests/support/clients.py).

A serial run (no xdist, or -n0) changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _isolate(worker: str) -> None:
    base = os.environ.get("CYAN_DATA_DIR") or str(Path(__file__).resolve().parents[2] / "var")
    os.environ["CYAN_DATA_DIR"] = str(Path(base) / worker)
    os.environ["CACHE_KEY_PREFIX"] = f"{os.environ.get('CACHE_KEY_PREFIX', 'cyan')}-{worker}"
    os.environ["CELERY_QUEUE"] = f"{os.environ.get('CELERY_QUEUE', 'cyan')}-{worker}"


if WORKER and not os.environ.get("CYAN_ISOLATED_WORKER"):
    os.environ["CYAN_ISOLATED_WORKER"] = WORKER  # idempotent if the module is ever imported twice
    _isolate(WORKER)
