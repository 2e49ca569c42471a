"""The address a request came from, for lockouts and rate limits.

Behind a reverse proxy every request arrives from the proxy, so the client's address is in
X-Forwarded-For — but that header is whatever the client wrote, unless a proxy we trust appended to it.
Only when the connection comes from one of `TRUSTED_PROXIES` (addresses or networks) is the header read,
right to left, skipping our own proxies: the first address that is not one of them is the client.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in spec if item.strip())


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    if not settings.TRUSTED_PROXIES or not _trusted(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a malformed hop: fall back to the proxy rather than trust garbage
    return remote
