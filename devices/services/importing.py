"""Importing devices into a product (`POST /v1/products/:p/devices`, the console import page, the CLI).

Every line gets a verdict; valid lines commit together in one transaction, rejected lines are reported with
their line number and reason, and nothing is written when the import as a whole is refused (free limit,
bad `claim_user`). The lookups and the update are set-based — a handful of statements whatever the size —
so 100,000 ids import in about the time PostgreSQL needs to read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from console.errors import NotFound, ValidationFailed
from console.models import Account, User
from console.scoping import Principal, rights_for
from console.services.audit import audit_record
from devices.identifiers import classify
from devices.models import Device, SerialNumber, SimCard
from devices.services import sessions
from devices.services.limits import check_sandbox_room, lock_sandbox
from products.models import Product
from products.selectors import product_team_user_ids

MAX_LINES = 200_000
MAX_FILE_BYTES = 16_000_000
CHUNK = 10_000

REASONS = {
    "invalid": "not a device id, serial number, IMEI or ICCID",
    "unknown": "no manufactured device has this id, serial number, IMEI or ICCID",
    "wrong_platform": "the device's platform does not match the product's",
    "other_product": "the device belongs to another product",
    "duplicate": "the same device appears on an earlier line",
    "busy": "the device changed hands while this import ran; import it again",
    "claimed": "the device is claimed by someone outside this product's team; they can release it to you, "
               "or you can ask them for it with a transfer request",
}


@dataclass
class ImportReport:
    """Particle's response fields plus Cyan's per-line reasons (`rejected`)."""

    updated_ids: list[str] = field(default_factory=list)
    existing_ids: list[str] = field(default_factory=list)
    nonmember_ids: list[str] = field(default_factory=list)
    invalid_ids: list[str] = field(default_factory=list)
    wrong_platform_ids: list[str] = field(default_factory=list)
    claimed_ids: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    sims_activated: int = 0

    def as_dict(self) -> dict:
        """The report in Particle's response shape; a background job stores the same dict."""
        return {
            "updated": len(self.updated_ids),
            "updatedDeviceIds": self.updated_ids,
            "existingDeviceIds": self.existing_ids,
            "nonmemberDeviceIds": self.nonmember_ids + self.claimed_ids,  # the CLI skips what it lists here
            "invalidDeviceIds": self.invalid_ids + self.wrong_platform_ids,
            "wrongPlatformDeviceIds": self.wrong_platform_ids,
            "claimedDeviceIds": self.claimed_ids,
            "protectedDeviceIds": [],
            "simsActivated": self.sims_activated,
            "rejected": self.rejected,
        }


def _reject(report: ImportReport, line: int, value: str, reason: str, bucket: list[str] | None) -> None:
    shown = value[:64]
    report.rejected.append({"line": line, "value": shown, "reason": reason, "message": REASONS[reason]})
    if bucket is not None:
        bucket.append(shown)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


_ARRAY_ITEMS = re.compile(r"(?:[A-Za-z0-9]+(?:,[A-Za-z0-9]+)*)?", re.ASCII)


def _pg_array(values: Iterable[str]) -> str:
    """A text[] literal of identifier-shaped values (hex ids, digits, upper-case serials): one parameter that
    PostgreSQL parses in C, where a Python list of 100,000 strings costs psycopg ~0.5 s to send. Anything
    that would need quoting is refused rather than escaped."""
    items = ",".join(values)
    if not _ARRAY_ITEMS.fullmatch(items):
        raise ValueError("array values must be ASCII letters and digits")
    return "{" + items + "}"


def _eligible(product: Product, team: list[int]) -> Q:
    """Rows an import may take: the product's platform, either in no product or waiting in this one's
    quarantine / deny list (importing approves them), and claimed by nobody or by a member of the team — a
    device claimed by anyone else is theirs, and only a transfer request moves it."""
    return Q(platform_id=product.platform_id) & (
        Q(product__isnull=True) | Q(product_id=product.pk) & (Q(quarantined=True) | Q(denied=True))) & (
        Q(owner__isnull=True) | Q(owner_id__in=team))


