"""Webhook delivery, at least once, under DESIGN.md's durable-work rule.

```
bus (publishing process) ──events──▶ events_consume: owners with hooks (Redis set), ONE query for their
                                     live hooks (none if no owner has any), match in Python,
                                     bulk INSERT Delivery rows (pending), ONE integrations.deliver(ids) per 200
integrations.deliver(ids) ─▶ deliveries_run(ids)
   1. UPDATE … SET state='running', claimed_at=C WHERE id IN ids AND state='pending' AND due      (the claim)
   2. build each request (mustache); hosts that are sleeping (Redis, integrations/throttle.py) are postponed
   3. send the rest at once over the process's aiohttp session; as outcomes arrive, in bulk:
      rows (guarded by claimed_at=C), daily counters, the recent-requests lists, the throttle's counts,
      then hook-sent / hook-response / hook-error through the bus (hook=True: hooks never trigger hooks)
   4. failures that may pass (timeout, network, 5xx, 408, 429) are retried with exponential backoff and
      jitter; other 4xx, a refused target or a template that cannot render go to the dead-letter state at
      once; retries that ran out too. A dead letter can be replayed (integrations.services).
beat integrations.requeue_stale: running with a claim older than INTEGRATIONS_CLAIM_STALE_SECONDS (a worker
   killed mid-request) → pending and sent again; pending and due for longer than INTEGRATIONS_REQUEUE_AFTER_SECONDS
   (a lost broker message) → sent again.
```
A delivery sent and then lost to a kill before step 3 recorded it is sent again: the receiver sees the same
`X-Cyan-Event-Id` twice, never a different id for the same event.
"""

from __future__ import annotations

import json
import logging
import math
import random
import secrets
import time
from collections import defaultdict
from datetime import timedelta

from celery import current_app
from chevron.tokenizer import ChevronError
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from devices import events as bus
from integrations import logs, owners, requests, templates, throttle
from integrations.models import Delivery, DeliveryDay, Integration
from integrations.transport import HookRequest, Outcome, send_many

log = logging.getLogger(__name__)

DELIVER_TASK = "integrations.deliver"
BATCH = 200
FLUSH_EVERY = 0.25  # seconds between recordings of a batch's outcomes
SLEEPING_TEXT = "Sleeping, too many errors, please wait and try again"
LOG_BODY = 16_384  # bytes of each request/response body kept in the recent-requests lists
EARLY = timedelta(seconds=1)  # a task may arrive this much before its rows are due (countdown rounding)


# --- the bus side ---------------------------------------------------------------------------------------


def event_fields(event) -> dict:
    """What a Delivery keeps of a bus event."""
    return {"id": event.id, "name": event.name, "data": event.data, "coreid": event.coreid,
            "published_at": event.published_at, "ttl": event.ttl, "product_id": event.product_id,
            "user_id": event.user_id, "customer_id": getattr(event, "customer_id", None)}


def hooks_matching(events, hooks: list[Integration]) -> list[tuple[object, Integration]]:
    """(event, hook) pairs: the hook is live, the event not made by a hook, the name starts with the hook's
    prefix (case-sensitive), the device filter (if any) is the event's device, and the hook is the event's
    product's or its user's sandbox hook (both fire when both match)."""
    by_product: dict[int, list[Integration]] = defaultdict(list)
    by_user: dict[int, list[Integration]] = defaultdict(list)
    for hook in hooks:
        if hook.disabled:
            continue
        if hook.product_id is not None:
            by_product[hook.product_id].append(hook)
        elif hook.user_id is not None:
            by_user[hook.user_id].append(hook)
    pairs = []
    for event in events:
        if event.hook:
            continue
        candidates = (by_product.get(event.product_id, []) if event.product_id is not None else []) + \
                     (by_user.get(event.user_id, []) if event.user_id is not None else [])
        for hook in candidates:
            if event.name.startswith(hook.event) and (not hook.device_id or hook.device_id == event.coreid):
                pairs.append((event, hook))
    return pairs


