"""The event bus: the one door every event enters by (DESIGN.md §4 "Events").

Everything that makes an event calls `events_publish`: the gateway (what a device sends, and the cloud's own
`spark/status`), onboarding, the publish API, and the integrations (their `hook-*` events). One call takes a
batch and, in one Redis script:

- gives each event its id, the id of its entry in the bus stream (`<ms>-<seq>`, increasing);
- appends it to the bus stream (`<p>:ev`, capped at `EVENTS_BUS_LENGTH`), which every web process (SSE
  fan-out, devices/streams.py) and every gateway (device subscriptions) reads with one blocking XREAD;
- appends it, under the same id, to the replay stream of each audience it goes to (`<p>:ev:u:<user>`,
  `:c:<customer>`, `:p:<product>`, `:o:<org>`; capped at `EVENTS_REPLAY_LENGTH`, expiring after
  `EVENTS_REPLAY_SECONDS` without events), so a stream that reconnects with `Last-Event-ID` reads what it
  missed from its own audience only;
- keeps it in the device's recent history (the device page);
- counts its data operations (billing/metering.py) in the same atomic step, so a counted event is a
  published one and the other way round.

Then the registered consumers (`register_consumer`; the integrations' matcher) see the batch with its ids and
write their durable work before `events_publish` returns. An event is published once `events_publish` has
returned; a process killed inside it may leave an event on the streams whose deliveries were never written
(the window between two statements), never the other way round.

Who sees what (seed 002, "Events"): a device's event goes to its owner's stream if it is claimed (a customer's
stream for a customer's device), to its product's stream if it is in one, and to the product's organization
stream; an API event to the stream of the token's user (or customer), or to the product's; an integration's
`hook-*` events to the streams of the event that triggered them.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable

from django.conf import settings

from billing import metering
from devices import presence
from devices.identifiers import is_device_id

log = logging.getLogger("cyan.events")

HISTORY = 100  # events kept per device
CLOUD = "particle-internal"  # the coreid Particle gives events the cloud makes about itself
API = "api"  # the coreid of an event published through the API (not as a device)
ONCE_TTL = 86400


@dataclass(frozen=True)
class DeviceEvent:
    """An event on its way into the bus. `origin` is "device" (a device published it, or the cloud speaks
    for one: `spark/status`), "api" or "cloud" (integrations). A device's event is routed from its device
    row when it enters the bus; the others carry their audience (`product_id`, `user_id`, `customer_id`)."""

    name: str
    data: str
    coreid: str
    published_at: str
    ttl: int = 60
    public: bool = False
    product_id: int | None = None
    user_id: int | None = None
    customer_id: int | None = None
    hook: bool = False
    origin: str = "device"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


@dataclass(frozen=True)
class BusEvent:
    """An event after it entered the bus: its id and the audiences it went to."""

    id: str
    name: str
    data: str
    coreid: str
    published_at: str
    ttl: int
    product_id: int | None
    user_id: int | None
    customer_id: int | None
    org_id: int | None
    hook: bool
    origin: str

    @property
    def audiences(self) -> tuple[str, ...]:
        return audiences_of(self.user_id, self.customer_id, self.product_id, self.org_id)

    def wire(self) -> dict:
        """The event as Particle's streams send it (particle-api.md §13)."""
        out = {"data": self.data, "ttl": self.ttl, "published_at": self.published_at, "coreid": self.coreid}
        if self.product_id is not None:
            out["productID"] = self.product_id
        return out


def audiences_of(user_id, customer_id, product_id, org_id) -> tuple[str, ...]:
    out = []
    if user_id is not None:
        out.append(f"u:{user_id}")
    if customer_id is not None:
        out.append(f"c:{customer_id}")
    if product_id is not None:
        out.append(f"p:{product_id}")
    if org_id is not None:
        out.append(f"o:{org_id}")
    return tuple(out)


_consumers: list[Callable[[list[BusEvent]], None]] = []


def register_consumer(fn: Callable[[list[BusEvent]], None]) -> None:
    """`fn(events)` runs in the publishing process after the events entered the bus and before
    `events_publish` returns: it writes its durable work (one bulk statement per batch) and enqueues after
    commit. An app above `devices/` registers it in its `AppConfig.ready()`."""
    if fn not in _consumers:
        _consumers.append(fn)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _prefix() -> str:
    return presence.prefix()


