"""Counters in Redis (the cache), for lockouts and rate limits: each lives for a window and then is gone, so
nothing needs cleaning up.

Counting is one Lua script per call (INCR, then EXPIRE on the first hit), so it is atomic however many
processes count the same key: there is no moment between the increment and the expiry in which a crash
could leave a counter that never expires, nor a race between "add" and "incr". One call may count several
keys (a request counts its API-wide bucket and its route's bucket in one round trip).

When Redis cannot be reached every function here raises `CounterUnavailable` (503): the password
lockouts and the serial-lookup limit refuse rather than count nothing; the API's rate limiter catches it
and lets the request through (console/api/ratelimit.py says why).

The keys are the cache's own (`cache.make_key`: "<KEY_PREFIX>:<version>:<key>") and the values plain
integers, which Django's Redis serializer stores unpickled: `cache.get(key)` reads a count and
`cache.delete(key)` clears it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from redis.exceptions import RedisError

from console.errors import CounterUnavailable

log = logging.getLogger(__name__)
RETRY_AFTER_OUTAGE = 30  # seconds: a guess at how soon Redis is back, for Retry-After

# KEYS: the counters; ARGV: window seconds and extend flag ("1"/"0"), two per key.
# A key found without an expiry (written by something else, or an EXPIRE lost to a restart) gets one, so a
# counter can never lock anybody out for good.
_HIT = """
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local hits = redis.call('INCR', key)
  if hits == 1 or ARGV[2 * i] == '1' then
    redis.call('EXPIRE', key, window)
  end
  local ms = redis.call('PTTL', key)
  if ms < 0 then
    redis.call('EXPIRE', key, window)
    ms = window * 1000
  end
  out[i] = {hits, math.ceil(ms / 1000)}
end
return out
"""

_script = None


@dataclass(frozen=True)
class Hit:
    """A counter after one more hit: how many hits in its window, and the seconds until the window ends
    (rounded up, so that a client waiting that long finds the window over)."""

    count: int
    resets_in: int


def count_hits(windows: dict[str, int], *, extend: bool = False) -> dict[str, Hit]:
    """Count one more hit on each key of `windows` (key → window seconds), atomically, in one round trip.
    A count lives its window from the first hit (from the latest with `extend`). Raises redis' errors when
    Redis cannot be reached (CounterUnavailable): whether that refuses or admits the request is the caller's."""
    global _script
    if not windows:
        return {}
    keys = list(windows)
    args = []
    for key in keys:
        args += [int(windows[key]), "1" if extend else "0"]
    try:
        client = cache._cache.get_client(write=True)  # Django's Redis client: the same pool the cache uses
        if _script is None:
            _script = client.register_script(_HIT)
        rows = _script(keys=[cache.make_key(k) for k in keys], args=args, client=client)
    except RedisError as exc:
        raise _unavailable(exc) from exc
    return {key: Hit(int(hits), int(ttl)) for key, (hits, ttl) in zip(keys, rows)}


def counter_value(key: str) -> int:
    """The count on `key` now (0 when there is none)."""
    try:
        return int(cache.get(key) or 0)
    except RedisError as exc:
        raise _unavailable(exc) from exc


def counter_clear(key: str) -> None:
    try:
        cache.delete(key)
    except RedisError as exc:
        raise _unavailable(exc) from exc


_last_error = 0.0


def _unavailable(exc: Exception) -> CounterUnavailable:
    global _last_error
    if time.monotonic() - _last_error >= 60:  # once a minute, not once a request
        _last_error = time.monotonic()
        log.error("Attempt counters unavailable (Redis is unreachable: %s): password doors and serial "
                  "lookups answer 503", exc)
    return CounterUnavailable("This is unavailable for a moment; try again shortly.",
                              retry_after=RETRY_AFTER_OUTAGE)


def count_hit(key: str, window: int, *, extend: bool = False) -> int:
    """Count one more hit on `key` in Redis and return the count. The count lives `window` seconds from the
    first hit (from the latest with `extend`)."""
    return count_hits({key: window}, extend=extend)[key].count
