"""Run one device gateway process: Particle's Gen 2 device protocol on TCP (docs/device-protocol.md).

    manage.py gateway [--host 0.0.0.0] [--port 5683]

Run several behind a TCP load balancer to scale out; each registers itself in Redis. SIGTERM or Ctrl-C closes
every connection and marks its devices offline before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from console.heap import settle_heap
from devices.gateway.hub import Hub

log = logging.getLogger("devices.gateway")


class Command(BaseCommand):
    help = "Run a device gateway (Particle's Gen 2 TCP device protocol)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=getattr(settings, "GATEWAY_HOST", "0.0.0.0"))
        parser.add_argument("--port", type=int, default=getattr(settings, "GATEWAY_PORT", 5683))

    def handle(self, *args, host, port, **options):
        try:
            import uvloop
        except ImportError:  # plain asyncio works; uvloop costs less CPU per connection
            uvloop = None
        runner = uvloop.run if uvloop is not None else asyncio.run
        settle_heap()  # Django's startup heap out of the collector's full passes (console/heap.py)
        runner(self._serve(host, port))

    async def _serve(self, host: str, port: int) -> None:
        hub = Hub()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        bound = await hub.start(host, port)
        self.stdout.write(f"Gateway {hub.id} listening on {host}:{bound}")
        self.stdout.flush()
        await stop.wait()
        self.stdout.write("Gateway stopping: closing connections")
        await hub.stop()
