"""A real device gateway for tests: the production Hub on its own event loop in a background thread, bound to
a free port on 127.0.0.1, using this test's database and Redis (tests/support/isolation.py keeps the Redis keys
and channels per xdist worker). Use with `transactional_db` (or `live_server`): the gateway's threads must see
committed rows.

    with running_gateway() as gw:
        gw.port, gw.hub, gw.run(coro)   # run a coroutine on the gateway's loop and wait for its result
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class RunningGateway:
    hub: object
    loop: asyncio.AbstractEventLoop
    host: str
    port: int

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args, timeout: float = 30.0):
        """Call `fn(*args)` on the gateway's loop (its state is not thread-safe) and return the result."""
        async def wrapped():
            return fn(*args)
        return self.run(wrapped(), timeout)

    def abort(self) -> None:
        """End the gateway as a SIGKILL would: sockets drop, nothing is cleaned up in Redis or the rows."""
        self.run(self.hub.abort())


@contextmanager
def running_gateway(*, host: str = "127.0.0.1", port: int = 0, gateway_id: str | None = None):
    from devices.gateway.hub import Hub

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    def serve():
        asyncio.set_event_loop(loop)

        async def start():
            hub = Hub(gateway_id=gateway_id)
            holder["hub"] = hub
            holder["port"] = await hub.start(host, port)

        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # surface start-up failures in the test, not in a silent thread
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="test-gateway", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the gateway did not start in 30 s")
    if "error" in holder:
        raise holder["error"]
    gw = RunningGateway(holder["hub"], loop, host, holder["port"])
    try:
        yield gw
    finally:
        if not gw.hub.stopped:
            asyncio.run_coroutine_threadsafe(gw.hub.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