def history_key(device_id: str) -> str:
    return f"{_prefix()}:events:{device_id}"


def bus_key() -> str:
    return f"{_prefix()}:ev"


def replay_key(audience: str) -> str:
    return f"{_prefix()}:ev:{audience}"


def once_key(name: str) -> str:
    return f"{_prefix()}:once:{name}"


def event_make(*, device_id: str, name: str, data: str = "", ttl: int = 60, public: bool = False,
               product_id: int | None = None, user_id: int | None = None, customer_id: int | None = None,
               hook: bool = False, origin: str | None = None, published_at: str | None = None) -> DeviceEvent:
    if origin is None:
        origin = "cloud" if hook else ("device" if is_device_id(device_id) else "api")
    return DeviceEvent(name=name, data=data or "", coreid=device_id, published_at=published_at or now_iso(),
                       ttl=ttl, public=public, product_id=product_id, user_id=user_id, customer_id=customer_id,
                       hook=hook, origin=origin)


# --- routing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    product_id: int | None
    user_id: int | None
    customer_id: int | None
    org_id: int | None
    account_id: int | None  # whose data operations they are (the product's account, or the owner's sandbox)


def device_routes(device_ids) -> dict[str, Route]:
    """Where each device's events go (and whose data operations they are), from the device rows: one query.
    Devices in no row are left out."""
    from console.models import Account
    from devices.models import Device
    from django.db.models import OuterRef, Subquery

    if not device_ids:
        return {}
    sandbox = Account.objects.filter(owner=OuterRef("owner_id"), kind=Account.Kind.SANDBOX).values("pk")[:1]
    rows = (Device.objects.filter(pk__in=list(device_ids))
            .annotate(sandbox_id=Subquery(sandbox))
            .values_list("id", "product_id", "owner_id", "customer_id", "product__account_id",
                         "product__account__kind", "sandbox_id", "quarantined", "denied"))
    out = {}
    for pk, product_id, owner_id, customer_id, account_id, kind, sandbox_id, quarantined, denied in rows:
        member = product_id if product_id is not None and not quarantined and not denied else None
        out[pk] = Route(
            product_id=member, user_id=owner_id, customer_id=customer_id,
            org_id=account_id if member is not None and kind == Account.Kind.ORGANIZATION else None,
            account_id=account_id if member is not None else sandbox_id)
    return out


NOWHERE = Route(None, None, None, None, None)


def _routes(events: list[DeviceEvent]) -> list[Route]:
    """Each event's audience, with one query for the devices' events and one for the others' products."""
    from console.models import Account
    from products.models import Product

    by_device = device_routes({e.coreid for e in events if e.origin == "device"})
    product_ids = {e.product_id for e in events if e.origin != "device" and e.product_id is not None}
    products: dict[int, tuple[int, str]] = {}
    if product_ids:
        products = {pk: (account_id, kind) for pk, account_id, kind in Product.objects.filter(
            pk__in=product_ids).values_list("id", "account_id", "account__kind")}
    out = []
    for e in events:
        if e.origin == "device":
            out.append(by_device.get(e.coreid, NOWHERE))
            continue
        account_id, kind = products.get(e.product_id, (None, None)) if e.product_id is not None else (None, None)
        out.append(Route(product_id=e.product_id, user_id=e.user_id, customer_id=e.customer_id,
                         org_id=account_id if kind == Account.Kind.ORGANIZATION else None, account_id=account_id))
    return out


# --- the script -----------------------------------------------------------------------------------------------

