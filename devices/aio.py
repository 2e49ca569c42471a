"""Stopping asyncio loops that run until cancelled, on Python 3.11.

Python 3.11's `asyncio.wait_for` returns normally, and drops the CancelledError, when the cancel reaches it in
the same turn as the awaited work finishes. redis-py wraps every command's socket write in `wait_for`, so a
loop cancelled while it sends a command can carry on as if nothing had happened: its task reports
"cancelling" and never ends. (Measured here: of 100 bus readers cancelled at random moments in their first
50 ms, about half kept running; CPython 3.12 rewrote `wait_for` on `asyncio.timeout`, which does not drop it.)

So a loop that runs until cancelled calls `raise_if_cancelled()` each turn, and whoever cancels such loops
waits for them with `cancel_and_wait`, which repeats the cancel until each task has ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

log = logging.getLogger("devices.aio")


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task has been asked to stop, even if the cancel was swallowed
    by something it awaited."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task], *, every: float = 1.0) -> None:
    """Cancel `tasks` and wait until every one has ended, cancelling again each `every` seconds those still
    running (a cancel swallowed once is not swallowed twice in a row in practice; each one is logged)."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=every)
        for task in pending:
            log.warning("task %s ignored a cancel; cancelling it again", task.get_name())
            task.cancel()
    for task in tasks:  # an exception a task ended with is logged, not left for the garbage collector
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed", task.get_name(), exc_info=task.exception())