def events_consume(events) -> list[int]:
    """The bus consumer: write the deliveries the events owe and enqueue their batches after commit.
    One query finds every live hook of the batch's products and users that have any (integrations/owners.py:
    a Redis set refreshed after every integration write); a batch of owners without hooks costs no query."""
    wanted = [e for e in events if not e.hook and (e.product_id is not None or e.user_id is not None)]
    if not wanted:
        return []
    # Most publishers have no hook at all: a Redis set says which owners do (integrations/owners.py), and
    # only those are looked up in the database.
    have = owners.owners_with_hooks({owners.owner_key(product_id=e.product_id) for e in wanted if e.product_id is not None}
                                    | {owners.owner_key(user_id=e.user_id) for e in wanted if e.user_id is not None})
    products = {e.product_id for e in wanted if e.product_id is not None and f"p:{e.product_id}" in have}
    users = {e.user_id for e in wanted if e.user_id is not None and f"u:{e.user_id}" in have}
    if not products and not users:
        return []
    hooks = list(Integration.objects.filter(disabled=False)
                 .filter(Q(product_id__in=products) | Q(user_id__in=users))
                 .only("id", "product_id", "user_id", "event", "device_id", "disabled"))
    if not hooks:
        return []
    pairs = hooks_matching(wanted, hooks)
    if not pairs:
        return []
    with transaction.atomic():
        ids = _insert(pairs, timezone.now())
        _enqueue(ids)
    return ids


# On PostgreSQL the batch's deliveries go in as one JSON document expanded by the server: Django's
# bulk_create binds every column of every row on the client (arrays, here), which cost the gateway 0.15-0.24 ms
# of CPU per event; this costs 0.04-0.07 ms. The same events handed over twice keep one delivery per
# (hook, event) either way; the second hand-over returns only what it made (the first one's rows were
# enqueued by the first one, or are found by the beat's requeue).
INSERT_SQL = (
    "INSERT INTO integrations_delivery (integration_id, event_id, event, state, attempts, sleeps, next_attempt_at, "
    "last_error, test, created_at) SELECT r.h, r.e, r.v, %s, 0, 0, %s, '', false, %s "
    "FROM json_to_recordset(%s::json) AS r(h text, e text, v jsonb) "
    "ON CONFLICT (integration_id, event_id) DO NOTHING RETURNING id")


def _insert(pairs, now) -> list[int]:
    if connection.vendor == "postgresql":
        doc = json.dumps([{"h": hook.id, "e": event.id, "v": event_fields(event)} for event, hook in pairs],
                         separators=(",", ":"))
        with connection.cursor() as cursor:
            cursor.execute(INSERT_SQL, [Delivery.State.PENDING, now, now, doc])
            return [row[0] for row in cursor.fetchall()]
    rows = [Delivery(integration_id=hook.id, event_id=event.id, event=event_fields(event), next_attempt_at=now)
            for event, hook in pairs]
    try:
        with transaction.atomic():
            return [row.pk for row in Delivery.objects.bulk_create(rows)]
    except IntegrityError:  # the same events handed over twice
        made = []
        for r in rows:
            row, created = Delivery.objects.get_or_create(integration_id=r.integration_id, event_id=r.event_id,
                                                          defaults={"event": r.event, "next_attempt_at": now})
            if created:
                made.append(row.pk)
        return made


def _enqueue(ids: list[int], countdown: float = 0) -> None:
    for start in range(0, len(ids), BATCH):
        part = ids[start:start + BATCH]
        if countdown > 0:
            transaction.on_commit(lambda part=part: current_app.send_task(
                DELIVER_TASK, kwargs={"ids": part}, countdown=countdown))
        else:
            transaction.on_commit(lambda part=part: current_app.send_task(DELIVER_TASK, kwargs={"ids": part}))


# --- the worker side ------------------------------------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential, capped, with "equal jitter"
    (half fixed, half random) so that a receiver's failed burst does not come back as one burst."""
    base = min(settings.INTEGRATIONS_RETRY_MAX_SECONDS,
               settings.INTEGRATIONS_RETRY_BASE_SECONDS * (2 ** max(0, attempts - 1)))
    return base / 2 + random.uniform(0, base / 2)


def is_transient(outcome: Outcome) -> bool:
    if outcome.status is None:
        return outcome.kind in ("timeout", "network")
    return outcome.status >= 500 or outcome.status in (408, 429)


def _error_text(req: HookRequest, outcome: Outcome) -> str:
    if outcome.status is not None:
        return f"error status {outcome.status} from {req.host}"
    if outcome.kind == "refused":
        return outcome.error
    return f"{outcome.error} from {req.host}"


