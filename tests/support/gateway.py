"""A real device gateway for tests: the production Hub on its own event loop in a background thread, bound to
a free port on 127.0.0.1, using this test's database and Redis (tests/support/isolation.py keeps the Redis keys
and channels per xdist worker). Use with `transactional_db` (or `live_server`): the gateway's threads must see
committed rows.

    with running_gateway() as gw:
        gw.port, gw.hub, gw.run(coro)   # run a coroutine on the gateway's loop and wait for its result
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import sys
import threading
import traceback
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
            stopping = asyncio.run_coroutine_threadsafe(gw.hub.stop(), loop)
            try:
                stopping.result(60)
            except concurrent.futures.TimeoutError:
                raise RuntimeError("the gateway did not stop in 60 s; where it waits:\n" + _where(loop)) from None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _where(loop: asyncio.AbstractEventLoop) -> str:
    """Every thread's stack, the gateway loop's pending tasks and the database's waiting sessions: what a
    shutdown that hangs is waiting for."""
    out = []
    for ident, frame in sys._current_frames().items():
        name = next((t.name for t in threading.enumerate() if t.ident == ident), str(ident))
        out.append(f"--- thread {name}\n" + "".join(traceback.format_stack(frame)))
    for task in asyncio.all_tasks(loop):
        buffer = io.StringIO()
        task.print_stack(file=buffer)
        out.append(f"--- task {task!r}\n{buffer.getvalue()}")
    from django.db import connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid, state, wait_event_type, wait_event, left(query, 200) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND pid <> pg_backend_pid()")
            out.extend(f"--- session {row}" for row in cursor.fetchall())
    return "\n".join(out)
