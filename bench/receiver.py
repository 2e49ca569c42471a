"""A webhook receiver for the benchmarks: an aiohttp server on 127.0.0.1 that answers 200 at once and records,
for every request, when it arrived, its `X-Cyan-Event-Id` and the event's `published_at` (Cyan's default
form payload). `GET /dump` returns the records as JSON and clears them.

    python bench/receiver.py <port>
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from aiohttp import web

records: list[tuple[float, str, float]] = []


def published(value: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def hook(request: web.Request) -> web.Response:
    form = await request.post()
    records.append((time.time(), request.headers.get("X-Cyan-Event-Id", ""), published(form.get("published_at", ""))))
    return web.Response(text="ok")


async def dump(request: web.Request) -> web.Response:
    out = list(records)
    records.clear()
    return web.json_response(out)


app = web.Application()
app.add_routes([web.post("/hook", hook), web.get("/dump", dump)])

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
