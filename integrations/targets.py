"""Which addresses a webhook may be sent to.

Beyond Particle: a receiver on a private, loopback, link-local or otherwise non-public address is refused
(a hook must not become a way into the machine's own network), unless `INTEGRATIONS_ALLOW_PRIVATE_TARGETS`
is on or the address is inside one of `INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS` (the tests allow 127.0.0.0/8).
A literal address is checked when the hook is saved; a host name is checked when the request is sent, on the
addresses it resolves to at that moment (aiohttp's resolver below), so re-pointing DNS cannot get around it.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from django.conf import settings


class TargetRefused(OSError):
    """The receiver's address is not a public one and the settings do not allow it."""


def _allowed_networks():
    return [ipaddress.ip_network(n, strict=False) for n in settings.INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS]


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return True
    if settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS:
        return True
    return any(ip in net for net in _allowed_networks())


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class CheckingResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses a webhook may reach; none left is a refusal."""

    def __init__(self):
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        found = await self._inner.resolve(host, port, family)
        kept = [entry for entry in found if address_allowed(entry["host"])]
        if not kept:
            raise TargetRefused(f"{host} resolves to a private address; webhooks may only reach public ones")
        return kept

    async def close(self) -> None:
        await self._inner.close()