def _log_entry(row: Delivery, req: HookRequest, outcome: Outcome | None, error: str, at: str) -> dict:
    entry = {"time": at, "delivery_id": row.pk, "event_id": row.event_id,
             "event": row.event.get("name"), "attempt": row.attempts,
             "request": {"method": req.method, "url": req.url, "headers": req.headers,
                         "body": req.body[:LOG_BODY].decode("utf-8", errors="replace")},
             "error": error or None, "response": None}
    if outcome is not None and outcome.status is not None:
        entry["response"] = {"status": outcome.status, "headers": outcome.headers,
                             "body": outcome.body[:LOG_BODY].decode("utf-8", errors="replace"),
                             "elapsed_ms": outcome.elapsed_ms}
    return entry


def _hook_event(row: Delivery, name: str, data: str):
    """A hook-* event to the audiences of the event that triggered it, from the cloud (coreid
    `particle-internal`, particle-api.md §13), marked hook=True so that it never triggers a hook."""
    event = row.event
    return bus.event_make(device_id=bus.CLOUD, name=name, data=data, product_id=event.get("product_id"),
                          user_id=event.get("user_id"), customer_id=event.get("customer_id"), hook=True)


def _publish(made: list) -> None:
    if made:
        try:
            bus.events_publish(made)
        except Exception:  # noqa: BLE001 - the deliveries are recorded; a lost announcement must not undo them
            log.exception("publishing hook events failed")


OUTCOME_FIELDS = ("state", "attempts", "sleeps", "next_attempt_at", "claimed_at", "finished_at", "last_status",
                  "last_error")


class _Round:
    """The outcomes of one claimed batch, recorded in bulk as they arrive."""

    def __init__(self, claim):
        self.claim = claim
        self.now = timezone.now()  # one finish time per flush: rows that ended alike are written by one UPDATE
        self.days: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.logs: dict[tuple[str, bool], list[tuple]] = defaultdict(list)
        self.hosts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.events: list = []
        self.changed: list[Delivery] = []
        self.retry: list[Delivery] = []

    def finish(self, row: Delivery, *, state: str, status: int | None = None, error: str = "") -> None:
        row.state, row.last_status, row.last_error = state, status, error[:500]
        row.claimed_at = None
        if state in (Delivery.State.DELIVERED, Delivery.State.DEAD):
            row.finished_at = self.now
        self.changed.append(row)

    def log(self, hook_id: str, ok: bool, row: Delivery, req: HookRequest, outcome: Outcome | None,
            error: str) -> None:
        self.logs[(hook_id, ok)].append((row, req, outcome, error, bus.now_iso()))

    def failed(self, row: Delivery, *, status: int | None, error: str, transient: bool) -> None:
        if transient and row.attempts < settings.INTEGRATIONS_MAX_ATTEMPTS:
            row.next_attempt_at = timezone.now() + timedelta(seconds=retry_delay(row.attempts))
            self.finish(row, state=Delivery.State.PENDING, status=status, error=error)
            self.retry.append(row)
        else:
            self.finish(row, state=Delivery.State.DEAD, status=status, error=error)

    def flush(self) -> None:
        if self.changed:
            with transaction.atomic():
                # Guarded by the claim: a run whose rows went stale and were handed to another run writes nothing.
                # Rows that ended alike (most of a batch: delivered, 200, first attempt) share one UPDATE;
                # Django's bulk_update (a CASE per field and row) was 57% of a worker's time here.
                alike: dict[tuple, list[int]] = defaultdict(list)
                for row in self.changed:
                    alike[tuple(getattr(row, f) for f in OUTCOME_FIELDS)].append(row.pk)
                for values, ids in alike.items():
                    (Delivery.objects.filter(pk__in=ids, state=Delivery.State.RUNNING, claimed_at=self.claim)
                     .update(**dict(zip(OUTCOME_FIELDS, values))))
                _count_days(self.days)
                by_second: dict[int, list[int]] = defaultdict(list)
                now = time.time()
                for row in self.retry:
                    by_second[math.ceil(row.next_attempt_at.timestamp())].append(row.pk)
                for second, ids in by_second.items():
                    _enqueue(ids, countdown=max(0.0, second - now))
        # Only the newest logs.KEEP of each hook's successes and errors are kept: the others are never built.
        logs.logs_record([(hook_id, ok, _log_entry(*made)) for (hook_id, ok), entries in self.logs.items()
                          for made in entries[-logs.KEEP:]])
        throttle.hosts_record({h: (ok, err) for h, (ok, err) in self.hosts.items()})
        _publish(self.events)
        self.__init__(self.claim)


