"""One gateway process: its sessions, its place in Redis, and the batched calls into the domain services.

- Presence: a session's device is written to the presence hash when its Hello arrives (so an approval can
  reach a device still waiting), and removed — only if it still names this session — when it goes away.
- One Redis subscription per process, to its own command channel (devices/presence.py); a heartbeat key
  says the process is alive, and any gateway (or the beat task) reaps the devices of one that died.
- last heard: kept in memory per session and written in batches every GATEWAY_FLUSH_SECONDS, to Redis and to
  the device rows; never a write per message.
- Work that touches the database runs in a small thread pool, batched (batch.py), off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import redis.asyncio as aioredis
from django.conf import settings

from billing import metering
from devices import events, keys, presence
from devices.aio import cancel_and_wait, raise_if_cancelled
from devices.gateway.batch import Batcher, in_thread
from devices.gateway.session import CLOUD_PREFIXES, NO_FIRMWARE, Describe, Session
from devices.services import liveness, sessions

log = logging.getLogger("devices.gateway")

# Lua: record this session as the device's location and return the one it replaces (if any).
_CLAIM = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return old
"""
SYSTEM_EVENTS_FROM_DEVICE = ("spark/hardware/", "particle/device/updates/", "spark/device/last_reset",
                             "spark/device/safemode", "spark/device/key/error", "ident/")


def _routes_in_order(device_ids: list[str]) -> list[events.Route]:
    found = events.device_routes(device_ids)
    return [found.get(d, events.NOWHERE) for d in device_ids]


def _keys_in_order(device_ids: list[str]) -> list[bytes | None]:
    found = keys.device_public_keys(device_ids)
    return [found.get(d) for d in device_ids]


# Lua: forget the device's location if it still names this session. It stays in this gateway's set (the
# reaper's list) while its location names another session of this gateway: a device that reconnected here
# before its old connection's release ran must still be found if this gateway dies.
_RELEASE = """
local where = redis.call('HGET', KEYS[1], ARGV[1])
if where == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return 1
end
if (not where) or string.sub(where, 1, string.len(ARGV[3]) + 1) ~= ARGV[3] .. ' ' then
  redis.call('SREM', KEYS[2], ARGV[1])
end
return 0
"""


def _open(gateway: str, hellos: list[sessions.Hello]) -> list[sessions.Verdict]:
    """Record the devices' new locations (telling any gateway that held an older connection of one to close
    it), then ask onboarding for the verdicts: one Redis pipeline and one service call per batch."""
    r = presence.client()
    pipe = r.pipeline(transaction=False)
    for hello in hellos:
        pipe.eval(_CLAIM, 2, presence.where_key(), presence.devices_key(gateway), hello.device_id,
                  f"{gateway} {hello.session}")
    replaced = pipe.execute()
    pipe = r.pipeline(transaction=False)
    for hello, previous in zip(hellos, replaced):
        if previous:
            old_gateway, _, old_session = previous.decode().partition(" ")
            if old_gateway != gateway:
                pipe.publish(presence.command_channel(old_gateway), presence.command(
                    hello.device_id, presence.Location(old_gateway, old_session), "close",
                    {"reason": "the device connected again through another gateway"}))
    pipe.execute()
    return sessions.sessions_open(hellos)


def _closed(gateway: str, items: list[tuple[str, str, datetime, str | None]]) -> None:
    """Sessions that ended: forget the locations that still name them; those devices' last heard, then
    offline. A device that already connected again (here or elsewhere) keeps its new session."""
    r = presence.client()
    pipe = r.pipeline(transaction=False)
    for device_id, session_id, _, _ in items:
        pipe.eval(_RELEASE, 2, presence.where_key(), presence.devices_key(gateway), device_id,
                  f"{gateway} {session_id}", gateway)
    released = [item for item, gone in zip(items, pipe.execute()) if gone]
    if released:
        liveness.devices_heard({d: (at, ip) for d, _, at, ip in released})
        sessions.sessions_closed([d for d, _, _, _ in released])


def _setting(name: str, default):
    return type(default)(getattr(settings, name, default))


