"""Where each connected device is, and how web processes and workers reach it: all in Redis.

A device's connection lives in one gateway process. The gateway records it in one hash (device id →
"<gateway> <session>"), keeps an expiring heartbeat key while it runs, and holds **one** pub/sub subscription,
to its own command channel. Anything else that wants a device (an API call, an approval in the console, a
worker's onboarding decision) looks the device up here and publishes to that gateway's channel; a request
that expects an answer names a reply list, which the caller waits on with BLPOP. So any web process reaches a
device on any gateway, and N gateways can sit behind a TCP load balancer.

Keys (all under the cache's key prefix, so parallel test runs and deployments sharing a Redis stay apart;
pub/sub channel names are global to a Redis server, so they carry the prefix too):
    <p>:gw:where               HASH  device id -> "<gateway id> <session id>"
    <p>:gw:devices:<gw>        SET   the device ids that gateway holds (for the reaper)
    <p>:gw:all                 SET   every gateway id that registered
    <p>:gw:alive:<gw>          STR   that gateway's heartbeat, with a TTL
    <p>:gw:cmd:<gw>            CHAN  commands for devices on that gateway (JSON)
    <p>:gw:reply:<request>     LIST  the one answer to a request (JSON), expiring
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings

REPLY_TTL = 60


class DeviceOffline(Exception):
    """The device is not connected to any gateway (or its gateway has gone)."""


class DeviceTimedOut(Exception):
    """The device is connected but did not answer in time."""


def prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'cyan')}:gw"


def where_key() -> str:
    return f"{prefix()}:where"


def devices_key(gateway: str) -> str:
    return f"{prefix()}:devices:{gateway}"


def all_gateways_key() -> str:
    return f"{prefix()}:all"


def alive_key(gateway: str) -> str:
    return f"{prefix()}:alive:{gateway}"


def command_channel(gateway: str) -> str:
    return f"{prefix()}:cmd:{gateway}"


def reply_key(request: str) -> str:
    return f"{prefix()}:reply:{request}"


@lru_cache(maxsize=None)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=None, health_check_interval=30)


def client() -> redis.Redis:
    """The process's Redis connection pool for presence (thread-safe; each call borrows a connection)."""
    return _client(settings.REDIS_URL)


@dataclass(frozen=True)
class Location:
    gateway: str
    session: str


def device_location(device_id: str) -> Location | None:
    raw = client().hget(where_key(), device_id)
    if not raw:
        return None
    gateway, _, session = raw.decode().partition(" ")
    return Location(gateway, session)


def devices_located(device_ids: list[str]) -> dict[str, Location]:
    """Where each of `device_ids` that holds a gateway connection right now is (one round trip)."""
    if not device_ids:
        return {}
    found = client().hmget(where_key(), device_ids)
    out = {}
    for device_id, raw in zip(device_ids, found):
        if raw:
            gateway, _, session = raw.decode().partition(" ")
            out[device_id] = Location(gateway, session)
    return out


def devices_connected(device_ids: list[str]) -> set[str]:
    """Which of `device_ids` hold a gateway connection right now (one round trip)."""
    return set(devices_located(device_ids))


def command(device_id: str, where: Location, op: str, args: dict, **extra) -> str:
    """The JSON message a gateway's command channel carries for one device."""
    return json.dumps({"op": op, "device": device_id, "session": where.session, "args": args, **extra})


def device_notify(device_id: str, op: str, **args) -> bool:
    """Tell the gateway holding `device_id` to do `op` (no answer awaited): "admit" (onboarding let it in),
    "close" (deny: disconnect it), "event" (send it an event). False when the device is not connected."""
    where = device_location(device_id)
    if where is None:
        return False
    return client().publish(command_channel(where.gateway), command(device_id, where, op, args)) > 0


def devices_notify(notes: list[tuple[str, str, dict]]) -> int:
    """`device_notify` for many devices in two round trips (one HMGET, one pipeline of PUBLISH): `notes` are
    (device id, op, args). Returns how many messages a gateway received."""
    if not notes:
        return 0
    located = devices_located([device_id for device_id, _, _ in notes])
    pipe = client().pipeline(transaction=False)
    sent = 0
    for device_id, op, args in notes:
        where = located.get(device_id)
        if where is not None:
            pipe.publish(command_channel(where.gateway), command(device_id, where, op, args))
            sent += 1
    return sum(pipe.execute()) if sent else 0


# KEYS[1] the where hash; ARGV: device id, the command channel's prefix, the message after its opening brace.
# Returns -1 when the device is not located, else how many gateways received the message.
_SEND_TO_DEVICE = """
local where = redis.call('HGET', KEYS[1], ARGV[1])
if not where then return -1 end
local space = string.find(where, ' ', 1, true)
local gateway, session = string.sub(where, 1, space - 1), string.sub(where, space + 1)
return redis.call('PUBLISH', ARGV[2] .. gateway, '{"session":' .. cjson.encode(session) .. ',' .. ARGV[3])
"""


@lru_cache(maxsize=None)
def _send_to_device(r: redis.Redis):
    return r.register_script(_SEND_TO_DEVICE)  # EVALSHA, loading the script again after a Redis restart


def request_timeout() -> float:
    """Seconds a device has to answer a function call or variable read (Particle: about 30 s, then 408)."""
    return float(getattr(settings, "DEVICE_REQUEST_TIMEOUT", 30.0))


def device_request(device_id: str, op: str, *, timeout: float | None = None, **args) -> dict:
    """Ask the device `op` ("function" name/arg, "variable" name, "ping", "signal" on, "describe") through
    its gateway and wait for the answer, a dict with "ok" and the op's fields. Raises DeviceOffline at once
    when it is not connected, DeviceTimedOut after `timeout` seconds without an answer."""
    timeout = request_timeout() if timeout is None else timeout
    request = secrets.token_hex(8)
    # The message without its session: _SEND_TO_DEVICE looks the device up and sends it to its gateway in
    # the same round trip, adding the session it found (`command`'s layout, session first).
    rest = json.dumps({"op": op, "device": device_id, "args": args, "reply": request,
                       "deadline": time.time() + timeout})[1:]
    r = client()
    if _send_to_device(r)(keys=[where_key()], args=[device_id, command_channel(""), rest]) <= 0:
        # -1: it holds no connection; 0: nobody listens on its gateway's channel (the gateway is gone)
        raise DeviceOffline(device_id)
    got = r.blpop([reply_key(request)], timeout=timeout)
    if got is None:
        raise DeviceTimedOut(device_id)
    answer = json.loads(got[1])
    if answer.get("error") == "offline":
        raise DeviceOffline(device_id)
    if answer.get("error") == "timed out":
        raise DeviceTimedOut(device_id)
    return answer