def _count_days(days: dict[str, list[int]]) -> None:
    today = timezone.now().date()
    # A hook deleted while its deliveries were in flight has no row to count against (on PostgreSQL the
    # foreign key would fail the whole flush at commit).
    alive = set(Integration.objects.filter(pk__in=list(days)).values_list("pk", flat=True)) if days else set()
    for integration_id, (success, failure, sleep) in days.items():
        if integration_id not in alive:
            continue
        updated = DeliveryDay.objects.filter(integration_id=integration_id, day=today).update(
            success=F("success") + success, failure=F("failure") + failure, sleep=F("sleep") + sleep)
        if not updated:
            try:
                with transaction.atomic():
                    DeliveryDay.objects.create(integration_id=integration_id, day=today, success=success,
                                               failure=failure, sleep=sleep)
            except IntegrityError:  # another worker made today's row first
                DeliveryDay.objects.filter(integration_id=integration_id, day=today).update(
                    success=F("success") + success, failure=F("failure") + failure, sleep=F("sleep") + sleep)


def deliveries_run(ids: list[int]) -> int:
    """Claim the due pending rows among `ids`, send them, record the outcomes. Returns how many were claimed."""
    claim = timezone.now()
    claimed = Delivery.objects.filter(pk__in=ids, state=Delivery.State.PENDING,
                                      next_attempt_at__lte=claim + EARLY).update(state=Delivery.State.RUNNING,
                                                                                claimed_at=claim)
    if not claimed:
        return 0
    rows = list(Delivery.objects.filter(pk__in=ids, state=Delivery.State.RUNNING, claimed_at=claim).order_by("id"))
    # The batch's few hooks are loaded once, not joined into every row (a config decoded per row).
    hooks = Integration.objects.in_bulk({row.integration_id for row in rows})
    for row in rows:
        row.integration = hooks[row.integration_id]
    done = _Round(claim)
    ready: list[tuple[Delivery, HookRequest]] = []
    stamp = int(time.time())
    for row in rows:
        hook = row.integration
        if hook.disabled:
            done.finish(row, state=Delivery.State.DEAD, error="the integration was disabled before delivery")
            continue
        try:
            product_hook = hook.product_id is not None
            row.context = templates.event_context(row.event, product_hook=product_hook)
            req = requests.build_request(config=hook.config, event=row.event, product_hook=product_hook,
                                         secret=hook.signing_secret, timestamp=stamp, context=row.context)
        except (requests.TemplateFailed, ChevronError, KeyError, TypeError, ValueError) as exc:
            row.attempts += 1
            done.days[hook.id][1] += 1
            done.finish(row, state=Delivery.State.DEAD, error=f"the request could not be built: {exc}")
            continue
        ready.append((row, req))
    sleeping = throttle.hosts_sleeping({req.host for _, req in ready})
    sending = []
    for row, req in ready:
        if req.host in sleeping:
            hook = row.integration
            row.sleeps += 1
            done.days[hook.id][2] += 1
            product_hook = hook.product_id is not None
            done.events.append(_hook_event(row, requests.error_topic(hook.config, row.event, product_hook=product_hook,
                                                                     context=row.context) + "/0", SLEEPING_TEXT))
            if row.sleeps > settings.INTEGRATIONS_MAX_SLEEPS:
                done.finish(row, state=Delivery.State.DEAD, error=SLEEPING_TEXT)
            else:
                pause = settings.INTEGRATIONS_SLEEP_SECONDS
                row.next_attempt_at = timezone.now() + timedelta(seconds=pause / 2 + random.uniform(0, pause / 2))
                done.finish(row, state=Delivery.State.PENDING, error=SLEEPING_TEXT)
                done.retry.append(row)
        else:
            sending.append((row, req))
    done.flush()
    # Outcomes are recorded at most every FLUSH_EVERY seconds (and at the end): a flush per arriving group
    # cost several statements each time; a slow receiver still holds none of the others back longer than that.
    flushed = time.monotonic()
    for group in send_many([req for _, req in sending], tick=FLUSH_EVERY):
        for index, outcome in group:
            row, req = sending[index]
            _outcome(done, row, req, outcome)
        if done.changed and time.monotonic() - flushed >= FLUSH_EVERY:
            done.flush()
            flushed = time.monotonic()
    done.flush()
    return claimed