class _OrmStore:
    """Set-based steps of an import through the ORM (SQLite, and any database without arrays). `team`: the
    ids of the people on the product's team (`products.selectors.product_team_user_ids`)."""

    def __init__(self, team: list[int] = ()) -> None:
        self.team = list(team)

    def resolve_aliases(self, values_by_kind: dict[str, set[str]]) -> dict[tuple[str, str], str]:
        """(kind, value) -> device id for serial numbers, IMEIs and ICCIDs."""
        found: dict[tuple[str, str], str] = {}
        for chunk in _chunks(sorted(values_by_kind.get("serial", ())), 900):
            for value, device_id in SerialNumber.objects.filter(serial__in=chunk).values_list("serial", "device_id"):
                found[("serial", value)] = device_id
        for chunk in _chunks(sorted(values_by_kind.get("imei", ())), 900):
            for value, device_id in Device.objects.filter(imei__in=chunk).values_list("imei", "id"):
                found[("imei", value)] = device_id
        for chunk in _chunks(sorted(values_by_kind.get("iccid", ())), 900):
            rows = SimCard.objects.filter(iccid__in=chunk, device__isnull=False).values_list("iccid", "device_id")
            for value, device_id in rows:
                found[("iccid", value)] = device_id
        return found

    def sandbox_counts(self, ids: list[str], product: Product, owner_id: int) -> tuple[int, int]:
        """(rows the import would take, of which already claimed to `owner_id` outside any product)."""
        taken = owned = 0
        for chunk in _chunks(ids, 900):
            rows = Device.objects.filter(_eligible(product, self.team), id__in=chunk)
            taken += rows.count()
            owned += rows.filter(product__isnull=True, owner_id=owner_id).count()
        return taken, owned

    def add(self, ids: list[str], product: Product, fields: dict) -> set[str]:
        """Move every eligible row among `ids` into `product`; the ids that moved."""
        added: set[str] = set()
        for chunk in _chunks(ids, 900):  # SQLite allows 999 parameters per statement
            moved = list(Device.objects.filter(_eligible(product, self.team), id__in=chunk)
                         .values_list("id", flat=True))
            Device.objects.filter(id__in=moved).update(**fields)
            added.update(moved)
        return added

    def lookup(self, ids: list[str]) -> dict[str, tuple]:
        """id -> (platform_id, product_id, quarantined, denied, owner_id) for the registered ones among `ids`."""
        found: dict[str, tuple] = {}
        for chunk in _chunks(ids, 900):
            for device_id, *row in Device.objects.filter(id__in=chunk).values_list(
                    "id", "platform_id", "product_id", "quarantined", "denied", "owner_id"):
                found[device_id] = tuple(row)
        return found

    def activate_sims(self, ids: list[str], product: Product, now) -> int:
        activated = 0
        for chunk in _chunks(ids, 900):
            activated += SimCard.objects.filter(device_id__in=chunk).exclude(status=SimCard.Status.ACTIVE).update(
                status=SimCard.Status.ACTIVE, activations_count=F("activations_count") + 1, last_activated_on=now,
                last_activated_via="device import", last_status_change_action="activate",
                last_status_change_action_error=False)
            SimCard.objects.filter(device_id__in=chunk, first_activated_on__isnull=True).update(first_activated_on=now)
            SimCard.objects.filter(device_id__in=chunk).update(product=product, user=None, updated_at=now)
        return activated


