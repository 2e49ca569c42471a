"""Counters in Redis (the cache), for lockouts and rate limits: each lives for a window and then is gone, so
nothing needs cleaning up."""

from __future__ import annotations

from django.core.cache import cache


def count_hit(key: str, window: int, *, extend: bool = False) -> int:
    """Count one more hit on `key` in Redis and return the count. The count lives `window` seconds from the
    first hit (from the latest with `extend`)."""
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        hits = cache.incr(key)
        if extend:
            cache.touch(key, window)
        return hits
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1