def _outcome(done: _Round, row: Delivery, req: HookRequest, outcome: Outcome) -> None:
    hook = row.integration
    product_hook = hook.product_id is not None
    row.attempts += 1
    name = row.event["name"]
    if outcome.kind != "refused":
        done.events.append(_hook_event(row, f"hook-sent/{name}", "undefined"))
    if outcome.status is not None and 200 <= outcome.status < 300:
        done.finish(row, state=Delivery.State.DELIVERED, status=outcome.status)
        done.days[hook.id][0] += 1
        done.hosts[req.host][0] += 1
        done.log(hook.id, True, row, req, outcome, "")
        try:
            data = requests.response_data(hook.config, row.event, outcome.body, product_hook=product_hook,
                                          context=row.context)
            topic = requests.response_topic(hook.config, row.event, product_hook=product_hook, context=row.context)
        except (ChevronError, KeyError, TypeError, ValueError) as exc:
            log.warning("responseTemplate of %s failed: %s", hook.id, exc)
            return
        pieces = requests.chunks(data, size=100_000 if hook.config.get("unchunked") else 512,
                                 limit=settings.INTEGRATIONS_BODY_LIMIT)
        for i, piece in enumerate(pieces):
            done.events.append(_hook_event(row, f"{topic}/{i}", piece))
        return
    error = _error_text(req, outcome)
    done.days[hook.id][1] += 1
    if outcome.kind != "refused":
        done.hosts[req.host][1] += 1
    done.log(hook.id, False, row, req, outcome, error)
    try:
        topic = requests.error_topic(hook.config, row.event, product_hook=product_hook, context=row.context)
        done.events.append(_hook_event(row, f"{topic}/0", error))
    except (ChevronError, KeyError, TypeError, ValueError):
        pass
    done.failed(row, status=outcome.status, error=error, transient=is_transient(outcome))


def deliveries_requeue_stale(limit: int = 10_000) -> int:
    """Beat: hand out again the rows a dead worker held and the due rows whose message was lost."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.INTEGRATIONS_CLAIM_STALE_SECONDS)
    lost = now - timedelta(seconds=settings.INTEGRATIONS_REQUEUE_AFTER_SECONDS)
    with transaction.atomic():
        taken = list(Delivery.objects.filter(state=Delivery.State.RUNNING, claimed_at__lt=stale)
                     .order_by("id").values_list("id", flat=True)[:limit])
        if taken:
            Delivery.objects.filter(pk__in=taken, state=Delivery.State.RUNNING, claimed_at__lt=stale).update(
                state=Delivery.State.PENDING, claimed_at=None, next_attempt_at=now)
        waiting = list(Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lt=lost)
                       .order_by("id").values_list("id", flat=True)[:limit])
        if waiting:
            # Moved to now, so the same row is not sent again by every beat while it waits for a worker.
            Delivery.objects.filter(pk__in=waiting, state=Delivery.State.PENDING).update(next_attempt_at=now)
        _enqueue(taken + waiting)
    return len(taken) + len(waiting)


# --- the test button ------------------------------------------------------------------------------------


def integration_test(hook: Integration) -> dict:
    """POST …/integrations/:id/test: send a test event to the receiver now (signed like any delivery) and
    answer Particle's `{pass, data, error}`; the attempt shows in the recent requests like any other."""
    event = {"id": f"test-{secrets.token_hex(8)}", "name": hook.event, "data": "test-event",
             "coreid": hook.device_id or "api", "published_at": bus.now_iso(), "ttl": 60,
             "product_id": hook.product_id, "user_id": hook.user_id}
    try:
        req = requests.build_request(config=hook.config, event=event, product_hook=hook.product_id is not None,
                                     secret=hook.signing_secret, timestamp=int(time.time()))
    except (requests.TemplateFailed, ChevronError, KeyError, TypeError, ValueError) as exc:
        return {"pass": False, "data": None, "error": f"the request could not be built: {exc}"}
    (_, outcome), = [item for group in send_many([req]) for item in group]
    row = Delivery(integration=hook, event_id=event["id"], event=event, attempts=1)
    ok = outcome.status is not None and 200 <= outcome.status < 300
    error = "" if ok else _error_text(req, outcome)
    logs.logs_record([(hook.id, ok, _log_entry(row, req, outcome, error, bus.now_iso()))])
    data = outcome.body.decode("utf-8", errors="replace") if outcome.status is not None else None
    return {"pass": ok, "data": data, "error": error or None}