class _PostgresStore(_OrmStore):
    """The same steps as single statements joined to one array parameter (`unnest`, not `= ANY`, whose
    planning estimates each of 100,000 elements): no 65,535-parameter ceiling, no
    per-id placeholders to build, whatever the size of the import.

    The move itself is one UPDATE that walks the primary key in id order (the ids arrive sorted, and the
    plan is pinned to a nested loop): each imported row then lands next to the previous one in the product's
    list indexes instead of at a random leaf, which is most of what a large import costs (bench/README.md).
    """

    def resolve_aliases(self, values_by_kind):
        found: dict[tuple[str, str], str] = {}
        queries = {
            "serial": 'SELECT s.serial, s.device_id FROM unnest(%s::text[]) AS a(v) '
                      'JOIN devices_serialnumber s ON s.serial = a.v COLLATE "C"',
            "imei": "SELECT d.imei, d.id FROM unnest(%s::text[]) AS a(v) JOIN devices_device d ON d.imei = a.v",
            "iccid": "SELECT s.iccid, s.device_id FROM unnest(%s::text[]) AS a(v) "
                     "JOIN devices_simcard s ON s.iccid = a.v WHERE s.device_id IS NOT NULL",
        }
        with connection.cursor() as c:
            for kind, sql in queries.items():
                if values_by_kind.get(kind):
                    c.execute(sql, [_pg_array(sorted(values_by_kind[kind]))])
                    found.update(((kind, value), device_id) for value, device_id in c.fetchall())
        return found

    _ELIGIBLE = ("d.platform_id = %(platform)s AND (d.product_id IS NULL OR "
                 "(d.product_id = %(product)s AND (d.quarantined OR d.denied))) "
                 "AND (d.owner_id IS NULL OR d.owner_id = ANY(%(team)s))")

    def sandbox_counts(self, ids, product, owner_id):
        with connection.cursor() as c:
            c.execute(f"""SELECT count(*), count(*) FILTER (WHERE d.product_id IS NULL AND d.owner_id = %(owner)s)
                            FROM unnest(%(ids)s::text[]) AS a(id) JOIN devices_device d ON d.id = a.id COLLATE "C"
                           WHERE {self._ELIGIBLE}""",
                      {"ids": _pg_array(ids), "owner": owner_id, "platform": product.platform_id, "product": product.pk,
                       "team": self.team})
            return c.fetchone()

    def add(self, ids, product, fields):
        params = {"ids": _pg_array(sorted(ids)), "platform": product.platform_id, "product": product.pk,
                  "team": self.team}
        sets = []
        for name, value in fields.items():
            sets.append(f"{name} = %(set_{name})s")
            params[f"set_{name}"] = value
        with connection.cursor() as c:
            # For this statement only (SET LOCAL ends with the transaction; RESET ends it sooner).
            c.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off")
            c.execute(f"""UPDATE devices_device d SET {", ".join(sets)}
                            FROM unnest(%(ids)s::text[]) AS a(id)
                           WHERE d.id = a.id COLLATE "C" AND {self._ELIGIBLE}
                       RETURNING d.id""", params)
            added = {row[0] for row in c.fetchall()}
            c.execute("RESET enable_hashjoin; RESET enable_mergejoin; RESET jit")
        return added

    def lookup(self, ids):
        if not ids:
            return {}
        with connection.cursor() as c:
            c.execute("SELECT d.id, platform_id, product_id, quarantined, denied, owner_id "
                      "FROM unnest(%s::text[]) AS a(id) "
                      'JOIN devices_device d ON d.id = a.id COLLATE "C"', [_pg_array(ids)])
            return {device_id: tuple(row) for device_id, *row in c.fetchall()}

    def activate_sims(self, ids, product, now):
        with connection.cursor() as c:
            c.execute("""UPDATE devices_simcard s SET status = 'active', activations_count = activations_count + 1,
                                first_activated_on = COALESCE(first_activated_on, %(now)s), last_activated_on = %(now)s,
                                last_activated_via = 'device import', last_status_change_action = 'activate',
                                last_status_change_action_error = false
                           FROM unnest(%(ids)s::text[]) AS a(id)
                          WHERE s.device_id = a.id COLLATE "C" AND s.status <> 'active'""",
                      {"ids": _pg_array(ids), "now": now})
            activated = c.rowcount
            c.execute("UPDATE devices_simcard s SET product_id = %(product)s, user_id = NULL, updated_at = %(now)s "
                      'FROM unnest(%(ids)s::text[]) AS a(id) WHERE s.device_id = a.id COLLATE "C"',
                      {"ids": _pg_array(ids), "now": now, "product": product.pk})
        return activated