# KEYS: [1] the bus stream, [2] the pending data-operation counters, then the replay, history and once keys.
# ARGV: [1] bus length, [2] replay length, [3] replay expiry (s), [4] history length, [5] once expiry (s),
# [6] the number of groups; then per group: its once-key index (0 = none) and its number of events; per event:
# the payload, the history key index (0 = none), the number of counter fields and (field, n) pairs, the
# number of replay keys and their indexes. A group whose once key exists is skipped: its events get "".
_PUBLISH = """
local out = {}
local a = 7
for g = 1, tonumber(ARGV[6]) do
  local once = tonumber(ARGV[a]); local n = tonumber(ARGV[a + 1]); a = a + 2
  local skip = once > 0 and redis.call('EXISTS', KEYS[once]) == 1
  if once > 0 and not skip then redis.call('SET', KEYS[once], 1, 'EX', ARGV[5]) end
  for i = 1, n do
    local payload = ARGV[a]; local hist = tonumber(ARGV[a + 1]); local nc = tonumber(ARGV[a + 2])
    local c = a + 3
    local nr = tonumber(ARGV[c + 2 * nc])
    local r = c + 2 * nc + 1
    if skip then
      out[#out + 1] = ''
    else
      local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', payload)
      for j = 0, nr - 1 do
        local k = KEYS[tonumber(ARGV[r + j])]
        redis.pcall('XADD', k, 'MAXLEN', '~', ARGV[2], id, 'e', payload)
        redis.call('EXPIRE', k, ARGV[3])
      end
      if hist > 0 then
        redis.call('LPUSH', KEYS[hist], id .. ' ' .. payload)
        redis.call('LTRIM', KEYS[hist], 0, tonumber(ARGV[4]) - 1)
      end
      for j = 0, nc - 1 do
        redis.call('HINCRBY', KEYS[2], ARGV[c + 2 * j], ARGV[c + 2 * j + 1])
      end
      out[#out + 1] = id
    end
    a = r + nr
  end
end
return out
"""


@lru_cache(maxsize=None)
def _script(client):
    return client.register_script(_PUBLISH)


def data_operations(event: DeviceEvent) -> int:
    """What publishing `event` costs in data operations (particle-api.md §16): one per started 1024 bytes
    of a device's publish; nothing for the cloud's own `spark*`/`particle*` events, API publishes and
    integration responses (those count when a device receives them)."""
    if event.origin != "device" or event.hook or event.name.startswith(("spark", "particle")):
        return 0
    return max(1, math.ceil(len(event.data.encode()) / 1024))


def delivered_operations(name: str, data: str) -> int:
    """What delivering an event to a device that subscribed to it costs: one per started 1024 bytes; the
    cloud's control events (`spark*`, `particle*`) cost nothing."""
    if name.startswith(("spark", "particle")):
        return 0
    return max(1, math.ceil(len(data.encode()) / 1024))


def payload_of(event: DeviceEvent, route: Route) -> str:
    """An entry of the streams: the event and its audience, compact (read back by `bus_event`)."""
    body = {"n": event.name, "d": event.data, "c": event.coreid, "t": event.published_at, "l": event.ttl,
            "o": event.origin}
    for key, value in (("p", route.product_id), ("u", route.user_id), ("k", route.customer_id),
                       ("g", route.org_id)):
        if value is not None:
            body[key] = value
    if event.hook:
        body["h"] = 1
    return json.dumps(body, separators=(",", ":"))


def bus_event(event_id: str, payload: str | bytes) -> BusEvent:
    """A stream entry read back."""
    body = json.loads(payload)
    return BusEvent(id=event_id, name=body["n"], data=body["d"], coreid=body["c"], published_at=body["t"],
                    ttl=body["l"], product_id=body.get("p"), user_id=body.get("u"), customer_id=body.get("k"),
                    org_id=body.get("g"), hook=bool(body.get("h")), origin=body.get("o", "device"))


