"""Which products and users have a live hook at all: a Redis set the bus consumer asks first, so the publishes
of tenants without integrations (most of them, and every reconnect storm's `spark/status`) cost no query.

The set is only a filter in front of the database: an owner in it still has its hooks read from the
database, so a stale member costs one query and changes nothing. An owner missing from it would lose events,
so it is kept from going missing: every integration write (create, replace, delete, in integrations.services)
adds a live hook's owner at once and recomputes its membership from the database after commit; a set without its "built" marker (a Redis
restart, a flush) is rebuilt from the database, in one query, by the next consumer that needs it.
"""

from __future__ import annotations

from devices import presence
from integrations.models import Integration


def _key() -> str:
    return f"{presence.prefix()}:hookowners"


def _built() -> str:
    return f"{presence.prefix()}:hookowners:built"


def owner_key(*, product_id: int | None = None, user_id: int | None = None) -> str:
    return f"p:{product_id}" if product_id is not None else f"u:{user_id}"


def _rebuild(client) -> None:
    live = Integration.objects.filter(disabled=False).values_list("product_id", "user_id").distinct()
    members = {owner_key(product_id=p, user_id=u) for p, u in live}
    pipe = client.pipeline(transaction=True)
    pipe.delete(_key())
    if members:
        pipe.sadd(_key(), *members)
    pipe.set(_built(), 1)
    pipe.execute()


def owners_with_hooks(candidates: set[str]) -> set[str]:
    """Those of `candidates` ("p:<id>", "u:<id>") that may have live hooks (one round trip; a rebuild first
    when the set is missing)."""
    if not candidates:
        return set()
    ordered = sorted(candidates)
    client = presence.client()
    pipe = client.pipeline(transaction=False)
    pipe.exists(_built())
    pipe.smismember(_key(), ordered)
    built, flags = pipe.execute()
    if not built:
        _rebuild(client)
        flags = client.smismember(_key(), ordered)
    return {owner for owner, flag in zip(ordered, flags) if flag}


def owner_add(*, product_id: int | None, user_id: int | None) -> None:
    presence.client().sadd(_key(), owner_key(product_id=product_id, user_id=user_id))


def owner_refresh(*, product_id: int | None, user_id: int | None) -> None:
    """After a write to one owner's hooks: is it still an owner with a live hook?"""
    scope = {"product_id": product_id} if product_id is not None else {"user_id": user_id}
    live = Integration.objects.filter(disabled=False, **scope).exists()
    client = presence.client()
    if live:
        client.sadd(_key(), owner_key(product_id=product_id, user_id=user_id))
    else:
        client.srem(_key(), owner_key(product_id=product_id, user_id=user_id))
