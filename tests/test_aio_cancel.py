"""Loops that run until cancelled do end when cancelled (devices/aio.py). On Python 3.11 redis-py can swallow a
cancel that reaches a command as its socket write finishes; the gateway's stop then waited for ever on its
event-bus reader (seen in CI as "the gateway did not stop in 60 s", the bus task left "cancelling")."""

from __future__ import annotations

import asyncio
import json
import random

import redis.asyncio as aioredis
from django.conf import settings

from devices import events
from devices.aio import cancel_and_wait


def test_bus_readers_cancelled_at_any_moment_all_end():
    """100 readers of the real bus, each cancelled at a random moment of its first 50 ms while a writer keeps
    the bus busy: every one ends within the 2 s its XREAD may block plus a margin. Before the check each turn,
    about half of them read on for ever."""

    async def scenario():
        clients = [aioredis.Redis.from_url(settings.REDIS_URL) for _ in range(100)]
        writer = aioredis.Redis.from_url(settings.REDIS_URL)
        await asyncio.gather(*(c.ping() for c in clients))  # connected: the cancel meets a command, not a connect
        after = await events.bus_newest(writer)

        async def read(client):
            async for _ in events.bus_follow(client, after, "test reader"):
                pass

        writing_on = True

        async def write():  # stopped by a flag: its own commands could swallow a cancel too
            entry = json.dumps({"n": "t", "d": "", "c": "c" * 24, "t": "", "l": 60})
            while writing_on:
                await writer.xadd(events.bus_key(), {"e": entry}, maxlen=1000, approximate=True)
                await asyncio.sleep(random.uniform(0, 0.005))

        writing = asyncio.create_task(write())
        readers = [asyncio.create_task(read(c)) for c in clients]
        for task in readers:
            asyncio.get_running_loop().call_later(random.uniform(0, 0.05), task.cancel)
        await asyncio.sleep(0.06)
        done, running = await asyncio.wait(readers, timeout=4.0)
        writing_on = False
        await writing
        if running:  # leave no reader behind, whatever happened here: idle readers take a cancel
            await asyncio.wait_for(cancel_and_wait(running, every=0.1), timeout=30)
        for client in clients + [writer]:
            await client.aclose()
        return len(done), sum(task.cancelled() for task in done)

    ended, cancelled = asyncio.run(scenario())
    assert (ended, cancelled) == (100, 100)


def test_cancel_and_wait_cancels_again_a_task_that_swallowed_the_cancel():
    log: list[str] = []

    async def stubborn():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            log.append("swallowed")  # what a library that drops the cancel looks like to its caller
        await asyncio.sleep(30)
        log.append("ran on")

    async def polite():
        await asyncio.sleep(30)

    async def scenario():
        tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
        await asyncio.sleep(0)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(cancel_and_wait(tasks, every=0.2), timeout=5)
        return [t.cancelled() for t in tasks], asyncio.get_running_loop().time() - started

    cancelled, took = asyncio.run(scenario())
    assert cancelled == [True, True]
    assert log == ["swallowed"]
    assert took < 1.0