def _publish(groups: list[tuple[str | None, list[DeviceEvent]]]) -> list[list[BusEvent]]:
    """Publish groups of events in one script; each group's published events (none: its once key was set)."""
    flat = [e for _, batch in groups for e in batch]
    if not flat:
        return [[] for _ in groups]
    routes = iter(_routes(flat))
    keys: list[str] = [bus_key(), metering.pending_key()]
    index: dict[str, int] = {}

    def key(name: str) -> int:
        if name not in index:
            keys.append(name)
            index[name] = len(keys)
        return index[name]

    day = metering.today()
    argv: list = [settings.EVENTS_BUS_LENGTH, settings.EVENTS_REPLAY_LENGTH, settings.EVENTS_REPLAY_SECONDS,
                  HISTORY, ONCE_TTL, len(groups)]
    made: list[tuple[int, DeviceEvent, Route]] = []
    for g, (once, batch) in enumerate(groups):
        argv += [key(once_key(once)) if once else 0, len(batch)]
        for event in batch:
            route = next(routes)
            made.append((g, event, route))
            argv += [payload_of(event, route),
                     key(history_key(event.coreid)) if is_device_id(event.coreid) else 0]
            ops = data_operations(event)
            fields = metering.fields(day, device_id=event.coreid, product_id=route.product_id,
                                     account_id=route.account_id) if ops else []
            argv.append(len(fields))
            for f in fields:
                argv += [f, ops]
            audiences = audiences_of(route.user_id, route.customer_id, route.product_id, route.org_id)
            argv.append(len(audiences))
            argv += [key(replay_key(a)) for a in audiences]
    client = presence.client()
    ids = _script(client)(keys=keys, args=argv)
    out: list[list[BusEvent]] = [[] for _ in groups]
    for (g, event, route), raw in zip(made, ids):
        event_id = raw.decode() if isinstance(raw, bytes) else raw
        if not event_id:
            continue
        out[g].append(BusEvent(id=event_id, name=event.name, data=event.data, coreid=event.coreid,
                            published_at=event.published_at, ttl=event.ttl, product_id=route.product_id,
                            user_id=route.user_id, customer_id=route.customer_id, org_id=route.org_id,
                            hook=event.hook, origin=event.origin))
    published = [e for group in out for e in group]
    if published:
        for consumer in _consumers:
            consumer(published)
    return out


def events_publish(events: list[DeviceEvent]) -> list[BusEvent]:
    """Publish events, in order: one query to route them, one Redis script, then the consumers."""
    return _publish([(None, list(events))])[0] if events else []


def events_publish_once(batches: dict[str, list[DeviceEvent]]) -> int:
    """Publish each batch of events unless a batch of that name was published before (within a day): a
    durable task that announces what it decided (onboarding's `spark/status` online) and may be run again
    after a crash publishes each announcement once. The check, the events and the "published" marker are one
    Redis script, so two runs at once (a slow run and its requeued twin) cannot both see "not yet", and a
    process killed around it leaves both or neither. Returns how many batches went out."""
    if not batches:
        return 0
    published = _publish([(name, batch) for name, batch in batches.items()])
    return sum(1 for group in published if group)


def event_publish(**kwargs) -> BusEvent | None:
    published = events_publish([event_make(**kwargs)])
    return published[0] if published else None


async def bus_follow(client, after: str, who: str):
    """Read the bus after the entry `after`, forever: yields each batch read, as BusEvents in order. A read
    that fails (Redis restarting) is logged and tried again a second later, from the same place. Blocks 2 s at
    a time: redis-py 8 gives connections a 5 s socket timeout by default."""
    import asyncio

    from devices.aio import raise_if_cancelled

    key = bus_key()
    while True:
        try:
            got = await client.xread({key: after}, block=2000, count=1000)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise_if_cancelled()
            log.warning("%s: reading the event bus failed (%s); retrying in 1 s", who, exc)
            await asyncio.sleep(1)
            continue
        raise_if_cancelled()  # redis-py can swallow a cancel (devices/aio.py)
        for _, entries in got or ():
            batch = [bus_event(raw_id.decode(), fields[b"e"]) for raw_id, fields in entries]
            if batch:
                after = batch[-1].id
                yield batch


async def bus_newest(client) -> str:
    """The id of the bus's newest entry ("0-0" when it is empty): where a new reader starts."""
    newest = await client.xrevrange(bus_key(), count=1)
    return newest[0][0].decode() if newest else "0-0"


def device_events_recent(device_id: str, limit: int = 50) -> list[dict]:
    """The device's latest events, newest first, in the streams' shape plus `name` and `id`."""
    out = []
    for raw in presence.client().lrange(history_key(device_id), 0, max(0, limit - 1)):
        event_id, _, payload = raw.decode().partition(" ")
        bus = bus_event(event_id, payload)
        out.append({"id": bus.id, "name": bus.name, **bus.wire()})
    return out
