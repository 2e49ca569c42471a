"""Rate limits in front of the API (particle-api.md "Numbers"), per client address.

Every request under /v1 and /oauth counts in the API-wide bucket (10,000 per 5 minutes); a few routes that
mint tokens, create or delete accounts, reset passwords or open event streams also count in a bucket of
their own (100 per 5 minutes each). Over any of them the answer is 429 `rate_limited` with `Retry-After`
(the seconds until that bucket's window ends) — 529 for the event streams, Particle's status for too many
SSE opens. Console pages are not counted: they have their own defences (lockouts, CSRF, sessions).

Windows are fixed, not sliding: one integer key per bucket and address, counted with one Lua script per
request (console/counters.py), so the cost is one Redis round trip and a few bytes per client whatever the
limit. A sliding log would keep 10,000 timestamps per busy address; the price of a fixed window is that a
client can spend up to twice the limit across one window boundary, which is acceptable for limits whose
purpose is to stop floods and guessing at scale (the password doors have their own lockouts).

If Redis cannot be reached the limiter lets the request through and logs a warning (at most once a
minute): it protects capacity, and refusing every API call because the counter store is down would turn a
Redis outage into a full one. The guards against guessing do not fail open: the password doors
(console/services/login.py) and the serial-number lookup answer 503 `temporarily_unavailable` while they
cannot count, rather than let guesses through uncounted.

The limits are settings (`CYAN_RATE_LIMITS`: bucket name → (requests, window seconds); env
`RATE_LIMITS`), `RATE_LIMIT_ENABLED` switches the middleware off, and the address is
console/clientaddr.py's (X-Forwarded-For only from `TRUSTED_PROXIES`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from console.api.errors import error_body
from console.clientaddr import client_address
from console.counters import count_hits
from console.errors import CounterUnavailable

log = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/oauth/")
_ID = r"[^/]+"


@dataclass(frozen=True)
class Bucket:
    """One named limit: which requests it counts (methods and a path pattern) and the status over it."""

    name: str
    methods: frozenset[str]
    path: re.Pattern
    label: str  # for the error description
    status: int = 429

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and self.path.fullmatch(path) is not None


def _path(pattern: str) -> re.Pattern:
    return re.compile(pattern + r"/?")


# The named buckets of particle-api.md "Numbers" (docs/api.md lists what each one matches). The routes
# that do not exist yet (sign-up, account deletion, password reset, event streams) are limited as soon as
# they are added, by method and path.
BUCKETS: tuple[Bucket, ...] = (
    Bucket("oauth-token", frozenset({"POST"}), _path(r"/oauth/token"), "POST /oauth/token"),
    Bucket("access-tokens", frozenset({"GET", "DELETE"}), _path(r"/v1/access_tokens(?:/.*)?"),
           "GET/DELETE /v1/access_tokens"),
    Bucket("sign-up", frozenset({"POST"}), _path(r"/v1/users"), "POST /v1/users"),
    Bucket("account-delete", frozenset({"DELETE"}), _path(r"/v1/user"), "DELETE /v1/user"),
    Bucket("password-reset", frozenset({"POST", "PUT"}), _path(r"/v1/user/password-reset"),
           "POST/PUT /v1/user/password-reset"),
    Bucket("events", frozenset({"GET"}), _path(
        r"/v1/(?:"
        r"events"
        rf"|devices(?:/{_ID})?/events"
        rf"|products/{_ID}(?:/devices/{_ID})?/events"
        rf"|orgs/products/{_ID}/events"
        rf"|orgs/{_ID}(?:/devices/{_ID})?/events"
        rf"|orgs/{_ID}/products/{_ID}(?:/devices/{_ID})?/events"
        r")(?:/.*)?"), "the event streams", status=529),
)
API_BUCKET = "api"


def buckets_for(method: str, path: str) -> list[str]:
    """The buckets a request counts in: none outside the API; the API-wide one and at most one named one."""
    if not path.startswith(API_PREFIXES) and path != "/oauth" and path != "/v1":
        return []
    names = [API_BUCKET]
    for bucket in BUCKETS:
        if bucket.matches(method.upper(), path):
            names.append(bucket.name)
            break
    return names


def _window_words(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return "second" if seconds == 1 else f"{seconds} seconds"


_last_warning = 0.0


def _warn_unreachable(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        log.warning("Rate limits not applied: Redis is unreachable (%s)", exc)


class RateLimitMiddleware:
    """429 (529 for event streams) with Retry-After once a client address is over a limit."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._by_name = {bucket.name: bucket for bucket in BUCKETS}

    def __call__(self, request):
        if settings.RATE_LIMIT_ENABLED:
            refused = self._check(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _check(self, request):
        names = [n for n in buckets_for(request.method or "GET", request.path_info) if n in settings.CYAN_RATE_LIMITS]
        if not names:
            return None
        address = client_address(request)
        limits = {name: settings.CYAN_RATE_LIMITS[name] for name in names}
        try:
            hits = count_hits({f"ratelimit:{name}:{address}": limits[name][1] for name in names})
        except CounterUnavailable as exc:
            _warn_unreachable(exc.__cause__ or exc)
            return None
        over = [(name, hit) for name, hit in zip(names, hits.values()) if hit.count > limits[name][0]]
        if not over:
            return None
        # Over two limits, the one whose window ends last is the one the client waits for: name that one.
        name, hit = max(over, key=lambda item: item[1].resets_in)
        bucket = self._by_name.get(name)
        retry_after = max(1, hit.resets_in)
        allowed, window = limits[name]
        label = bucket.label if bucket else "the API"
        response = JsonResponse(error_body(
            "rate_limited",
            f"Too many requests from this address to {label}: at most {allowed} per {_window_words(window)}. "
            f"Try again in {retry_after} seconds.",
        ), status=bucket.status if bucket else 429)
        response["Retry-After"] = str(retry_after)
        return response
