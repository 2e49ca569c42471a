"""Whose address a request is: X-Forwarded-For counts only when our own proxy sent it (console/clientaddr.py)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from console.clientaddr import client_address

CASES = [
    # trusted proxies, REMOTE_ADDR, X-Forwarded-For -> client
    ([], "198.51.100.7", "", "198.51.100.7"),
    ([], "198.51.100.7", "1.2.3.4", "198.51.100.7"),  # no proxy configured: the header is the client's own word
    (["10.0.0.0/8"], "198.51.100.7", "1.2.3.4", "198.51.100.7"),  # not from our proxy: ignored
    (["10.0.0.0/8"], "10.0.0.2", "203.0.113.9", "203.0.113.9"),
    (["10.0.0.0/8"], "10.0.0.2", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # a spoofed first hop is skipped
    (["10.0.0.0/8"], "10.0.0.2", "203.0.113.9, 10.0.0.5", "203.0.113.9"),  # two of our proxies in a row
    (["10.0.0.0/8"], "10.0.0.2", "10.0.0.4", "10.0.0.2"),  # only proxies: the nearest one
    (["10.0.0.0/8"], "10.0.0.2", "not-an-ip", "10.0.0.2"),
    (["10.0.0.0/8", "::1"], "::1", "2001:db8::5", "2001:db8::5"),
    (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
]


@pytest.mark.parametrize("trusted,remote,forwarded,expected", CASES)
def test_client_address(trusted, remote, forwarded, expected):
    request = RequestFactory().get("/v1/user", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(TRUSTED_PROXIES=trusted):
        assert client_address(request) == expected
