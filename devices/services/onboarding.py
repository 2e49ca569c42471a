"""Onboarding as durable work (DESIGN.md §4 "Onboarding" and "Durable work"): what happens to a connection
that `sessions_open` could not let in at once.

The `Onboarding` row is the state; the broker only carries "work on these ids". A run

1. claims its rows with a conditional UPDATE (pending -> running, claimed_at = this claim), so a redelivered
   or re-enqueued message finds nothing to do;
2. decides every device and writes the effects (online, quarantined in the product, imported by
   auto-approve, claimed by a stored claim code) and each row's outcome in **one** transaction, guarded by
   the claim (`WHERE state='running' AND claimed_at=<claim>`): a worker killed before the commit leaves
   the rows running with nothing written, and the requeuer hands them out again;
3. after commit announces the decision — `spark/status` online (published once per row, whatever the
   number of runs: `events.events_publish_once`) and "admit" to the gateway — and only then marks the rows
   done. A worker killed between 2 and 3 leaves rows decided but running: the next run skips straight to 3.

`onboardings_requeue_stale` (beat, every 30 s) puts back running rows whose claim is older than 60 s and
re-sends pending rows older than 30 s (a lost broker message).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from celery import current_app
from django.db import transaction
from django.utils import timezone

from console.errors import ServiceError
from console.scoping import Principal
from console.services.audit import audit_record
from devices import events, presence
from devices.models import Device, Onboarding
from devices.services import claims, importing, sessions
from devices.services.limits import lock_sandbox
from console.models import Account
from products.models import Product

ONBOARD_TASK = sessions.ONBOARD_TASK
CLAIM_STALE = timedelta(seconds=60)
PENDING_STALE = timedelta(seconds=30)
REQUEUE_BATCH = 200
GONE = "the connection closed before the decision"
SUPERSEDED = "a newer connection of the device was decided with it"

log = logging.getLogger("cyan.onboarding")


class _ClaimLost(Exception):
    """Another run took these rows (ours went stale and were requeued): roll back, it does the work."""


def onboardings_run(ids: list[int]) -> int:
    """Claim, decide and announce the pending Onboarding rows among `ids`; returns how many this run took."""
    claim = timezone.now()
    taken = Onboarding.objects.filter(pk__in=ids, state=Onboarding.State.PENDING).update(
        state=Onboarding.State.RUNNING, claimed_at=claim)
    if not taken:
        return 0
    try:
        with transaction.atomic():
            rows = list(Onboarding.objects.select_for_update().filter(
                pk__in=ids, state=Onboarding.State.RUNNING, claimed_at=claim).order_by("pk"))
            fresh = [row for row in rows if row.decided_at is None]
            if fresh:
                _decide(fresh, claim)
    except _ClaimLost:
        log.warning("onboarding rows %s were taken over by another run", ids[:10])
        return 0
    _announce(rows, claim)
    return len(rows)


def _decide(rows: list[Onboarding], claim) -> None:
    """Decide `rows` (claimed by `claim`, locked) and write effects and outcomes; raises _ClaimLost."""
    now = timezone.now()
    product_ids = {r.hello_product_id for r in rows
                   if sessions.has_product_firmware(r.hello_product_id, r.hello_firmware_version,
                                                    r.hello_platform_id)}
    products = {p.pk: p for p in Product.objects.select_related("account", "account__owner")
                .filter(pk__in=product_ids)}
    # The lock order of every writer: the product an import goes into (device_import holds it), then the
    # users whose free limit is counted (sandbox owners of auto-approving products, the users of claim
    # codes the devices presented), then device rows. Taking them here, before the devices, is what lets the
    # auto-approve import and the claims below run inside this transaction without deadlocking against an
    # import or a claim running beside it.
    approving = sorted(p.pk for p in products.values() if not p.quarantine)
    if approving:
        list(Product.objects.select_for_update(no_key=True).filter(pk__in=approving).order_by("pk")
             .values_list("pk", flat=True))
    limited = {p.account.owner for p in products.values()
               if not p.quarantine and p.account.kind == Account.Kind.SANDBOX}
    limited |= claims.claim_code_users({r.claim_code for r in rows if r.claim_code})
    for user in sorted(limited, key=lambda u: u.pk):
        lock_sandbox(user)
    devices = {d.id: d for d in Device.objects.select_for_update(of=("self",)).select_related("product")
               .filter(pk__in={r.device_id for r in rows}).order_by("pk")}  # id order: liveness.lock_devices_in_order
    # The newest connection of a device decides for it; older rows of the same device get the same outcome.
    latest: dict[str, Onboarding] = {}
    for row in rows:
        latest[row.device_id] = row
    outcome: dict[str, tuple[str, str]] = {}  # device id -> (outcome, reason)
    quarantine: dict[int, list[str]] = defaultdict(list)
    approve: dict[int, list[str]] = defaultdict(list)
    members: list[str] = []
    for device_id, row in latest.items():
        device = devices.get(device_id)
        product_firmware = sessions.has_product_firmware(row.hello_product_id, row.hello_firmware_version,
                                                         row.hello_platform_id)
        product = products.get(row.hello_product_id) if product_firmware else None
        reason = sessions.refusal(device, platform_id=row.hello_platform_id, product_firmware=product_firmware,
                                  product=product)
        if reason:
            outcome[device_id] = ("refused", reason)
        elif device.quarantined:
            outcome[device_id] = ("quarantined", "")
        elif not product_firmware or device.product_id == product.pk:
            members.append(device_id)  # a member of its product, or a device in its owner's sandbox
        elif product.quarantine:
            quarantine[product.pk].append(device_id)
        else:
            approve[product.pk].append(device_id)
    for product_id, ids in approve.items():
        product = products[product_id]
        added, left, why = _auto_approve(product, ids)
        members += added
        quarantine[product_id] += left
        for device_id in left:
            outcome[device_id] = ("quarantined", why.get(device_id, ""))
    for product_id, ids in quarantine.items():
        product = products[product_id]
        Device.objects.filter(pk__in=ids).update(product_id=product_id, quarantined=True, updated_at=now)
        audit_record(principal=Principal.system("Cyan onboarding"), action="devices.quarantine",
                     target=product.slug, account=product.account, product_id=product_id,
                     data={"devices": len(ids), "ids": sorted(ids)[:100]})
        for device_id in ids:
            outcome.setdefault(device_id, ("quarantined", ""))
    # Online only where the connection that asked is still the device's current one (presence in Redis).
    located = presence.devices_located(members)
    going: list[Device] = []
    contact: dict[str, str | None] = {}
    fresh = {d.id: d for d in Device.objects.filter(pk__in=members)} if approve else devices
    for device_id in members:
        row = latest[device_id]
        if located.get(device_id) == presence.Location(row.gateway, row.session):
            going.append(fresh[device_id])
            contact[device_id] = row.ip_address
            outcome[device_id] = ("online", "")
        else:
            outcome[device_id] = ("online", GONE)
    sessions.devices_mark_online(going, now=now, contact=contact)
    for device in going:
        code = next((r.claim_code for r in reversed(rows) if r.device_id == device.id and r.claim_code), "")
        if code:
            claims.device_claim_by_code(code=code, device_id=device.id)
    by_result: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        result = outcome[row.device_id]
        if row is not latest[row.device_id]:
            result = (result[0], SUPERSEDED)
        by_result[result].append(row.pk)
    recorded = 0
    for (result, reason), pks in by_result.items():
        recorded += Onboarding.objects.filter(pk__in=pks, state=Onboarding.State.RUNNING, claimed_at=claim).update(
            outcome=result, reason=reason[:200], decided_at=now)
        if result == "refused":
            log.info("onboarding refused %d connection(s): %s", len(pks), reason)
    if recorded != len(rows):
        raise _ClaimLost()


def _auto_approve(product: Product, ids: list[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """Import `ids` into `product` exactly as an import would (limits, SIMs, counts, audit), as Cyan itself.
    Returns (imported, left to quarantine, why each was left)."""
    try:
        with transaction.atomic():
            report = importing.device_import(principal=Principal.system("Cyan auto-approve"), product=product,
                                             values=list(enumerate(ids, start=1)), admit_connected=False)
    except ServiceError as exc:  # the import as a whole was refused (the free device limit): they wait
        log.info("auto-approve into %s refused: %s", product.slug, exc.description)
        return [], ids, {i: f"auto-approve refused: {exc.description}" for i in ids}
    added = set(report.updated_ids) | set(report.existing_ids)
    why = {ids[r["line"] - 1]: f"auto-approve refused: {r['message']}" for r in report.rejected}
    return [i for i in ids if i in added], [i for i in ids if i not in added], why


def _announce(rows: list[Onboarding], claim) -> None:
    """Tell the world what was decided (after commit): `spark/status` online once per row, "admit" to the
    gateway; then the rows are done."""
    decided = {r.pk: r for r in Onboarding.objects.filter(pk__in=[r.pk for r in rows])}
    online = [r for r in decided.values() if r.outcome == "online" and not r.reason]
    stamp = events.now_iso()
    events.events_publish_once({
        f"onboarding:{r.pk}": [events.event_make(device_id=r.device_id, name="spark/status", data="online",
                                                 published_at=stamp)]
        for r in online})
    # Nobody to tell for a connection that has gone (or whose newer connection is told).
    presence.devices_notify([(row.device_id, "admit", {"outcome": row.outcome, "reason": row.reason})
                             for row in decided.values() if row.reason not in (GONE, SUPERSEDED)])
    Onboarding.objects.filter(pk__in=list(decided), state=Onboarding.State.RUNNING, claimed_at=claim).update(
        state=Onboarding.State.DONE)


def onboardings_requeue_stale() -> int:
    """Put back running rows whose worker died (claim older than 60 s) and re-send pending rows older than
    30 s whose message was lost; returns how many rows were sent again."""
    now = timezone.now()
    stale = list(Onboarding.objects.filter(state=Onboarding.State.RUNNING, claimed_at__lt=now - CLAIM_STALE)
                 .values_list("pk", flat=True))
    if stale:
        Onboarding.objects.filter(pk__in=stale, state=Onboarding.State.RUNNING,
                                  claimed_at__lt=now - CLAIM_STALE).update(state=Onboarding.State.PENDING)
    waiting = set(Onboarding.objects.filter(state=Onboarding.State.PENDING, created_at__lt=now - PENDING_STALE)
                  .values_list("pk", flat=True)) | set(stale)
    ordered = sorted(waiting)
    for start in range(0, len(ordered), REQUEUE_BATCH):
        current_app.send_task(ONBOARD_TASK, kwargs={"ids": ordered[start:start + REQUEUE_BATCH]})
    return len(ordered)
