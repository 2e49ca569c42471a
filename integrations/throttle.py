"""Particle's per-target-hostname throttle ("sleeping"), shared by every worker through Redis.

For each hostname (across all accounts) Redis holds a hash of recent successes and errors and the time of
the last error; the hash expires after `INTEGRATIONS_THROTTLE_WINDOW_SECONDS` without traffic. A host sleeps
while its errors outnumber its successes (and number at least `INTEGRATIONS_THROTTLE_MIN_ERRORS`) and its
last error is younger than `INTEGRATIONS_THROTTLE_RECOVERY_SECONDS`: deliveries to it are postponed, not
sent. Once that many seconds pass without an error, the next delivery goes out as a probe: a success ends the
sleep, another error starts it again.
"""

from __future__ import annotations

import time

from django.conf import settings

from devices import presence


def _key(host: str) -> str:
    return f"{presence.prefix()}:hookthr:{host.lower()}"


def hosts_sleeping(hosts: set[str]) -> set[str]:
    """Which of `hosts` are sleeping now (one round trip)."""
    if not hosts:
        return set()
    ordered = sorted(hosts)
    pipe = presence.client().pipeline(transaction=False)
    for host in ordered:
        pipe.hmget(_key(host), "ok", "err", "last_err")
    now = time.time()
    recovery = settings.INTEGRATIONS_THROTTLE_RECOVERY_SECONDS
    sleeping = set()
    for host, (ok, err, last_err) in zip(ordered, pipe.execute()):
        ok, err = int(ok or 0), int(err or 0)
        if err >= settings.INTEGRATIONS_THROTTLE_MIN_ERRORS and err > ok and now - float(last_err or 0) < recovery:
            sleeping.add(host)
    return sleeping


def hosts_record(outcomes: dict[str, tuple[int, int]]) -> None:
    """Add {host: (successes, errors)} from one round of sends."""
    if not outcomes:
        return
    pipe = presence.client().pipeline(transaction=False)
    now = time.time()
    for host, (ok, err) in outcomes.items():
        key = _key(host)
        if ok:
            pipe.hincrby(key, "ok", ok)
        if err:
            pipe.hincrby(key, "err", err)
            pipe.hset(key, "last_err", repr(now))
        pipe.expire(key, int(settings.INTEGRATIONS_THROTTLE_WINDOW_SECONDS))
    pipe.execute()


def host_forget(host: str) -> None:
    presence.client().delete(_key(host))
