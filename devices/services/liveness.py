"""What the gateway learns about connected devices, written to the rows in batches, and the reaper that
makes the devices of a gateway that died go offline.

`last_heard` is never written per message: each gateway keeps it in memory and flushes the devices heard
since the last flush every GATEWAY_FLUSH_SECONDS (docs/device-protocol.md "State without a write per ping")
to the rows here, in one statement per thousand devices. So the device list and the
device page show `last_heard` at most one flush interval old; `online` changes are written as they happen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from devices import presence
from devices.models import Device

log = logging.getLogger("devices.gateway")

BATCH = 1000

# KEYS[1] = the presence hash; ARGV[1] = a gateway id, ARGV[2..] = device ids. Removes the devices whose
# location is still on that gateway and returns them.
_RELEASE_GATEWAY = """
local out = {}
local prefix = ARGV[1] .. ' '
for i = 2, #ARGV do
  local where = redis.call('HGET', KEYS[1], ARGV[i])
  if where and string.sub(where, 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], ARGV[i])
    table.insert(out, ARGV[i])
  end
end
return out
"""


def lock_devices_in_order(device_ids) -> None:
    """Take the device rows' locks in id order, inside the caller's transaction. Every writer of many device
    rows at once (the gateway's batches, the onboarding worker) does this first, so two of them can never hold
    a lock the other waits for — without it, two gateways and two workers deadlocked on PostgreSQL within
    seconds of 10,000 devices connecting (bench/gateway.py)."""
    ids = sorted(set(device_ids))
    if ids and connection.vendor == "postgresql" and connection.in_atomic_block:
        # One array parameter, not a thousand placeholders: psycopg re-parses a query of that size each time
        # (a tenth of a gateway's CPU while idle). The same ORDER BY as every other locker.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Device._meta.db_table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                           [ids])


def devices_heard(heard: dict[str, tuple[datetime, str | None]]) -> int:
    """Write last_heard (and the address it came from) for many devices: one UPDATE per thousand."""
    if not heard:
        return 0
    items = sorted(heard.items())
    table = Device._meta.db_table
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        with transaction.atomic(), connection.cursor() as cursor:
            lock_devices_in_order([d for d, _ in chunk])
            if connection.vendor == "postgresql":
                # Three array parameters whatever the batch size: a VALUES list of 3,000 placeholders cost
                # psycopg more to parse than PostgreSQL to run (16% of an idle gateway's CPU).
                cursor.execute(
                    f"UPDATE {table} AS d SET last_heard = v.at, last_ip_address = COALESCE(v.ip, d.last_ip_address)"
                    f" FROM unnest(%s::text[], %s::timestamptz[], %s::inet[]) AS v(id, at, ip)"
                    f" WHERE d.id = v.id COLLATE \"C\" AND (d.last_heard IS NULL OR d.last_heard < v.at)",
                    [[d for d, _ in chunk], [at for _, (at, _) in chunk], [ip for _, (_, ip) in chunk]])
            else:
                cursor.executemany(
                    f"UPDATE {table} SET last_heard = %s, last_ip_address = COALESCE(%s, last_ip_address)"
                    f" WHERE id = %s AND (last_heard IS NULL OR last_heard < %s)",
                    [(at, ip, d, at) for d, (at, ip) in chunk])
    return len(items)


@dataclass(frozen=True)
class Described:
    """What a device said about itself: its functions and variables (the application describe), its Device OS
    version (the system describe), or that it runs in safe mode."""

    device_id: str
    functions: list[str] | None
    variables: dict[str, str] | None
    system_firmware_version: str | None
    safe_mode: bool = False


def describes_received(items: list[Described]) -> None:
    """Write what devices said about themselves. A fleet runs the same firmware, so the batch is grouped by what
    was said and each group is one UPDATE (a statement per device took a quarter of a gateway's time while
    10,000 devices connected). Each group takes its rows' locks in id order, as every multi-row writer does."""
    groups: dict[str, tuple[dict, list[str]]] = {}
    for item in items:
        fields: dict = {}
        if item.functions is not None:
            fields["functions"] = item.functions
        if item.variables is not None:
            fields["variables"] = item.variables
        if item.system_firmware_version:
            fields["system_firmware_version"] = item.system_firmware_version[:32]
        if item.safe_mode:
            fields["status"] = Device.Status.SAFE_MODE
        elif item.functions is not None:
            fields["status"] = Device.Status.NORMAL  # an application describe: the app runs
        if fields:
            key = json.dumps(fields, sort_keys=True)
            groups.setdefault(key, (fields, []))[1].append(item.device_id)
    for fields, device_ids in groups.values():
        for start in range(0, len(device_ids), BATCH):
            chunk = sorted(device_ids[start:start + BATCH])
            with transaction.atomic():
                lock_devices_in_order(chunk)
                Device.objects.filter(pk__in=chunk).update(**fields)


def gateway_release(gateway: str) -> list[str]:
    """Forget every device still recorded on `gateway` and mark them offline (its shutdown, or its death)."""
    from devices.services import sessions

    r = presence.client()
    members = [m.decode() for m in r.smembers(presence.devices_key(gateway))]
    released: list[str] = []
    for start in range(0, len(members), BATCH):
        chunk = members[start:start + BATCH]
        released += [d.decode() for d in r.eval(_RELEASE_GATEWAY, 1, presence.where_key(), gateway, *chunk)]
    r.delete(presence.devices_key(gateway))
    r.srem(presence.all_gateways_key(), gateway)
    if released:
        sessions.sessions_closed(released)
    return released


def gateways_reap() -> int:
    """Release the devices of every registered gateway whose heartbeat has expired (it was killed, or lost its
    host). Any gateway's housekeeping and the beat task call this; a lock lets one of them do each gateway."""
    r = presence.client()
    reaped = 0
    for raw in r.smembers(presence.all_gateways_key()):
        gateway = raw.decode()
        if r.exists(presence.alive_key(gateway)):
            continue
        if not r.set(f"{presence.prefix()}:reaping:{gateway}", "1", nx=True, ex=60):
            continue
        released = gateway_release(gateway)
        log.info("gateway %s stopped answering: %d of its devices marked offline", gateway, len(released))
        reaped += len(released)
    return reaped
