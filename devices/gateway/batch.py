"""Batching blocking work off the event loop: many devices connect, talk and leave in the same few
milliseconds, and the services they reach are built for lists (one query per batch, not per device)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Any, Callable, Generic, TypeVar

from django.db import close_old_connections

log = logging.getLogger("devices.gateway")
T = TypeVar("T")


def in_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a Django service in an executor thread, keeping that thread's database connection healthy."""
    def run(*args, **kwargs):
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()
    return run


class Batcher(Generic[T]):
    """Collects items and calls `fn(items) -> results` (same order; None when the results are not needed) in
    `executor`, at most `size` at a time, `delay` seconds after the first item of a batch arrived."""

    def __init__(self, name: str, fn: Callable[[list[T]], list | None], executor: Executor, *, size: int = 200,
                 delay: float = 0.01):
        self.name, self.fn, self.executor, self.size, self.delay = name, in_thread(fn), executor, size, delay
        self.items: list[tuple[T, asyncio.Future | None]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.running: set[asyncio.Task] = set()

    def submit(self, item: T, *, want_result: bool = True) -> asyncio.Future | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future() if want_result else None
        self.items.append((item, future))
        if len(self.items) >= self.size:
            self._flush()
        elif self.timer is None:
            self.timer = loop.call_later(self.delay, self._flush)
        return future

    def _flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        items, self.items = self.items, []
        if items:
            task = asyncio.get_running_loop().create_task(self._run(items))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _run(self, items: list[tuple[T, asyncio.Future | None]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in items])
        except Exception as exc:  # the batch failed: every waiter learns it; the gateway logs and goes on
            log.exception("%s: a batch of %d failed", self.name, len(items))
            for _, future in items:
                if future is not None and not future.done():
                    future.set_exception(exc)
            return
        for i, (_, future) in enumerate(items):
            if future is not None and not future.done():
                future.set_result(results[i] if results is not None else None)

    async def drain(self) -> None:
        self._flush()
        while self.running:
            await asyncio.gather(*list(self.running), return_exceptions=True)
