"""Importing devices into a product (`POST /v1/products/:p/devices`, the console import page, the CLI).

Every line gets a verdict; valid lines commit together in one transaction, rejected lines are reported with
their line number and reason, and nothing is written when the import as a whole is refused (free limit,
bad `claim_user`). The lookups and the update are set-based — a handful of statements whatever the size —
so 100,000 ids import in about the time PostgreSQL needs to read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from console.errors import ValidationFailed
from console.models import Account, User
from console.scoping import Principal
from console.services import audit_record
from devices.identifiers import classify
from devices.limits import check_sandbox_room
from devices.models import Device, SimCard
from products.models import Product

MAX_LINES = 200_000
MAX_FILE_BYTES = 16_000_000
CHUNK = 10_000

REASONS = {
    "invalid": "not a device id, serial number, IMEI or ICCID",
    "unknown": "no manufactured device has this id, serial number, IMEI or ICCID",
    "wrong_platform": "the device's platform does not match the product's",
    "other_product": "the device belongs to another product",
    "duplicate": "the same device appears on an earlier line",
}


@dataclass
class ImportReport:
    """Particle's response fields plus Cyan's per-line reasons (`rejected`)."""

    updated_ids: list[str] = field(default_factory=list)
    existing_ids: list[str] = field(default_factory=list)
    nonmember_ids: list[str] = field(default_factory=list)
    invalid_ids: list[str] = field(default_factory=list)
    wrong_platform_ids: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    sims_activated: int = 0

    def body(self) -> dict:
        return {
            "updated": len(self.updated_ids),
            "updatedDeviceIds": self.updated_ids,
            "existingDeviceIds": self.existing_ids,
            "nonmemberDeviceIds": self.nonmember_ids,
            "invalidDeviceIds": self.invalid_ids + self.wrong_platform_ids,
            "wrongPlatformDeviceIds": self.wrong_platform_ids,
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


class _OrmStore:
    """Set-based steps of an import through the ORM (SQLite, and any database without COPY)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def resolve(self, values_by_kind: dict[str, set[str]]) -> dict[tuple[str, str], tuple]:
        """(kind, value) -> (device_id, platform_id, product_id, quarantined, denied) for every known value."""
        found: dict[tuple[str, str], tuple] = {}
        cols = ("id", "platform_id", "product_id", "quarantined", "denied")
        for kind, column in (("id", "id"), ("serial", "serial_number"), ("imei", "imei")):
            for chunk in _chunks(sorted(values_by_kind.get(kind, ())), 900):
                for row in Device.objects.filter(**{f"{column}__in": chunk}).values_list(column, *cols):
                    found[(kind, row[0])] = row[1:]
        for chunk in _chunks(sorted(values_by_kind.get("iccid", ())), 900):
            rows = SimCard.objects.filter(iccid__in=chunk, device__isnull=False).values_list(
                "iccid", "device__id", "device__platform_id", "device__product_id", "device__quarantined",
                "device__denied")
            for row in rows:
                found[("iccid", row[0])] = row[1:]
        return found

    def stage(self, ids: list[str]) -> None:
        self.ids = ids

    def owned_outside_products(self, owner_id: int) -> int:
        return sum(Device.objects.filter(id__in=chunk, product__isnull=True, owner_id=owner_id).count()
                   for chunk in _chunks(self.ids, 900))

    def update(self, fields: dict) -> None:
        for chunk in _chunks(self.ids, 900):  # SQLite allows 999 parameters per statement
            Device.objects.filter(id__in=chunk).update(**fields)

    def activate_sims(self, product: Product, now) -> int:
        activated = 0
        for chunk in _chunks(self.ids, 900):
            activated += SimCard.objects.filter(device_id__in=chunk).exclude(status=SimCard.Status.ACTIVE).update(
                status=SimCard.Status.ACTIVE, activations_count=F("activations_count") + 1, last_activated_on=now,
                last_activated_via="device import", last_status_change_action="activate",
                last_status_change_action_error=False)
            SimCard.objects.filter(device_id__in=chunk, first_activated_on__isnull=True).update(first_activated_on=now)
            SimCard.objects.filter(device_id__in=chunk).update(product=product, user=None, updated_at=now)
        return activated