def resolve_aliases(values_by_kind: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """(kind, value) -> device id for the serial numbers, IMEIs and ICCIDs given (the import's own lookup)."""
    return _store().resolve_aliases(values_by_kind)


def _store(team: list[int] = ()) -> _OrmStore:
    return _PostgresStore(team) if connection.vendor == "postgresql" else _OrmStore(team)


def claim_user_for(product: Product, email: str | None) -> User | None:
    """`claim_user` must name a person on the product's team (owner, product seat or org seat)."""
    if not email:
        return None
    user = User.objects.filter(email=email.strip().lower(), kind=User.Kind.HUMAN).first()
    if user is None or rights_for(Principal.for_user(user), product).role is None:
        raise ValidationFailed(f"claim_user {email} is not a member of this product's team", field="claim_user")
    return user


def device_import(*, principal: Principal | None, product: Product, values: list[tuple[int, str]],
                  import_sims: bool = True, claim_user: str | None = None,
                  progress: Callable[[int, int], None] | None = None, admit_connected: bool = True) -> ImportReport:
    """Add the listed devices to `product` (or approve them out of its quarantine) and report every line.
    A quarantined device that is connected comes online at once (`admit_connected`; the onboarding worker,
    which admits what it imports itself, turns it off)."""
    if not values:
        raise ValidationFailed("No device ids given: send `id`, `ids[]` or a file with one id per line",
                               field="file")
    if len(values) > MAX_LINES:
        raise ValidationFailed(f"At most {MAX_LINES:,} lines per import; split the file", field="file")
    owner = claim_user_for(product, claim_user)
    report = ImportReport()
    parsed: list[tuple[int, str, str, str]] = []
    aliases: dict[str, set[str]] = {}
    for line, raw in values:
        kind, value = classify(raw)
        parsed.append((line, raw, kind, value))
        if kind not in ("invalid", "id"):
            aliases.setdefault(kind, set()).add(value)
    total = len(parsed)
    team = product_team_user_ids(product)
    store = _store(team)
    with transaction.atomic():
        # Hold the product row until commit: a delete waits for this import (Product.delete), and an import
        # into a product deleted meanwhile stops here instead of pointing devices at nothing.
        if not list(Product.objects.select_for_update(no_key=True).filter(pk=product.pk).values_list("pk", flat=True)):
            raise NotFound("This product no longer exists")
        device_of = store.resolve_aliases(aliases) if aliases else {}
        # Each line's device id (or None: invalid, or a serial/IMEI/ICCID nobody registered).
        line_ids = [value if kind == "id" else device_of.get((kind, value)) for _, _, kind, value in parsed]
        candidates = list(dict.fromkeys(i for i in line_ids if i is not None))
        now = timezone.now()
        added: set[str] = set()
        if candidates:
            # Approving: which of these wait in quarantine on a live connection (Redis first: usually none).
            waiting = sessions.connected_quarantined(product, candidates) if admit_connected else []
            # The users whose free limit this import counts against, locked before any device row as every
            # writer does, in id order: the sandbox's owner (first: a claim running now cannot take the same
            # room), and the users of claim codes the waiting devices presented (applied on admission).
            users = sessions.claim_code_users_waiting(waiting)
            if product.account.kind == Account.Kind.SANDBOX:
                users.add(product.account.owner)
            for user in sorted(users, key=lambda u: u.pk):
                lock_sandbox(user)
            if product.account.kind == Account.Kind.SANDBOX:
                # Devices already claimed in the sandbox, outside products, are counted there already.
                taking, owned = store.sandbox_counts(candidates, product, product.account.owner_id)
                check_sandbox_room(product.account.owner, taking - owned)
            fields = {"product_id": product.pk, "quarantined": False, "denied": False, "added_to_product_at": now,
                      "updated_at": now}
            if owner is not None:
                fields["owner_id"] = owner.pk
            # Move first, then look at what did not move: the common case (every line a new device) is one
            # statement, and only the leftovers need reading to say why they were not added.
            added = store.add(candidates, product, fields)
            sessions.devices_admit_approved(product=product, device_ids=[i for i in waiting if i in added], now=now)
        others = store.lookup([i for i in candidates if i not in added])
        seen: set[str] = set()
        for index, ((line, raw, kind, value), device_id) in enumerate(zip(parsed, line_ids), start=1):
            if kind == "invalid":
                _reject(report, line, raw, "invalid", report.invalid_ids)
            elif device_id is None or (device_id not in added and device_id not in others):
                _reject(report, line, raw, "unknown", report.invalid_ids)
            elif device_id in seen:
                _reject(report, line, raw, "duplicate", None)
            else:
                seen.add(device_id)
                if device_id in added:
                    report.updated_ids.append(device_id)
                else:
                    platform_id, product_id, quarantined, denied, owner_id = others[device_id]
                    if platform_id != product.platform_id:
                        _reject(report, line, raw, "wrong_platform", report.wrong_platform_ids)
                    elif product_id is not None and product_id != product.pk:
                        _reject(report, line, raw, "other_product", report.nonmember_ids)
                    elif product_id == product.pk and not quarantined and not denied:
                        report.existing_ids.append(device_id)
                    elif owner_id is not None and owner_id not in team:
                        _reject(report, line, raw, "claimed", report.claimed_ids)
                    else:  # free (or waiting) now, but it was not when the UPDATE ran: a concurrent release
                        _reject(report, line, raw, "busy", None)
            if progress and index % CHUNK == 0:
                progress(index, total)
        if added:
            Product.objects.filter(pk=product.pk).update(device_count=F("device_count") + len(added))
            if import_sims:
                report.sims_activated = store.activate_sims(report.updated_ids, product, now)
        audit_record(principal=principal, action="devices.import", target=product.slug, account=product.account,
                     product_id=product.pk, data={"lines": total, "added": len(added),
                                                  "existing": len(report.existing_ids),
                                                  "rejected": len(report.rejected)})
    if progress:
        progress(total, total)
    return report
