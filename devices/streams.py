"""Server-sent event streams in a web process: one reader of the bus, fanned out in memory.

Each web process holds **one** blocking XREAD on the bus stream (devices/events.py) and hands every event to
the streams open in that process whose audience, device and prefix it matches (DESIGN.md §4: 1,000 Redis
subscriptions cannot carry 100 events/s, one subscription feeding 1,000 queues can). The event's bytes are
made once and shared by every stream that sends it. A stream that wakes finds everything queued since it
last sent and writes it as one chunk, so a busy process sends fewer, larger writes instead of falling behind.

Resuming: each event is sent with `id: <event id>`. A stream opened with `Last-Event-ID` (header, or
`?last_event_id=` for clients that cannot set headers) subscribes first, then reads its audience's replay
stream after that id, then sends the live events it buffered meanwhile that are newer than the last replayed
one: nothing missed within the replay window, nothing twice. A stream whose backlog passes
`EVENTS_SUBSCRIBER_BACKLOG` (a client that stopped reading) is closed; it can resume.

Keepalive: one timer per process sends a bare newline (what Particle sends) to every stream that sent nothing
for `EVENTS_KEEPALIVE_SECONDS`; particle-api-js reconnects after 15 s of silence.

Streams open at once per client address are counted in Redis (a sorted set per address, each stream's entry
refreshed by the timer and expiring if its process dies), so the limit holds across web processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from django.conf import settings

from devices import events
from devices.aio import raise_if_cancelled

log = logging.getLogger("cyan.streams")

KEEPALIVE = b"\n"
OK = b":ok\n\n"
_CLOSE = object()


@dataclass(frozen=True)
class StreamScope:
    """What one stream sends: the events of one audience (`u:<id>`, `c:<id>`, `p:<id>`, `o:<id>`), of one
    device (`coreid`) or all, whose names start with `prefix` (case-sensitive, as Particle)."""

    audience: str
    coreid: str | None = None
    prefix: str = ""

    def matches(self, event: events.BusEvent) -> bool:
        return (self.coreid is None or event.coreid == self.coreid) and event.name.startswith(self.prefix)


def frame(event: events.BusEvent) -> bytes:
    return (f"id: {event.id}\nevent: {event.name}\ndata: "
            f"{json.dumps(event.wire(), separators=(',', ':'))}\n\n").encode()


def frame_unnamed(event: events.BusEvent) -> bytes:
    """The console's form: no `event:` line (a browser's EventSource has no listener for every name), the name
    inside the data."""
    return (f"id: {event.id}\ndata: "
            f"{json.dumps({'name': event.name, **event.wire()}, separators=(',', ':'))}\n\n").encode()


FORMATS = {"particle": frame, "unnamed": frame_unnamed}


def id_key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def valid_event_id(value: str) -> bool:
    ms, sep, seq = value.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit() and len(value) <= 40


@dataclass(eq=False)
class Subscriber:
    scope: StreamScope
    queue: deque = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_sent: float = field(default_factory=time.monotonic)
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    address: str = ""
    holding: bool = False  # buffering live events while the replay is read
    format: str = "particle"  # or "unnamed" (FORMATS)

    def push(self, item) -> None:
        self.queue.append(item)
        self.wake.set()

    def put(self, item) -> None:
        """Queue without waking: the hub wakes every stream it fed at once (`StreamHub._wake`)."""
        self.queue.append(item)


class StreamHub:
    """The process's one bus reader and the streams it feeds (one hub per event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.by_audience: dict[str, set[Subscriber]] = {}
        self.redis = aioredis.Redis.from_url(settings.REDIS_URL)
        self.reader: asyncio.Task | None = None
        self.ticker: asyncio.Task | None = None
        self.start_lock = asyncio.Lock()
        self.last_id = ""
        self.delivered = 0
        self.fed: set[Subscriber] = set()
        self.wake_pending = False

    # --- subscribers ---------------------------------------------------------------------------------------

    async def add(self, sub: Subscriber) -> None:
        """Start feeding `sub`: every event published after this returns reaches it."""
        self.by_audience.setdefault(sub.scope.audience, set()).add(sub)
        async with self.start_lock:
            if self.reader is None or self.reader.done():
                if not self.last_id:  # read on from the bus's newest entry, not from whenever XREAD first runs
                    self.last_id = await events.bus_newest(self.redis)
                self.reader = self.loop.create_task(self._read())
            if self.ticker is None or self.ticker.done():
                self.ticker = self.loop.create_task(self._tick())

    def remove(self, sub: Subscriber) -> None:
        subs = self.by_audience.get(sub.scope.audience)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.by_audience[sub.scope.audience]

    def count(self) -> int:
        return sum(len(s) for s in self.by_audience.values())

    # --- the bus reader ------------------------------------------------------------------------------------

    async def _read(self) -> None:
        async for batch in events.bus_follow(self.redis, self.last_id, "event streams"):
            self.last_id = batch[-1].id
            for event in batch:
                self.dispatch(event)

    def dispatch(self, event: events.BusEvent) -> None:
        made: dict[str, bytes] = {}
        closed = []
        for audience in event.audiences:
            for sub in self.by_audience.get(audience, ()):
                if sub.scope.matches(event):
                    data = made.get(sub.format)
                    if data is None:
                        data = made[sub.format] = FORMATS[sub.format](event)
                    if len(sub.queue) >= settings.EVENTS_SUBSCRIBER_BACKLOG:
                        sub.queue.clear()
                        sub.push(_CLOSE)
                        closed.append(sub)
                        continue
                    sub.put((event.id, data) if sub.holding else data)
                    self.fed.add(sub)
                    self.delivered += 1
        for sub in closed:
            # Fed no more: its body closes when it wakes, and a body that never started (the client left
            # between the headers and it) would otherwise stay in the hub for good.
            self.remove(sub)
        if self.fed and not self.wake_pending:
            self.wake_pending = True
            # Many streams: wait a moment so each wakes once for several events (a write per stream per event
            # is what saturates the process); few: at once.
            many = self.count() > settings.EVENTS_COALESCE_ABOVE
            self.loop.call_later(settings.EVENTS_COALESCE_SECONDS if many else 0, self._wake)

    def _wake(self) -> None:
        fed, self.fed, self.wake_pending = self.fed, set(), False
        for sub in fed:
            sub.wake.set()

    # --- keepalives and the per-address count ------------------------------------------------------------

    async def _tick(self) -> None:
        refresh_every = 10.0
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            raise_if_cancelled()
            now = time.monotonic()
            quiet = now - settings.EVENTS_KEEPALIVE_SECONDS
            for subs in list(self.by_audience.values()):
                for sub in subs:
                    if sub.last_sent <= quiet and not sub.queue:
                        sub.push(KEEPALIVE)
            if now - refreshed >= refresh_every:
                refreshed = now
                try:
                    await self._refresh_addresses()
                except Exception as exc:
                    log.warning("refreshing stream counts failed: %s", exc)

    async def _refresh_addresses(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        until = time.time() + OPEN_TTL
        for subs in self.by_audience.values():
            for sub in subs:
                if sub.address:
                    pipe.zadd(address_key(sub.address), {sub.token: until}, xx=True)
        await pipe.execute()


OPEN_TTL = 30  # a stream's entry in its address's count outlives a dead process by this long at most

_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def address_key(address: str) -> str:
    return f"{events.bus_key()}:open:{address}"


_hubs: dict[int, StreamHub] = {}


def hub() -> StreamHub:
    """This event loop's hub (uvicorn runs one loop per process; tests may run several, one at a time)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(id(loop))
    if found is None or found.loop is not loop:
        found = _hubs[id(loop)] = StreamHub(loop)
    return found


async def admit(h: StreamHub, sub: Subscriber, address: str) -> bool:
    """Count the stream against its address's limit of open streams; False when the address is at it."""
    now = time.time()
    ok = await h.redis.eval(_ADMIT, 1, address_key(address), now, settings.EVENTS_MAX_STREAMS_PER_ADDRESS,
                            now + OPEN_TTL, sub.token, OPEN_TTL * 2)
    if ok:
        sub.address = address
    return bool(ok)


async def release(h: StreamHub, sub: Subscriber) -> None:
    if sub.address:
        try:
            await h.redis.zrem(address_key(sub.address), sub.token)
        except Exception as exc:  # the entry expires by itself
            log.info("releasing a stream's count failed: %s", exc)


async def replay(h: StreamHub, scope: StreamScope, after: str, render=frame) -> tuple[list[bytes], str, bool]:
    """The events of `scope` after `after` still kept: (frames, last id read, whether some were already
    trimmed away — the client missed events older than the window)."""
    key = events.replay_key(scope.audience)
    frames: list[bytes] = []
    last = after
    start = f"({after}"
    first = await h.redis.xrange(key, count=1)
    gap = bool(first) and id_key(first[0][0].decode()) > id_key(after)
    while True:
        batch = await h.redis.xrange(key, min=start, count=1000)
        if not batch:
            break
        for raw_id, fields in batch:
            last = raw_id.decode()
            event = events.bus_event(last, fields[b"e"])
            if scope.matches(event):
                frames.append(render(event))
        start = f"({last}"
    return frames, last, gap


async def stream_response(request, scope: StreamScope, *, last_event_id: str | None, format: str = "particle"):
    """The response that streams `scope` to this client (the API's and the console's streams alike), or
    Particle's JSON refusal: 529 when its address holds too many streams, 503 when Redis cannot be reached."""
    from django.http import JsonResponse, StreamingHttpResponse

    from console.api.errors import error_body
    from console.clientaddr import client_address

    h = hub()
    sub = Subscriber(scope, format=format)
    try:
        admitted = await admit(h, sub, client_address(request))
    except Exception:  # Redis down: the stream could not carry events anyway
        return JsonResponse(error_body("temporarily_unavailable", "The event service is unavailable; try again"),
                            status=503)
    if not admitted:
        return JsonResponse(error_body("rate_limited", "Too many event streams open from this address: at most "
                                       f"{settings.EVENTS_MAX_STREAMS_PER_ADDRESS} at once"), status=529)
    # Fed from now on, before the headers go: a client that sees the stream open and then publishes gets its
    # event. Added in the body instead, an event published between the headers and the body's first step was
    # lost (tests/test_official_clients_events.py, under load).
    sub.holding = bool(last_event_id)  # what arrives before the replay is kept with its id, to drop repeats
    await h.add(sub)
    response = StreamingHttpResponse(stream(sub, last_event_id=last_event_id), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def stream(sub: Subscriber, *, last_event_id: str | None):
    """The body of one stream (`sub` already fed by the hub): `:ok` at once, what it missed, then live events
    and keepalives."""
    h = hub()
    try:
        yield OK
        sub.last_sent = time.monotonic()
        if last_event_id:
            sub.holding = True
            frames, last, gap = await replay(h, sub.scope, last_event_id, FORMATS[sub.format])
            if gap:
                frames.insert(0, b": some events after the given Last-Event-ID are no longer kept\n\n")
            held = list(sub.queue)
            sub.queue.clear()
            sub.holding = False
            newer = [d for item in held if isinstance(item, tuple)
                     for d in (item[1],) if id_key(item[0]) > id_key(last)]
            frames += newer
            frames += [item for item in held if not isinstance(item, tuple)]
            if frames:
                yield b"".join(frames)
                sub.last_sent = time.monotonic()
        while True:
            await sub.wake.wait()
            sub.wake.clear()
            items = list(sub.queue)
            sub.queue.clear()
            if _CLOSE in items:
                log.info("closing a stream of %s: %d events behind", sub.scope.audience,
                         settings.EVENTS_SUBSCRIBER_BACKLOG)
                return
            sub.last_sent = time.monotonic()
            yield items[0] if len(items) == 1 else b"".join(items)
    finally:
        h.remove(sub)
        await release(h, sub)