class _PostgresStore(_OrmStore):
    """The same steps in a few statements over COPY-filled temporary tables: no 65,535-parameter ceiling,
    no per-id placeholders to build, whatever the size of the import."""

    def _copy(self, cursor, table: str, rows) -> None:
        with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def resolve(self, values_by_kind):
        found: dict[tuple[str, str], tuple] = {}
        with connection.cursor() as c:
            c.execute("DROP TABLE IF EXISTS import_values")  # a second import in the same transaction
            c.execute("CREATE TEMP TABLE import_values (kind text, value text) ON COMMIT DROP")
            self._copy(c, "import_values", ((k, v) for k, values in values_by_kind.items() for v in values))
            joins = {
                "id": "JOIN devices_device d ON d.id = v.value",
                "serial": "JOIN devices_device d ON d.serial_number = v.value",
                "imei": "JOIN devices_device d ON d.imei = v.value",
                "iccid": "JOIN devices_simcard s ON s.iccid = v.value JOIN devices_device d ON d.id = s.device_id",
            }
            for kind, join in joins.items():
                if not values_by_kind.get(kind):
                    continue
                c.execute(f"SELECT v.value, d.id, d.platform_id, d.product_id, d.quarantined, d.denied "
                          f"FROM import_values v {join} WHERE v.kind = %s", [kind])
                for value, *row in c.fetchall():
                    found[(kind, value)] = tuple(row)
        return found

    def stage(self, ids):
        self.ids = ids
        with connection.cursor() as c:
            c.execute("DROP TABLE IF EXISTS import_add")
            c.execute("CREATE TEMP TABLE import_add (id varchar(24) PRIMARY KEY) ON COMMIT DROP")
            self._copy(c, "import_add", ((i,) for i in ids))
            c.execute("ANALYZE import_add")

    def owned_outside_products(self, owner_id):
        with connection.cursor() as c:
            c.execute("SELECT count(*) FROM import_add a JOIN devices_device d ON d.id = a.id "
                      "WHERE d.product_id IS NULL AND d.owner_id = %s", [owner_id])
            return c.fetchone()[0]

    def update(self, fields):
        sets = ", ".join(f"{name} = %s" for name in fields)
        with connection.cursor() as c:
            c.execute(f"UPDATE devices_device d SET {sets} FROM import_add a WHERE d.id = a.id", list(fields.values()))

    def activate_sims(self, product, now):
        with connection.cursor() as c:
            c.execute("""UPDATE devices_simcard s SET status = 'active', activations_count = activations_count + 1,
                                first_activated_on = COALESCE(first_activated_on, %s), last_activated_on = %s,
                                last_activated_via = 'device import', last_status_change_action = 'activate',
                                last_status_change_action_error = false
                           FROM import_add a WHERE s.device_id = a.id AND s.status <> 'active'""", [now, now])
            activated = c.rowcount
            c.execute("UPDATE devices_simcard s SET product_id = %s, user_id = NULL, updated_at = %s "
                      "FROM import_add a WHERE s.device_id = a.id", [product.pk, now])
        return activated


def claim_user_for(product: Product, email: object) -> User | None:
    """`claim_user` must name a person on the product's team (owner, product seat or org seat)."""
    if email in (None, ""):
        return None
    if not isinstance(email, str):
        raise ValidationFailed("claim_user must be an email", field="claim_user")
    from products.selectors import product_role  # noqa: PLC0415

    user = User.objects.filter(email=email.strip().lower(), kind=User.Kind.HUMAN).first()
    if user is None or product_role(user=user, product=product)[0] is None:
        raise ValidationFailed(f"claim_user {email} is not a member of this product's team", field="claim_user")
    return user


def device_import(*, principal: Principal, product: Product, values: list[tuple[int, str]],
                  import_sims: bool = True, claim_user: object = None,
                  progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Add the listed devices to `product` (or approve them out of its quarantine) and report every line."""
    if not values:
        raise ValidationFailed("No device ids given: send `id`, `ids[]` or a file with one id per line",
                               field="file")
    if len(values) > MAX_LINES:
        raise ValidationFailed(f"At most {MAX_LINES:,} lines per import; split the file", field="file")
    owner = claim_user_for(product, claim_user)
    report = ImportReport()
    wanted: dict[str, set[str]] = {}
    parsed = []
    for line, raw in values:
        kind, value = classify(raw)
        parsed.append((line, raw, kind, value))
        if kind != "invalid":
            wanted.setdefault(kind, set()).add(value)
    total = len(parsed)
    store = _PostgresStore() if connection.vendor == "postgresql" else _OrmStore()
    with transaction.atomic():
        found = store.resolve(wanted)
        to_add: list[str] = []
        seen: set[str] = set()
        for index, (line, raw, kind, value) in enumerate(parsed, start=1):
            if kind == "invalid":
                _reject(report, line, raw, "invalid", report.invalid_ids)
                continue
            row = found.get((kind, value))
            if row is None:
                _reject(report, line, raw, "unknown", report.invalid_ids)
                continue
            device_id, platform_id, product_id, quarantined, denied = row
            if device_id in seen:
                _reject(report, line, raw, "duplicate", None)
                continue
            seen.add(device_id)
            if platform_id != product.platform_id:
                _reject(report, line, raw, "wrong_platform", report.wrong_platform_ids)
            elif product_id is not None and product_id != product.pk:
                _reject(report, line, raw, "other_product", report.nonmember_ids)
            elif product_id == product.pk and not quarantined and not denied:
                report.existing_ids.append(device_id)
            else:
                to_add.append(device_id)  # new member, or approved out of quarantine / un-denied
            if progress and index % CHUNK == 0:
                progress(index, total)
        if to_add:
            store.stage(to_add)
            if product.account.kind == Account.Kind.SANDBOX:
                # Devices already claimed in the sandbox, outside products, are counted there already.
                owner_id = product.account.owner_id
                check_sandbox_room(product.account.owner, len(to_add) - store.owned_outside_products(owner_id))
            now = timezone.now()
            fields = {"product_id": product.pk, "quarantined": False, "denied": False, "added_to_product_at": now,
                      "updated_at": now}
            if owner is not None:
                fields["owner_id"] = owner.pk
            store.update(fields)
            Product.objects.filter(pk=product.pk).update(device_count=F("device_count") + len(to_add))
            if import_sims:
                report.sims_activated = store.activate_sims(product, now)
        report.updated_ids = to_add
        audit_record(principal=principal, action="devices.import", target=product.slug, account=product.account,
                     product_id=product.pk, data={"lines": total, "added": len(to_add),
                                                  "existing": len(report.existing_ids),
                                                  "rejected": len(report.rejected)})
    if progress:
        progress(total, total)
    return report
