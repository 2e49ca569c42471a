"""The one internal publish function for device events (DESIGN.md §2: the bus's publish side lives here).

Everything that makes a device event calls `events_publish`: the gateway (what a device sends, and the cloud's
own `spark/status` online/offline), onboarding, and later the API's publish route. For now an event is kept
in the device's recent history (a capped Redis list, newest first) that the device page shows; the events
work (SSE streams, webhooks, data operations) extends this function rather than adding another door.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from devices import presence

HISTORY = 100  # events kept per device
CLOUD = "particle-internal"  # the coreid Particle gives events the cloud makes about itself


@dataclass(frozen=True)
class DeviceEvent:
    name: str
    data: str
    coreid: str
    published_at: str
    ttl: int = 60
    public: bool = False
    product_id: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history_key(device_id: str) -> str:
    return f"{presence.prefix()}:events:{device_id}"


def event_make(*, device_id: str, name: str, data: str = "", ttl: int = 60, public: bool = False,
               product_id: int | None = None, published_at: str | None = None) -> DeviceEvent:
    return DeviceEvent(name=name, data=data or "", coreid=device_id, published_at=published_at or now_iso(),
                       ttl=ttl, public=public, product_id=product_id)


def _push(pipe, events: list[DeviceEvent]) -> None:
    for event in events:
        key = history_key(event.coreid)
        pipe.lpush(key, json.dumps(event.as_dict()))
        pipe.ltrim(key, 0, HISTORY - 1)


def events_publish(events: list[DeviceEvent]) -> None:
    """Publish device events, in order, in one Redis round trip."""
    if not events:
        return
    pipe = presence.client().pipeline(transaction=False)
    _push(pipe, events)
    pipe.execute()


ONCE_TTL = 86400


def once_key(name: str) -> str:
    return f"{presence.prefix()}:once:{name}"


def events_publish_once(batches: dict[str, list[DeviceEvent]]) -> int:
    """Publish each batch of events unless a batch of that name was published before (within a day): a
    durable task that announces what it decided (onboarding's `spark/status` online) and may be run again
    after a crash publishes each announcement once. The events and the "published" markers go in one Redis
    transaction, so a process killed around it leaves both or neither; the markers are WATCHed from the read
    to that transaction, so two runs at once (a slow run and its requeued twin) cannot both see "not yet"
    and both publish: the later one retries and finds the marker. Returns how many batches went out."""
    if not batches:
        return 0
    names = list(batches)
    keys = [once_key(n) for n in names]

    def attempt(pipe) -> int:
        fresh = [n for n, mark in zip(names, pipe.mget(keys)) if mark is None]
        pipe.multi()
        for name in fresh:
            _push(pipe, batches[name])
            pipe.set(once_key(name), 1, ex=ONCE_TTL)
        return len(fresh)

    return presence.client().transaction(attempt, *keys, value_from_callable=True)


def event_publish(**kwargs) -> DeviceEvent:
    event = event_make(**kwargs)
    events_publish([event])
    return event


def device_events_recent(device_id: str, limit: int = 50) -> list[dict]:
    """The device's latest events, newest first."""
    return [json.loads(raw) for raw in presence.client().lrange(history_key(device_id), 0, max(0, limit - 1))]
