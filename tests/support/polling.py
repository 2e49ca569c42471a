"""Waiting for something another process does (a worker, a gateway, a simulated device) without sleeping a
fixed time: poll `predicate` until it holds or `timeout` seconds pass, and return its last answer."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
