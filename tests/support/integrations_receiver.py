"""A real HTTP receiver for webhook tests: aiohttp.web on 127.0.0.1 in a thread of its own, so slow answers
to one path do not hold up another. Each path answers from a script of (status, body, delay) steps, the last
step repeating; every request is recorded with its headers, body and arrival time."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    at: float


@dataclass
class Step:
    status: int = 200
    body: bytes | str = b"ok"
    delay: float = 0.0


@dataclass
class Receiver:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    scripts: dict[str, list[Step]] = field(default_factory=dict)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *steps: Step) -> None:
        self.scripts[path] = list(steps)

    def at(self, path: str) -> list[Received]:
        return [r for r in list(self.requests) if r.path == path]

    def _next(self, path: str) -> Step:
        steps = self.scripts.get(path)
        if not steps:
            return Step()
        return steps.pop(0) if len(steps) > 1 else steps[0]


class _Server:
    def __init__(self, port: int = 0):
        self.want_port = port
        self.receiver = Receiver()
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="test-receiver")
        self.thread.start()
        assert self.started.wait(10)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.receiver.requests.append(Received(request.method, request.path, dict(request.query),
                                               dict(request.headers), body, time.monotonic()))
        step = self.receiver._next(request.path)
        if step.delay:
            await asyncio.sleep(step.delay)
        payload = step.body.encode() if isinstance(step.body, str) else step.body
        return web.Response(status=step.status, body=payload)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", self.want_port)
        self.loop.run_until_complete(site.start())
        self.receiver.port = site._server.sockets[0].getsockname()[1]
        self.started.set()
        self.loop.run_forever()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class running_receiver:
    """`with running_receiver() as rx:` a Receiver listening until the block ends."""

    def __init__(self, port: int = 0):
        self.port = port

    def __enter__(self) -> Receiver:
        self.server = _Server(self.port)
        return self.server.receiver

    def __exit__(self, *exc):
        self.server.stop()


def allow_loopback(settings) -> None:
    """Webhook tests send to 127.0.0.1, which the default settings refuse (integrations/targets.py)."""
    settings.INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS = ["127.0.0.0/8"]


def free_port() -> int:
    """A port nothing listens on right now (a receiver that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
