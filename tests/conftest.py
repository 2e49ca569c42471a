"""The suite's fixtures. Everything else (clients, builders, snapshots, registries) lives in tests/support/."""

from __future__ import annotations

import pytest

from tests.support import passwords
from tests.support.api import Api
from tests.support.cache import clear_own_cache
from tests.support.cast import Cast, build_cast
from tests.support.clients import Cli, install_npm_clients, make_cli
from tests.support.env import need, node_available
from tests.support.presence import clear_presence


@pytest.fixture(autouse=True)
def _fast_passwords(request):
    """MD5 instead of Argon2 (tests/support/passwords.py), unless the test checks real hashing."""
    if request.node.get_closest_marker(passwords.MARKER) is not None:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = passwords.FAST_HASHERS
    yield


@pytest.fixture(autouse=True)
def _roomy_rate_limits(request):
    """The API's rate limits stay on (every test goes through the middleware), but a test module may make
    hundreds of requests from 127.0.0.1 in one window: the limits are raised a thousandfold, unless the test
    is about them."""
    if request.node.get_closest_marker("rate_limits") is not None:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.CYAN_RATE_LIMITS = {name: (limit * 1000, window)
                                 for name, (limit, window) in settings.CYAN_RATE_LIMITS.items()}
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    # Lockout counters must not leak from one test into the next; only this worker's keys are touched.
    clear_own_cache()
    clear_presence()
    yield
    clear_own_cache()
    clear_presence()


@pytest.fixture(scope="session", autouse=True)
def _end_stray_db_sessions(request, django_db_blocker):
    """On PostgreSQL, the live server's request threads leave their connections open (CONN_MAX_AGE) after they
    end, and dropping the test database at the end of the run then fails ("being accessed by other users"):
    end those sessions first. This fixture sets the test database up so that it is torn down before it."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield
        return
    request.getfixturevalue("django_db_setup")
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _platform_catalogue(request):
    """Transactional tests flush every table, the data migration's platform list included: reload it."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db", "live_server"} & set(request.fixturenames))
    if uses_db:
        request.getfixturevalue("_django_db_helper")
        from products.platforms import load_platforms

        load_platforms()


@pytest.fixture(autouse=True)
def _email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def cast(db) -> Cast:
    """An org product with an owner and one member per role, an outsider, API users and a product token."""
    return build_cast()


@pytest.fixture
def api() -> Api:
    return Api()


# --- the official npm clients (tests/support/clients.py) ------------------------------------------------


@pytest.fixture(scope="session")
def npm_clients():
    """tests/clients with node_modules installed, once (under a file lock shared by the xdist workers)."""
    return install_npm_clients()


@pytest.fixture
def base_url(live_server, npm_clients) -> str:
    need(node_available(), "node/npm not installed")
    return live_server.url.rstrip("/")


@pytest.fixture
def asgi_url(transactional_db) -> str:
    """The real ASGI app on a real uvicorn (event streams need it): its base URL."""
    from tests.support.asgi_server import running_asgi_server

    with running_asgi_server() as url:
        yield url


@pytest.fixture
def cli(tmp_path, base_url) -> Cli:
    """particle-cli with a scratch HOME whose config names the live server."""
    return make_cli(tmp_path / "home", base_url)