class Hub:
    def __init__(self, *, gateway_id: str | None = None):
        self.id = gateway_id or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.loop: asyncio.AbstractEventLoop = asyncio.get_event_loop()
        self.server_key = keys.server_private_key()
        self.sessions: dict[str, Session] = {}
        self.connections: set = set()
        self.handshaking_by_ip: dict[str | None, int] = defaultdict(int)
        # Waits for a free connection rather than failing when many replies go out at once.
        self.redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=32, timeout=20))
        self.executor = ThreadPoolExecutor(max_workers=_setting("GATEWAY_DB_THREADS", 4),
                                           thread_name_prefix="gateway-db")
        self.flush_seconds = _setting("GATEWAY_FLUSH_SECONDS", 15.0)
        self.idle_timeout = _setting("GATEWAY_IDLE_TIMEOUT", 40.0)
        self.handshake_timeout = _setting("GATEWAY_HANDSHAKE_TIMEOUT", 20.0)
        self.max_handshakes_per_address = _setting("GATEWAY_MAX_HANDSHAKES_PER_ADDRESS", 500)
        self.max_messages_per_second = _setting("GATEWAY_MAX_MESSAGES_PER_SECOND", 200)
        self.event_data_max = _setting("EVENT_DATA_MAX_BYTES", 1024)
        # A token bucket on new connections: past it a device is closed before the nonce and backs off (1 s,
        # then longer), so a fleet cut off at once — a gateway restart — comes back spread over seconds rather
        # than queueing RSA work it would time out on.
        self.handshake_rate = _setting("GATEWAY_MAX_HANDSHAKES_PER_SECOND", 1000.0)
        self.bucket = self.handshake_rate
        self.bucket_at = time.monotonic()
        self.keys = Batcher("keys", _keys_in_order, self.executor, size=200, delay=0.005)
        self.opens = Batcher("sessions_open", lambda hellos: _open(self.id, hellos), self.executor, size=200,
                             delay=0.02)
        self.closes = Batcher("sessions_closed", lambda items: _closed(self.id, items), self.executor, size=500,
                              delay=0.1)
        self.claims = Batcher("claim_codes", self._claim_codes, self.executor, size=50, delay=0.05)
        self.describes = Batcher("describes", liveness.describes_received, self.executor, size=200, delay=0.1)
        self.events = Batcher("events", events.events_publish, self.executor, size=500, delay=0.05)
        self.routes = Batcher("routes", _routes_in_order, self.executor, size=200, delay=0.02)
        # Device subscriptions: the online sessions that subscribed, by the audiences whose events reach them
        # (their owner's or customer's, their product's); fed by one reader of the bus (`_bus`).
        self.subscribed: dict[str, set[Session]] = defaultdict(set)
        self.bus_task: asyncio.Task | None = None
        self.bus_redis: aioredis.Redis | None = None
        self.bus_lock = asyncio.Lock()
        self.tasks: list[asyncio.Task] = []
        self.server: asyncio.AbstractServer | None = None
        self.stopping = False
        self.stopped = False
        self.aborted = False
        self.stats = defaultdict(int)

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        await self.redis.sadd(presence.all_gateways_key(), self.id)
        await self._heartbeat_once()
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(presence.command_channel(self.id))
        from devices.gateway.tcp import DeviceConnection
        self.server = await self.loop.create_server(lambda: DeviceConnection(self), host, port, backlog=4096,
                                                    reuse_address=True)
        self.tasks = [self.loop.create_task(c) for c in (self._commands(), self._heartbeat(), self._housekeeping())]
        bound = self.server.sockets[0].getsockname()[1]
        log.info("gateway %s listening on %s:%s", self.id, host, bound)
        return bound

    async def stop(self) -> None:
        """Stop accepting, close every connection, and leave Redis and the rows as if the devices had gone."""
        self.stopping = True
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close("gateway shutting down")
        await asyncio.sleep(0)
        await self._flush_heard()
        for batcher in (self.keys, self.opens, self.claims, self.describes, self.events, self.closes, self.routes):
            await batcher.drain()
        await cancel_and_wait(self.tasks)
        # Devices still recorded as ours (their close raced the shutdown) are released by the reaper's rule.
        await self.loop.run_in_executor(self.executor, in_thread(liveness.gateway_release), self.id)
        await self.redis.delete(presence.alive_key(self.id))
        await self.redis.srem(presence.all_gateways_key(), self.id)
        await self.pubsub.aclose()
        await self.redis.aclose()
        if self.bus_redis is not None:
            await self.bus_redis.aclose()
        self.executor.shutdown(wait=True)
        self.stopped = True

    async def abort(self) -> None:
        """Drop everything the way a killed process would (no offline marking, presence left in Redis, the
        heartbeat left to expire); the reaper then cleans up after this gateway. For crash tests, and for a
        second Ctrl-C."""
        self.stopping = self.aborted = True
        for task in self.tasks:
            task.cancel()
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.reason = "gateway aborted"
                conn.state = "closed"
                conn.transport.abort()
        self.sessions.clear()
        await cancel_and_wait(self.tasks)
        await self.pubsub.aclose()
        await self.redis.aclose()
        if self.bus_redis is not None:
            await self.bus_redis.aclose()
        self.executor.shutdown(wait=False)
        self.stopped = True

    async def _heartbeat_once(self) -> None:
        await self.redis.set(presence.alive_key(self.id), str(int(time.time())),
                             ex=max(3, int(_setting("GATEWAY_HEARTBEAT_TTL", 15))))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(max(1.0, _setting("GATEWAY_HEARTBEAT_TTL", 15) / 3))
            raise_if_cancelled()
            try:
                await self._heartbeat_once()
            except Exception:
                log.exception("gateway %s: heartbeat failed", self.id)

    async def _housekeeping(self) -> None:
        last_flush = last_reap = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            raise_if_cancelled()
            now = time.monotonic()
            try:
                self._sweep(now)
                if now - last_flush >= self.flush_seconds:
                    last_flush = now
                    await self._flush_heard()
                if now - last_reap >= 10.0:
                    last_reap = now
                    await self.loop.run_in_executor(self.executor, in_thread(liveness.gateways_reap))
            except Exception:
                log.exception("gateway %s: housekeeping failed", self.id)

    def _sweep(self, now: float) -> None:
        for conn in list(self.connections):
            if conn.session is None:
                if conn.state in ("nonce", "key") and now - conn.started > self.handshake_timeout:
                    conn.close(f"handshake: nothing for {self.handshake_timeout:.0f} s")
            elif now - conn.session.last_received > self.idle_timeout:
                conn.close(f"silent for {self.idle_timeout:.0f} s")

    async def _flush_heard(self) -> None:
        wall = time.time()
        mono = time.monotonic()
        heard = {}
        for device_id, s in self.sessions.items():
            if s.heard_dirty and s.state in ("online", "quarantined", "pending"):
                s.heard_dirty = False
                heard[device_id] = (wall - (mono - s.last_received), s.transport.peer_ip)
        if not heard:
            return
        rows = {d: (datetime.fromtimestamp(t, timezone.utc), ip) for d, (t, ip) in heard.items()}
        await self.loop.run_in_executor(self.executor, in_thread(liveness.devices_heard), rows)
        self.stats["heard_flushed"] += len(rows)

    # --- connections -----------------------------------------------------------------------------------------
    def admit_connection(self, conn) -> str:
        if self.stopping:
            return "gateway shutting down"
        now = time.monotonic()
        self.bucket = min(self.handshake_rate, self.bucket + (now - self.bucket_at) * self.handshake_rate)
        self.bucket_at = now
        if self.bucket < 1:
            self.stats["refused_busy"] += 1
            return f"busy: more than {self.handshake_rate:g} new connections a second"
        self.bucket -= 1
        if self.handshaking_by_ip[conn.peer_ip] >= self.max_handshakes_per_address:
            self.stats["refused_flood"] += 1
            return f"flood: {self.max_handshakes_per_address} handshakes already in progress from this address"
        self.handshaking_by_ip[conn.peer_ip] += 1
        conn.handshaking = True
        self.connections.add(conn)
        return ""

    def _handshake_over(self, conn) -> None:
        if getattr(conn, "handshaking", False):
            conn.handshaking = False
            left = self.handshaking_by_ip[conn.peer_ip] - 1
            if left > 0:
                self.handshaking_by_ip[conn.peer_ip] = left
            else:
                self.handshaking_by_ip.pop(conn.peer_ip, None)

    def handshake_done(self, conn) -> None:
        self._handshake_over(conn)
        self.stats["handshakes"] += 1

    def connection_closed(self, conn) -> None:
        self._handshake_over(conn)
        self.connections.discard(conn)

    async def device_key(self, device_id: str) -> bytes | None:
        return await self.keys.submit(device_id)

    # --- sessions --------------------------------------------------------------------------------------------
    def hello(self, session: Session) -> None:
        """The device said Hello: take its presence, then let onboarding decide."""
        old = self.sessions.get(session.device_id)
        if old is not None and old is not session:
            old.transport.close("replaced by a newer connection of the same device")
        self.sessions[session.device_id] = session
        self.loop.create_task(self._open(session))

    async def _open(self, session: Session) -> None:
        hello = sessions.Hello(device_id=session.device_id, gateway=self.id, session=session.session_id,
                               product_id=session.product_id, firmware_version=session.firmware_version,
                               platform_id=session.platform_id, flags=session.flags,
                               ip_address=session.transport.peer_ip)
        try:
            verdict = await self.opens.submit(hello)
        except Exception:
            session.transport.close("onboarding is unavailable")
            return
        session.verdict_known = True
        self.apply_verdict(session, verdict.outcome, verdict.reason)
        code, session.early_claim_code = session.early_claim_code, None
        if code is not None and not session.closed:
            self.claims.submit((session.device_id, code), want_result=False)

    def apply_verdict(self, session: Session, outcome: str, reason: str = "") -> None:
        if session.closed:
            return
        if outcome == "refused":
            self.stats["refused"] += 1
            session.transport.close(f"refused: {reason or 'not allowed'}")
        elif outcome == "online":
            if session.state != "online":
                session.state = "online"
                self.stats["online"] += 1
                early, session.early_events = session.early_events, []
                for event in early:
                    self.device_event(session, *event)
                if any(not prefix.startswith(CLOUD_PREFIXES) for prefix, _ in session.subscriptions):
                    self.subscription_added(session)
                # Devices that describe themselves do so right after the Hello; ask the others.
                if not session.describe.known:
                    self.loop.call_later(2.0, session.ask_describe)
        elif outcome == "quarantined":
            session.state = "quarantined"
            session.early_events = []
        elif outcome == "pending":
            session.state = "pending"

    def session_gone(self, session: Session) -> None:
        if self.sessions.get(session.device_id) is session:
            del self.sessions[session.device_id]
        for audience in session.audiences:
            members = self.subscribed.get(audience)
            if members is not None:
                members.discard(session)
                if not members:
                    del self.subscribed[audience]
        if session.state == "hello" or self.aborted:
            return
        last = time.time() - (time.monotonic() - session.last_received)
        self.closes.submit((session.device_id, session.session_id, datetime.fromtimestamp(last, timezone.utc),
                            session.transport.peer_ip), want_result=False)

    def describe(self, session: Session, describe: Describe | None, system_version: str | None) -> None:
        self.describes.submit(liveness.Described(
            session.device_id, describe.functions if describe else None,
            describe.variables if describe else None, system_version), want_result=False)

    def device_event(self, session: Session, name: str, data: str, ttl: int, public: bool) -> None:
        if name == "spark/device/claim/code":
            if not session.verdict_known:
                session.early_claim_code = data  # the claims batch must not overtake the Hello's (_open)
            else:
                self.claims.submit((session.device_id, data), want_result=False)
            return
        system = name.startswith(SYSTEM_EVENTS_FROM_DEVICE)
        if name.startswith(("spark", "particle")) and not system:
            return  # names starting with "spark" belong to the cloud
        if session.state == "pending":
            # The connect-time events arrive in the milliseconds before onboarding's verdict: hold a few,
            # publish them if the device comes online.
            if len(session.early_events) < 16:
                session.early_events.append((name, data, ttl, public))
            return
        if session.state != "online":
            return
        if name == "spark/device/safemode":
            self.describes.submit(liveness.Described(session.device_id, None, None, None, safe_mode=True),
                                  want_result=False)
            self.events.submit(events.event_make(device_id=session.device_id, name="spark/status/safe-mode",
                                                 data=data), want_result=False)
        self.stats["events"] += 1
        self.events.submit(events.event_make(device_id=session.device_id, name=name, data=data, ttl=ttl,
                                             public=public), want_result=False)

    # --- device subscriptions -------------------------------------------------------------------------------
    def subscription_added(self, session: Session) -> None:
        """An online session subscribed: learn where its device belongs (once per connection), then feed it."""
        if session.state != "online" or session.routing or session.audiences:
            return
        session.routing = True
        self.loop.create_task(self._route(session))

    async def _route(self, session: Session) -> None:
        try:
            route = await self.routes.submit(session.device_id)
        except Exception:
            log.exception("device %s: where its subscriptions reach could not be read", session.device_id)
            session.routing = False
            return
        if session.closed or self.sessions.get(session.device_id) is not session:
            return
        await self._follow_bus()
        if session.closed or self.sessions.get(session.device_id) is not session:
            return
        session.route = route
        session.audiences = events.audiences_of(route.user_id, route.customer_id, route.product_id, None)
        for audience in session.audiences:
            self.subscribed[audience].add(session)

    async def _follow_bus(self) -> None:
        """Start the reader of the bus (once), from its newest entry: every event published after this returns
        reaches the sessions subscribed by then."""
        async with self.bus_lock:
            if self.bus_task is None and not self.stopping:
                last = await events.bus_newest(self.redis)
                if self.stopping:  # stop() began during that read and has taken its list of tasks to end
                    return
                # Its own connection, so the blocking XREAD never waits for or holds up the shared pool.
                self.bus_redis = aioredis.Redis.from_url(settings.REDIS_URL)
                self.bus_last = last
                self.bus_task = self.loop.create_task(self._bus())
                self.tasks.append(self.bus_task)

    async def _bus(self) -> None:
        async for batch in events.bus_follow(self.bus_redis, self.bus_last, f"gateway {self.id}"):
            self.bus_last = batch[-1].id
            counted: dict[Session, int] = defaultdict(int)
            if self.subscribed:
                for event in batch:
                    self._deliver(event, counted)
            if counted:
                await self._count_deliveries(counted)

    def _deliver(self, event: events.BusEvent, counted: dict) -> None:
        """Send `event` to each subscribed session it reaches: a device receives its owner's (or customer's)
        events, and the product's events that were not published by a device (the API's, the integrations').
        The cloud's own events (`spark*`, `particle*`) reach devices as commands, never from here."""
        if event.name.startswith(CLOUD_PREFIXES):
            return
        reached: set[Session] = set()
        for audience in event.audiences:
            if audience.startswith("o:") or (audience.startswith("p:") and event.origin == "device"):
                continue
            reached |= self.subscribed.get(audience, set())
        for session in reached:
            if session.closed or session.state != "online":
                continue
            if any(event.name.startswith(prefix) for prefix, _ in session.subscriptions):
                if session.send_event(event.name, event.data):
                    self.stats["subscription_deliveries"] += 1
                    counted[session] += events.delivered_operations(event.name, event.data)

    async def _count_deliveries(self, counted: dict) -> None:
        day = metering.today()
        pipe = self.redis.pipeline(transaction=False)
        for session, ops in counted.items():
            if ops and session.route is not None:
                for name in metering.fields(day, device_id=session.device_id, product_id=session.route.product_id,
                                            account_id=session.route.account_id):
                    pipe.hincrby(metering.pending_key(), name, ops)
        try:
            await pipe.execute()
        except Exception as exc:
            log.warning("gateway %s: counting subscription deliveries failed: %s", self.id, exc)

    @staticmethod
    def _claim_codes(items: list[tuple[str, str]]) -> None:
        for device_id, code in items:
            sessions.claim_code_presented(device_id, code)

    def goodbye(self, session: Session, payload: bytes) -> None:
        session.transport.close("the device said goodbye")

    # --- commands from web processes and workers -------------------------------------------------------------
    async def _commands(self) -> None:
        async for message in self.pubsub.listen():
            raise_if_cancelled()
            try:
                command = json.loads(message["data"])
                self._command(command)
            except Exception:
                log.exception("gateway %s: bad command %r", self.id, message.get("data"))

    def _command(self, command: dict) -> None:
        op, args = command.get("op"), command.get("args") or {}
        session = self.sessions.get(command.get("device", ""))
        if session is not None and session.session_id != command.get("session"):
            session = None
        if op == "admit":
            if session is not None:
                self.apply_verdict(session, args.get("outcome", ""), args.get("reason", ""))
        elif op == "close":
            if session is not None:
                session.transport.close(args.get("reason") or "closed by the cloud")
        elif op == "event":
            if session is not None and session.state == "online":
                session.send_event(str(args.get("name", "")), str(args.get("data", "")))
        elif command.get("reply"):
            self.loop.create_task(self._answer(session, command))

    async def _answer(self, session: Session | None, command: dict) -> None:
        timeout = max(0.0, float(command.get("deadline", time.time() + 30)) - time.time())
        if session is None:
            answer = {"ok": False, "error": "offline"}
        else:
            answer = await session.call(command["op"], command.get("args") or {}, timeout)
        key = presence.reply_key(command["reply"])
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps(answer))
            pipe.expire(key, presence.REPLY_TTL)
            await pipe.execute()


__all__ = ["Hub", "NO_FIRMWARE"]
