"""Sending webhook requests: one aiohttp `ClientSession` per process, on an event loop of its own thread.

Why aiohttp: measured on this machine (bench/gateway.py's load generator) it sends ~9,200 POST/s from one
process, where httpx managed 370–620. The session's connection pool is shared by every batch the process runs,
so keep-alive connections to a receiver outlive one task.

The loop lives in a daemon thread started on first use in each process (a Celery prefork child starts its own
after the fork; the parent's, if any, does not survive the fork). Sync callers hand it a list of requests and
get the outcomes back as each one finishes (`send_many`), so a slow receiver holds up only its own request:
the others of the batch are sent at once and recorded while it is still waiting.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

import aiohttp
from django.conf import settings

from integrations.targets import CheckingResolver, TargetRefused, address_allowed, literal_address


@dataclass
class HookRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    verify_tls: bool = True
    host: str = ""


@dataclass
class Outcome:
    status: int | None = None  # None: no HTTP answer (timeout, network error, refused target)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # why there was no answer
    kind: str = ""  # "timeout" | "network" | "refused" | ""
    elapsed_ms: int = 0


class _Loop:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.running: set = set()
        self.thread = threading.Thread(target=self._run, name="cyan-webhooks", daemon=True)
        self.thread.start()
        self.ready.wait()
        self.session = asyncio.run_coroutine_threadsafe(self._session(), self.loop).result()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.ready.set)
        self.loop.run_forever()

    async def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=settings.INTEGRATIONS_CONCURRENCY, resolver=CheckingResolver(),
                                         ttl_dns_cache=10)
        return aiohttp.ClientSession(connector=connector, auto_decompress=True, cookie_jar=aiohttp.DummyCookieJar())


_lock = threading.Lock()
_loops: dict[int, _Loop] = {}


def _loop() -> _Loop:
    pid = os.getpid()
    with _lock:
        if pid not in _loops:
            _loops.clear()  # a forked child inherits the parent's entry, whose thread did not survive the fork
            _loops[pid] = _Loop()
        return _loops[pid]


_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE


def _literal_refused(url: str) -> str:
    """aiohttp does not ask the resolver about a literal address, so those are checked here."""
    return _host_refused(urlsplit(url).hostname or "", settings.INTEGRATIONS_ALLOW_PRIVATE_TARGETS,
                         tuple(settings.INTEGRATIONS_ALLOWED_PRIVATE_NETWORKS))


@functools.lru_cache(maxsize=4096)
def _host_refused(host: str, allow_private: bool, networks: tuple) -> str:
    # Cached per host and settings: parsing the address was 4 % of a worker's time, once per request.
    literal = literal_address(host)
    if literal is not None and not address_allowed(literal):
        return f"{literal} is a private address; webhooks may only reach public ones"
    return ""


async def _send(session: aiohttp.ClientSession, req: HookRequest) -> Outcome:
    refused = _literal_refused(req.url)
    if refused:
        return Outcome(error=refused, kind="refused")
    limit = settings.INTEGRATIONS_BODY_LIMIT
    timeout = aiohttp.ClientTimeout(total=settings.INTEGRATIONS_TIMEOUT_SECONDS)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with session.request(req.method, req.url, headers=req.headers, data=req.body or None,
                                   timeout=timeout, ssl=None if req.verify_tls else _NO_VERIFY,
                                   allow_redirects=False) as resp:
            # At most `limit` bytes are read: a receiver answering with a huge body costs us nothing more.
            # Redirects are not followed (a 3xx is a failure): a redirect could lead to an address that the
            # checks above would refuse.
            body = await resp.content.read(limit)
            return Outcome(status=resp.status, body=body, headers=dict(resp.headers),
                           elapsed_ms=int((loop.time() - started) * 1000))
    except asyncio.TimeoutError:
        return Outcome(error="ETIMEDOUT", kind="timeout", elapsed_ms=int((loop.time() - started) * 1000))
    except TargetRefused as exc:
        return Outcome(error=str(exc), kind="refused")
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, TargetRefused):
            return Outcome(error=str(exc.os_error), kind="refused")
        return Outcome(error=f"{type(exc).__name__}: {exc.strerror or exc}", kind="network")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:300], kind="network",
                       elapsed_ms=int((loop.time() - started) * 1000))


def send_many(requests: list[HookRequest], *, tick: float | None = None) -> Iterator[list[tuple[int, Outcome]]]:
    """Send every request at once; yield lists of (index, outcome) as they finish: each list holds every
    outcome that had arrived by then, so the caller records them in bulk without waiting for the slowest.
    With `tick`, an empty list is yielded whenever `tick` seconds pass without an outcome, so the caller can
    record what it holds while a slow receiver keeps the rest waiting."""
    if not requests:
        return
    runner = _loop()
    results: queue.Queue = queue.Queue()

    async def one(i: int, req: HookRequest):
        try:
            outcome = await _send(runner.session, req)
        except Exception as exc:  # noqa: BLE001 - a bug in one send must not lose the others' outcomes
            outcome = Outcome(error=f"{type(exc).__name__}: {exc}"[:300], kind="network")
        results.put((i, outcome))

    async def all_of_them():
        # One hand-over to the loop per batch (each hand-over wakes the loop's thread), then a task per request.
        for i, req in enumerate(requests):
            task = asyncio.ensure_future(one(i, req))
            runner.running.add(task)  # the loop keeps only weak references to its tasks
            task.add_done_callback(runner.running.discard)

    asyncio.run_coroutine_threadsafe(all_of_them(), runner.loop)
    left = len(requests)
    deadline = time.monotonic() + settings.INTEGRATIONS_TIMEOUT_SECONDS + 30
    while left:
        wait = max(0.0, deadline - time.monotonic())
        try:
            group = [results.get(timeout=min(wait, tick) if tick else wait)]
        except queue.Empty:
            if time.monotonic() >= deadline:
                raise
            yield []
            continue
        while True:
            try:
                group.append(results.get_nowait())
            except queue.Empty:
                break
        left -= len(group)
        yield group
