"""The recent requests and responses of each integration: the last 10 successes and the last 10 errors, in full.

Kept in Redis as two capped lists per integration (LPUSH + LTRIM, newest first), not in the database: they are
rewritten on every delivery, read only by the integration's page and `GET …/integrations/:id`, and losing them
with Redis loses nothing that matters (the deliveries and the daily counters are in the database).
"""

from __future__ import annotations

import json

from devices import presence

KEEP = 10


def _key(integration_id: str, kind: str) -> str:
    return f"{presence.prefix()}:hooklog:{integration_id}:{kind}"


def logs_record(entries: list[tuple[str, bool, dict]]) -> None:
    """Record (integration id, succeeded, entry) triples in one round trip."""
    if not entries:
        return
    pipe = presence.client().pipeline(transaction=False)
    for integration_id, ok, entry in entries:
        key = _key(integration_id, "ok" if ok else "err")
        pipe.lpush(key, json.dumps(entry, default=str))
        pipe.ltrim(key, 0, KEEP - 1)
    pipe.execute()


def logs_read(integration_id: str) -> dict[str, list[dict]]:
    pipe = presence.client().pipeline(transaction=False)
    pipe.lrange(_key(integration_id, "ok"), 0, KEEP - 1)
    pipe.lrange(_key(integration_id, "err"), 0, KEEP - 1)
    ok, err = pipe.execute()
    return {"successes": [json.loads(x) for x in ok], "errors": [json.loads(x) for x in err]}


def logs_forget(integration_id: str) -> None:
    presence.client().delete(_key(integration_id, "ok"), _key(integration_id, "err"))
