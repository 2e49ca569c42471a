"""Emptying the cache between tests without touching anybody else's keys.

Django's RedisCache.clear() is FLUSHDB: on a Redis shared by several xdist workers (REDIS_URL) it would wipe the
other workers' lockout counters mid-test. Every key this project caches goes through Django's cache, i.e. is
"<KEY_PREFIX>:<version>:<key>", and each worker has its own KEY_PREFIX (tests/support/isolation.py), so deleting
the keys under our own prefix is a clear() of our own cache only.
"""

from __future__ import annotations

import re


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def clear_own_cache() -> None:
    from django.conf import settings
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{_glob_escape(prefix)}:*", count=1000))
    if keys:
        client.delete(*keys)
