"""Rate limits per client address in front of the API (issue 11, item 8; particle-api.md "Numbers"):
10,000 requests / 5 min on every /v1 and /oauth route, 100 / 5 min on the token, account and event routes,
429 (529 for event streams) with Retry-After; console pages are not counted (console/api/ratelimit.py)."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from console import counters
from console.api import ratelimit
from console.models import AccessToken
from console.api.ratelimit import buckets_for
from console.counters import Hit, count_hit, count_hits
from tests.factories import PASSWORD, UserFactory
from tests.support.api import user_token

pytestmark = [pytest.mark.django_db, pytest.mark.rate_limits]

ADDRESS = "203.0.113.5"
# Nothing listens on port 1: a Redis that refuses every connection.
DEAD_REDIS = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": "redis://127.0.0.1:1/0", "KEY_PREFIX": "dead"}}


def _limits(settings, **overrides: tuple[int, int]) -> None:
    settings.CYAN_RATE_LIMITS = {**settings.CYAN_RATE_LIMITS, **{k.replace("_", "-"): v for k, v in overrides.items()}}


def _token_request(email: str, *, ip: str = ADDRESS, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return Client(REMOTE_ADDR=ip).post("/oauth/token", {
        "grant_type": "password", "username": email, "password": PASSWORD,
        "client_id": "particle-api", "client_secret": "particle-api"}, **extra)


def _assert_window_left(retry_after: int, *, window: int, started: float) -> None:
    """Retry-After is what is left of the window opened by the first request (at `started`)."""
    elapsed = time.monotonic() - started
    assert window - elapsed - 1 <= retry_after <= window, (retry_after, elapsed)


def _assert_limited(response, *, status: int = 429, words: str) -> int:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == "rate_limited" and set(body) == {"error", "error_description"}, body
    assert body["error_description"].startswith(f"Too many requests from this address to {words}: "), body
    retry_after = int(response["Retry-After"])
    assert f"Try again in {retry_after} seconds." in body["error_description"]
    return retry_after


def test_the_101st_token_request_in_a_window_is_refused_with_retry_after(settings):
    assert settings.CYAN_RATE_LIMITS["oauth-token"] == (100, 300)  # Particle's number, not a test override
    user = UserFactory(email="busy@example.com")
    started = time.monotonic()
    for n in range(100):
        r = _token_request(user.email)
        assert r.status_code == 200, (n, r.content)
    r = _token_request(user.email)
    retry_after = _assert_limited(r, words="POST /oauth/token")
    _assert_window_left(retry_after, window=300, started=started)
    assert r.json()["error_description"] == ("Too many requests from this address to POST /oauth/token: at most "
                                             f"100 per 5 minutes. Try again in {retry_after} seconds.")
    # Another address is not affected, and the refused one stays refused.
    assert _token_request(user.email, ip="198.51.100.9").status_code == 200
    _assert_limited(_token_request(user.email), words="POST /oauth/token")


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(settings):
    _limits(settings, oauth_token=(3, 300))
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    user = UserFactory(email="proxied@example.com")
    # Through our proxy: each client has its own count.
    for _ in range(3):
        assert _token_request(user.email, ip="10.0.0.2", forwarded="192.0.2.10").status_code == 200
    _assert_limited(_token_request(user.email, ip="10.0.0.2", forwarded="192.0.2.10"), words="POST /oauth/token")
    assert _token_request(user.email, ip="10.0.0.2", forwarded="192.0.2.11").status_code == 200
    # Not from our proxy: a fresh X-Forwarded-For on every request does not buy a fresh count.
    for n in range(3):
        assert _token_request(user.email, ip="198.51.100.7", forwarded=f"192.0.2.{20 + n}").status_code == 200
    _assert_limited(_token_request(user.email, ip="198.51.100.7", forwarded="192.0.2.99"), words="POST /oauth/token")


def test_the_window_frees(settings):
    _limits(settings, oauth_token=(2, 3))
    user = UserFactory(email="patient@example.com")
    started = time.monotonic()
    assert [_token_request(user.email).status_code for _ in range(2)] == [200, 200]
    retry_after = _assert_limited(_token_request(user.email), words="POST /oauth/token")
    _assert_window_left(retry_after, window=3, started=started)
    assert "at most 2 per 3 seconds." in _token_request(user.email).json()["error_description"]
    time.sleep(retry_after)  # rounded up: waiting exactly Retry-After is enough
    assert _token_request(user.email).status_code == 200


def test_the_api_wide_bucket_counts_every_route_and_not_the_console(settings):
    _limits(settings, api=(5, 300))
    user = UserFactory(email="everywhere@example.com")
    token = user_token(user)
    c = Client(REMOTE_ADDR=ADDRESS, HTTP_AUTHORIZATION=f"Bearer {token}")
    started = time.monotonic()
    # Console pages from the same address count nowhere.
    for _ in range(8):
        assert c.get("/login/").status_code == 200
    assert c.get("/v1/user").status_code == 200
    assert c.get("/v1/products").status_code == 200
    assert c.get("/v1/orgs").status_code == 200
    assert c.get("/v1/no-such-route").status_code == 404  # unknown routes count too
    assert _token_request(user.email).status_code == 200  # the token route counts in both of its buckets
    retry_after = _assert_limited(c.get("/v1/orgs"), words="the API")
    _assert_window_left(retry_after, window=300, started=started)
    assert c.get("/v1/user").json()["error_description"].startswith(
        "Too many requests from this address to the API: at most 5 per 5 minutes.")
    assert c.get("/login/").status_code == 200  # the console is not limited by the API bucket
    assert Client(REMOTE_ADDR="198.51.100.9", HTTP_AUTHORIZATION=f"Bearer {token}").get("/v1/user").status_code == 200


@pytest.mark.parametrize("method,path,status,words", [
    ("GET", "/v1/access_tokens", 429, "GET/DELETE /v1/access_tokens"),
    ("DELETE", "/v1/access_tokens/current", 429, "GET/DELETE /v1/access_tokens"),
    ("POST", "/v1/users", 429, "POST /v1/users"),
    ("DELETE", "/v1/user", 429, "DELETE /v1/user"),
    ("POST", "/v1/user/password-reset", 429, "POST/PUT /v1/user/password-reset"),
    ("PUT", "/v1/user/password-reset", 429, "POST/PUT /v1/user/password-reset"),
    ("GET", "/v1/events", 529, "the event streams"),
    ("GET", "/v1/products/some-product/events/temp", 529, "the event streams"),
])
def test_each_named_bucket_refuses_past_its_limit(settings, method, path, status, words):
    """Also for the routes not written yet: the limit is by method and path, before any view. The first
    request's own answer is the route's business (some of these routes do not exist yet); the second is
    refused whatever the route."""
    _limits(settings, **{name: (1, 300) for name in settings.CYAN_RATE_LIMITS if name != "api"})
    c = Client(REMOTE_ADDR=ADDRESS)
    started = time.monotonic()
    c.generic(method, path)
    retry_after = _assert_limited(c.generic(method, path), status=status, words=words)
    _assert_window_left(retry_after, window=300, started=started)
    # The API-wide bucket (10,000) is far off: other routes from the address still answer.
    assert c.get("/v1/orgs").status_code == 401


def test_get_access_tokens_is_limited_at_100(settings):
    user = UserFactory(email="lister@example.com")
    c = Client(REMOTE_ADDR=ADDRESS, HTTP_AUTHORIZATION=f"Bearer {user_token(user)}")
    for n in range(100):
        assert c.get("/v1/access_tokens").status_code == 200, n
    _assert_limited(c.delete("/v1/access_tokens/current"), words="GET/DELETE /v1/access_tokens")
    assert c.get("/v1/user").status_code == 200  # only that bucket is spent


@pytest.mark.parametrize("method,path,expected", [
    ("POST", "/oauth/token", ["api", "oauth-token"]),
    ("POST", "/oauth/token/", ["api", "oauth-token"]),
    ("GET", "/oauth/token", ["api"]),
    ("GET", "/v1/access_tokens", ["api", "access-tokens"]),
    ("DELETE", "/v1/access_tokens", ["api", "access-tokens"]),
    ("GET", "/v1/access_tokens/current", ["api", "access-tokens"]),
    ("DELETE", "/v1/access_tokens/0123abcd", ["api", "access-tokens"]),
    ("POST", "/v1/access_tokens", ["api"]),
    ("POST", "/v1/users", ["api", "sign-up"]),
    ("GET", "/v1/users", ["api"]),
    ("DELETE", "/v1/user", ["api", "account-delete"]),
    ("GET", "/v1/user", ["api"]),
    ("PUT", "/v1/user", ["api"]),
    ("POST", "/v1/user/password-reset", ["api", "password-reset"]),
    ("PUT", "/v1/user/password-reset", ["api", "password-reset"]),
    ("GET", "/v1/user/password-reset", ["api"]),
    ("GET", "/v1/events", ["api", "events"]),
    ("GET", "/v1/events/temperature", ["api", "events"]),
    ("GET", "/v1/devices/events", ["api", "events"]),
    ("GET", "/v1/devices/events/temp/x", ["api", "events"]),
    ("GET", "/v1/devices/0123456789abcdef01234567/events", ["api", "events"]),
    ("GET", "/v1/devices/0123456789abcdef01234567/events/temp", ["api", "events"]),
    ("GET", "/v1/products/my-product/events", ["api", "events"]),
    ("GET", "/v1/products/42/events/temp", ["api", "events"]),
    ("GET", "/v1/products/42/devices/0123456789abcdef01234567/events", ["api", "events"]),
    ("GET", "/v1/orgs/acme/events", ["api", "events"]),
    ("GET", "/v1/orgs/acme/events/temp", ["api", "events"]),
    ("GET", "/v1/orgs/acme/devices/0123456789abcdef01234567/events", ["api", "events"]),
    ("GET", "/v1/orgs/products/42/events", ["api", "events"]),
    ("POST", "/v1/devices/events", ["api"]),  # publishing is not opening a stream
    ("POST", "/v1/products/42/events", ["api"]),
    ("GET", "/v1/devices", ["api"]),
    ("GET", "/v1/devices/0123456789abcdef01234567", ["api"]),
    ("GET", "/v1/products/42/devices", ["api"]),
    ("GET", "/v1/eventsx", ["api"]),
    ("GET", "/v1", ["api"]),
    ("GET", "/login/", []),
    ("POST", "/login/", []),
    ("GET", "/admin/", []),
    ("GET", "/v10/events", []),
    ("GET", "/oauthx/token", []),
])
def test_which_buckets_a_request_counts_in(method, path, expected):
    assert buckets_for(method, path) == expected


def test_when_redis_is_unreachable_the_api_is_not_refused_and_a_warning_is_logged(caplog, monkeypatch):
    monkeypatch.setattr(ratelimit, "_last_warning", 0.0)
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.WARNING, logger="console.api.ratelimit"):
        c = Client(REMOTE_ADDR=ADDRESS)
        r = c.get("/v1/orgs")
        assert r.status_code == 401 and r.json()["error"] == "invalid_token", r.content
        assert c.get("/v1/products").status_code == 401
    warnings = [rec.getMessage() for rec in caplog.records if rec.name == "console.api.ratelimit"]
    assert len(warnings) == 1, warnings  # once a minute, not once a request
    assert warnings[0].startswith("Rate limits not applied: Redis is unreachable (")


def test_when_redis_is_unreachable_the_password_doors_refuse_with_503(caplog, monkeypatch):
    """The lockouts cannot be read, so no password is checked: an uncounted door could be guessed freely."""
    monkeypatch.setattr(counters, "_last_error", 0.0)
    user = UserFactory(email="careful@example.com")
    serial_reader = Client(REMOTE_ADDR=ADDRESS, HTTP_AUTHORIZATION=f"Bearer {user_token(user)}")
    with override_settings(CACHES=DEAD_REDIS), caplog.at_level(logging.ERROR, logger="console.counters"):
        r = _token_request(user.email)
        assert r.status_code == 503, r.content
        assert r.json() == {"error": "temporarily_unavailable",
                            "error_description": "This is unavailable for a moment; try again shortly."}
        assert r["Retry-After"] == "30"
        browser = Client(REMOTE_ADDR=ADDRESS)
        page = browser.post("/login/", {"username": user.email, "password": PASSWORD})
        assert page.status_code == 200 and b"This is unavailable for a moment" in page.content
        assert "_auth_user_id" not in browser.session
        r = serial_reader.get("/v1/serial_numbers/ABC123")
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable", r.content
    assert not AccessToken.objects.filter(user=user).exclude(client_name="test").exists()
    outage = [rec.getMessage() for rec in caplog.records if rec.name == "console.counters"]
    assert len(outage) == 1 and outage[0].startswith("Attempt counters unavailable (Redis is unreachable: "), outage


def test_rate_limit_enabled_false_switches_the_limits_off(settings):
    _limits(settings, api=(1, 300))
    settings.RATE_LIMIT_ENABLED = False
    c = Client(REMOTE_ADDR=ADDRESS)
    assert [c.get("/v1/orgs").status_code for _ in range(3)] == [401, 401, 401]
    settings.RATE_LIMIT_ENABLED = True
    assert c.get("/v1/orgs").status_code == 401
    _assert_limited(c.get("/v1/orgs"), words="the API")


# --- the counter under the limits, the lockouts and the serial-lookup limit ----------------------------


def _ttl(key: str) -> int:
    return cache._cache.get_client().ttl(cache.make_key(key))


def test_counting_is_atomic_across_threads():
    def hammer():
        for _ in range(50):
            count_hit("atomic-test", 300)

    started = time.monotonic()
    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("atomic-test") == 400
    _assert_window_left(_ttl("atomic-test"), window=300, started=started)


def test_a_window_runs_from_the_first_hit_unless_extended():
    assert count_hits({"a": 300, "b": 60}) == {"a": Hit(1, 300), "b": Hit(1, 60)}
    client = cache._cache.get_client(write=True)
    client.expire(cache.make_key("a"), 100)
    client.expire(cache.make_key("b"), 10)
    assert count_hits({"a": 300}) == {"a": Hit(2, 100)}  # a fixed window: the later hit does not move it
    assert count_hits({"b": 60}, extend=True) == {"b": Hit(2, 60)}  # a lockout runs from the latest failure


def test_a_counter_left_without_an_expiry_gets_one():
    cache.set("stuck", 7, timeout=None)
    assert count_hits({"stuck": 300}) == {"stuck": Hit(8, 300)}
    assert _ttl("stuck") == 300
