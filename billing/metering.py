"""Counting data operations (particle-api.md §16) as events go by, and folding the counts into the database.

The event bus (devices/events.py) adds to one Redis hash, in the same script that publishes the event, a field
per (UTC day, account | product | device) — so an event counted is an event published, whoever published it.
Every 30 s beat folds the hash into `DataOperationDay`, exactly once:

1. one script renames the hash to the folding key and stamps it with a new batch id (or, when a fold died
   before finishing, returns the batch it left there);
2. one transaction records the batch id in `FoldedCounters` and adds every count (an upsert per row); a batch
   id already recorded means that fold committed and died before step 3, so nothing is added again;
3. the folding key is deleted, if it still holds that batch.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timezone
from functools import lru_cache

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from billing.models import DataOperationDay, FoldedCounters

BATCH = "#batch"

_TAKE = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], '#batch', ARGV[1])
end
return redis.call('HGETALL', KEYS[2])
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], '#batch') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _prefix() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'cyan')}:do"


def pending_key() -> str:
    return f"{_prefix()}:pending"


def folding_key() -> str:
    return f"{_prefix()}:folding"


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def fields(day: str, *, device_id: str, product_id: int | None, account_id: int | None) -> list[str]:
    """The counter fields one device's data operations on `day` add to."""
    out = [f"{day}|d|{device_id}"]
    if product_id is not None:
        out.append(f"{day}|p|{product_id}")
    if account_id is not None:
        out.append(f"{day}|a|{account_id}")
    return out


@lru_cache(maxsize=None)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def _take() -> tuple[str, dict[str, str]] | None:
    """Step 1: the batch to fold (its id and counters): the one a dead fold left, else the pending hash."""
    raw = client().eval(_TAKE, 2, pending_key(), folding_key(), secrets.token_hex(16))
    if not raw:
        return None
    values = {k.decode(): v.decode() for k, v in zip(raw[0::2], raw[1::2])}
    return values.pop(BATCH), values


def _add(batch: str, values: dict[str, str]) -> int:
    """Step 2: add the batch's counts in one transaction with its id; 0 when that batch was added before."""
    rows = []
    for name, count in values.items():
        day, scope, ref = name.split("|", 2)
        rows.append((date.fromisoformat(day), scope, ref, int(count)))
    table = connection.ops.quote_name(DataOperationDay._meta.db_table)
    try:
        with transaction.atomic():
            FoldedCounters.objects.create(batch=batch)
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} (day, scope, ref, count) VALUES (%s, %s, %s, %s) "
                    f"ON CONFLICT (scope, ref, day) DO UPDATE SET count = {table}.count + excluded.count", rows)
    except IntegrityError:
        if not FoldedCounters.objects.filter(pk=batch).exists():
            raise
        return 0  # folded before: that fold committed and died before letting go of the batch
    return len(rows)


def _release(batch: str) -> None:
    """Step 3: let go of the batch, if the folding key still holds it."""
    client().eval(_RELEASE, 1, folding_key(), batch)


def operations_fold() -> int:
    """Fold the pending counters into the database; returns how many rows it added to."""
    taken = _take()
    if taken is None:
        return 0
    batch, values = taken
    added = _add(batch, values)
    _release(batch)
    return added
