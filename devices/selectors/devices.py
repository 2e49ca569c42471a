"""Reads for devices: one device (by id or name, through the caller's scope), the product fleet list, the
sandbox list, a device's history. Product lists start from a product already resolved through
`product_get` (so the caller's access is settled) and run at most three device queries whatever the page or
the fleet size (see "the product device list" below)."""

from __future__ import annotations

import functools
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import Count, F, Q, QuerySet

from console import validation
from console.counters import count_hit
from console.errors import Forbidden, LockedOut, NotFound, ValidationFailed
from console.models import AuditEntry, User
from console.pagination import Page
from console.prepared import Prepared
from console.scoping import Principal
from devices.identifiers import is_device_id
from devices.migrations import _sort_index
from devices.models import Customer, Device, DeviceRights, SimCard
from devices.selectors import listmarks
from devices.selectors.groups import GroupNamer, group_namer, groups_of
from devices.selectors.limits import FREE_DEVICE_LIMIT, sandbox_device_count
from products.models import DeviceGroup, Platform, Product
from products.selectors import product_check, product_get

SERIAL_LOOKUPS_PER_HOUR = 50

# sortAttr values (particle-api.md §6); each one's SQL is SORT_SQL below.
SORTS = ("lastConnection", "deviceName", "deviceId", "firmwareVersion")


@dataclass
class DeviceListQuery:
    page: int = 1
    per_page: int = validation.DEFAULT_PER_PAGE
    sort: str = "lastConnection"
    descending: bool = True
    device_id: str = ""
    name: str = ""
    serial: str = ""
    groups: list[str] = field(default_factory=list)
    quarantined: bool = False

    @classmethod
    def from_params(cls, params) -> "DeviceListQuery":
        page, per_page = validation.page_params(params)
        sort = params.get("sortAttr") or "lastConnection"
        if sort not in SORTS:
            raise ValidationFailed(f"sortAttr must be one of {', '.join(SORTS)}", field="sortAttr")
        direction = (params.get("sortDir") or ("desc" if sort == "lastConnection" else "asc")).lower()
        if direction not in ("asc", "desc"):
            raise ValidationFailed("sortDir must be asc or desc", field="sortDir")
        groups = params.get("groups") or ""
        if isinstance(groups, list):
            groups = ",".join(groups)
        quarantined = validation.boolean(params.get("quarantined"), field="quarantined", default=False)
        return cls(page=page, per_page=per_page, sort=sort, descending=direction == "desc",
                   device_id=(params.get("deviceId") or "").strip().lower(),
                   name=(params.get("deviceName") or "").strip(), serial=(params.get("serialNumber") or "").strip(),
                   groups=sorted({g.strip() for g in groups.split(",") if g.strip()}), quarantined=quarantined)

    @property
    def filtered(self) -> bool:
        return bool(self.device_id or self.name or self.serial or self.groups)


@dataclass
class DevicePage(Page):
    """A page of the fleet list: the devices (`rows`) and the groups of each, by device id."""

    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def devices(self) -> list[Device]:
        return self.rows


# --- the product device list -------------------------------------------------------------------------------
#
# Every filter is answered one of two ways, chosen per request (bench/search.py times both on 1,000,000
# devices, bench/README.md has the figures):
#
# - walk: read the sort index in order, testing each row, until the page is full. The sort indexes carry the
#   name (PostgreSQL), so this reads no table rows: ~0.3 µs a row. Fast when matches are common; when few or
#   none match it would read the whole fleet, so it stops after WALK_ROWS rows.
# - gather: every match from the filter's own index (name pieces, id or serial prefix, group membership),
#   then sort those. Fast when matches are few, and it counts them exactly as it goes.
#
# A walk that fills its page within WALK_ROWS rows answers; otherwise matches are rare (fewer than the page
# in WALK_ROWS rows) and the list gathers them. Group sizes are stored, so a group filter picks at once.

WALK_ROWS = 10_000  # about 4 ms of index walk; past it, a term matches under 0.25% of a 1M fleet
WALK_SAMPLE = 100  # matches a walk reads (beyond the page) to estimate the total
PROBE_WALK_ROWS = 4_000  # a walk that probes another table per row (serials; groups on SQLite) costs ~1.5 µs a row
LONG_WALK_ROWS = 20_000  # the longest walk sized by a known share (groups, id prefix) for a deeper page
# A walk that tests every row on its index entry alone (an id prefix; a group on PostgreSQL, migration 0017)
# costs ~0.2 µs a row, a gathered match ~3.4 µs (its table row is read, then sorted): such a walk may read
# SHARE_WALK_RATIO times as many rows as the gather's matches, up to SHARE_WALK_ROWS (~80 ms).
SHARE_WALK_RATIO = 15
SHARE_WALK_ROWS = 400_000
# A name walk tests the name on every row (~0.5 µs) and probes groups or serials only where it matches; a
# gathered name match costs ~4 µs (its table row is read to recheck it): a walk is worth five times as many
# rows as the gather's matches, up to NAME_WALK_ROWS.
NAME_WALK_RATIO = 5
NAME_WALK_ROWS = 100_000
QUARANTINE_COUNT_CAP = 20_000  # past this a quarantine total is "at least", counted no further
# Deep pages of a big list read its marks (PostgreSQL, devices/selectors/listmarks.py) instead of OFFSET rows:
# an unfiltered page this many rows from the nearer end of the list, a page of one group this many rows in.
MARK_OFFSET = 10_000
MARK_GROUP_OFFSET = 1_000

# sortAttr: (ORDER BY descending, ORDER BY ascending, what a derived table selects besides the id to keep that
# order), each a forward or backward scan of one index. `x.` is the walk's or the gather's row; `{key}` is the
# name sort's key (_order).
SORT_SQL = {
    "lastConnection": ("x.last_heard DESC NULLS LAST, x.id ASC", "x.last_heard ASC NULLS FIRST, x.id DESC",
                       "x.last_heard"),
    "deviceName": ("{key} DESC, x.id DESC", "{key} ASC, x.id ASC", "{key} AS sort_key"),
    "deviceId": ("x.id DESC", "x.id ASC", ""),
    "firmwareVersion": ("x.firmware_version DESC NULLS FIRST, x.id DESC",
                        "x.firmware_version ASC NULLS LAST, x.id ASC", "x.firmware_version"),
}
# The name sort's key: the name's ASCII lower case, compared code point by code point (migration 0016), as
# dev_prod_name is written. A derived table carries it as a column, `sort_key`, so its order is known.
NAME_KEY_SQL = {vendor: key.replace("name", "x.name") for vendor, key in _sort_index.NAME_KEY.items()}


def _order(q: DeviceListQuery, *, forward: bool = True, derived: bool = False) -> str:
    """ORDER BY of the list (its reverse when not `forward`) over a device row `x`, or over a derived table's
    row that carries the name key as `sort_key`."""
    order = SORT_SQL[q.sort][0 if q.descending == forward else 1]
    return order.format(key="x.sort_key" if derived else NAME_KEY_SQL[connection.vendor])


def _sort_columns(q: DeviceListQuery) -> list[str]:
    """What a derived table selects besides the id for its rows to be put in the list's order."""
    column = SORT_SQL[q.sort][2]
    return [column.format(key=NAME_KEY_SQL[connection.vendor])] if column else []


NAME_SAMPLE = 2_000  # names of the list read (index-only, ~1 ms) to guide a name search's plan
NAME_SAMPLE_SECONDS = 600.0  # how long a process keeps a product's sample
NAME_SAMPLE_SEEKS = 100  # the sample is this many runs of consecutive ids, each from a random id
NAME_SAMPLE_PRODUCTS = 200  # samples a process keeps at most (then it starts afresh)
NAME_GRAMS = 3  # trigrams of a name term given to the trigram index: the sample's rarest


@dataclass
class _NameSample:
    names: list[str]  # upper-cased
    grams: Counter  # in how many of the names each of pg_trgm's trigrams occurs
    tail_grams: Counter  # the same for the names without their first character (dev_name_tail_trgm)
    taken: float


_name_samples: dict[tuple, _NameSample] = {}


def _name_sample(product: Product) -> _NameSample:
    """About NAME_SAMPLE names of the list (all of them in a smaller list): NAME_SAMPLE_SEEKS runs of
    consecutive ids, each from a random point between the list's lowest and highest id, so names that follow
    the ids (a fleet named in manufacturing order) are sampled across the fleet, not from its first ids; the
    points are seeded by the product, so every process samples alike and picks the same plans. Kept
    NAME_SAMPLE_SECONDS per process. It only chooses plans, never rows: a sample gone stale costs speed, not
    correctness."""
    key = (product.pk, product.created_at)
    now = time.monotonic()
    kept = _name_samples.get(key)
    if kept is not None and now - kept.taken < NAME_SAMPLE_SECONDS:
        return kept
    where = "x.product_id = %s AND x.quarantined = %s AND NOT x.denied"
    if product.device_count <= NAME_SAMPLE:
        rows = _rows(f"SELECT x.name FROM devices_device x WHERE {where} LIMIT %s", [product.pk, False, 2 * NAME_SAMPLE])
    else:
        low, high = _rows(f"SELECT min(x.id), max(x.id) FROM devices_device x WHERE {where}", [product.pk, False])[0]
        rows = []
        if low is not None and is_device_id(low) and is_device_id(high):
            rng = random.Random(product.pk)  # the same sample in every process: the same plans
            points = sorted(f"{rng.randrange(int(low, 16), int(high, 16) + 1):024x}" for _ in range(NAME_SAMPLE_SEEKS))
            each = NAME_SAMPLE // NAME_SAMPLE_SEEKS
            part = (f"SELECT * FROM (SELECT x.name FROM devices_device x WHERE {where} AND x.id >= %s "
                    f"ORDER BY x.id ASC LIMIT {each}) s")
            rows = _rows(" UNION ALL ".join([part] * len(points)),
                         [v for point in points for v in (product.pk, False, point)])
    names = [r[0].upper() for r in rows]
    grams: Counter = Counter()
    tail_grams: Counter = Counter()
    for name in names:
        grams.update(_trigrams(name))
        tail_grams.update(_trigrams(name[1:]))
    if len(_name_samples) >= NAME_SAMPLE_PRODUCTS:  # about 150 KB each: bounded per process
        _name_samples.clear()
    kept = _name_samples[key] = _NameSample(names, grams, tail_grams, now)
    return kept


_ALNUM = re.compile(r"[A-Z0-9]+")


def _trigrams(name: str) -> set[str]:
    """pg_trgm's trigrams of an (upper-cased) name: each word (a run of letters and digits) padded with two
    spaces before and one after."""
    out = set()
    for word in _ALNUM.findall(name):
        padded = f"  {word} "
        out.update(padded[i:i + 3] for i in range(len(padded) - 2))
    return out


def _term_pieces(term: str) -> dict[str, str]:
    """{trigram: the shortest piece of `term` whose LIKE '%piece%' makes pg_trgm look that trigram up}. A
    term's first and last words meet its wildcards, so they are not padded there; a word beside a space or
    punctuation inside the term is, and such a word-start or word-end trigram is often the rarest (a fleet's
    `sensor_9…`: every name has "SEN", a twelfth of them a word starting "9"). Empty for a term with a
    non-ASCII character, whose words pg_trgm and this code might split differently."""
    up = term.upper()
    if not up.isascii():
        return {}
    pieces: dict[str, str] = {}
    for run in _ALNUM.finditer(up):
        word, start, end = run.group(), run.start(), run.end()
        for i in range(len(word) - 2):
            pieces.setdefault(word[i:i + 3], word[i:i + 3])
        if start > 0:  # a separator before it, inside the term: "  W" and " WO"
            pieces.setdefault(f"  {word[0]}", up[start - 1:start + 1])
            if len(word) >= 2:
                pieces.setdefault(f" {word[:2]}", up[start - 1:start + 2])
        if end < len(up) and len(word) >= 2:  # a separator after it: "RD "
            pieces.setdefault(f"{word[-2:]} ", up[end - 2:end + 1])
    return pieces


def _name_rate(product: Product, term: str) -> float | None:
    """The share of the sample's names that hold `term` (None for a product without devices)."""
    sample = _name_sample(product)
    up = term.upper()
    return _sample_share(sample, lambda name: up in name) if sample.names else None


def _sample_share(sample: _NameSample, test) -> float:
    """The share of the sample's (upper-cased, non-empty list of) names for which `test` holds."""
    return sum(map(test, sample.names)) / len(sample.names)


def _rare_grams(product: Product, term: str, *, tail: bool = False) -> list[str]:
    """Pieces of `term` for the trigram index: the one whose trigram the sample's names hold least often, and
    up to NAME_GRAMS - 1 more whose trigrams are in at most a twentieth of them. Given to the index instead of
    the whole term, they keep it from reading the long lists of the trigrams every name shares (a fleet's
    common prefix), while the full condition still decides each row. Empty when the term has no trigram. With
    `tail`, ranked by the names without their first character (dev_name_tail_trgm's)."""
    pieces = _term_pieces(term)
    if not pieces:
        return []
    sample = _name_sample(product)
    counts = sample.tail_grams if tail else sample.grams
    ranked = sorted(pieces, key=lambda g: (counts[g], g))
    # The rarest always; the next ones only while they are rare too (a trigram in most names adds its long
    # list to what the index reads and removes hardly a row).
    few = max(1, len(sample.names) // 20)
    chosen = list(dict.fromkeys(pieces[g] for g in ranked[:1] + [g for g in ranked[1:NAME_GRAMS] if counts[g] <= few]))
    # A piece inside another chosen one adds nothing: the longer one looks its trigrams up too.
    return [p for p in chosen if not any(p != other and p in other for other in chosen)]


def _like_prefix(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class _Filters:
    """The list's WHERE clause, as SQL over `x` (a device row) with its parameters."""

    sql: list[str] = field(default_factory=list)
    params: list = field(default_factory=list)

    def add(self, sql: str, *params) -> None:
        self.sql.append(sql)
        self.params.extend(params)

    def where(self) -> str:
        return " AND ".join(self.sql) if self.sql else "TRUE"


def _known_matches(product: Product, q: DeviceListQuery, groups: list[DeviceGroup] | None, driver: str) -> float:
    """At most how many devices the driver can match, where that is known without reading them."""
    if driver == "groups":
        return sum(g.device_count for g in groups)
    if driver == "id":
        return 1 if len(q.device_id) == 24 else product.device_count / 16 ** len(q.device_id)
    return float("inf")


def _serial_matches(serial: str, cap: int) -> float:
    """How many serial numbers start with `serial`, counted in the serial index up to `cap` (inf past it):
    every tenant's, so an upper bound for one product. A walk probes the serial table once per row it reads
    (~6 µs), so a prefix that matches few is gathered through this index instead of walked (bench/README.md)."""
    found = _rows(f"SELECT count(*) FROM (SELECT 1 FROM devices_serialnumber s WHERE s.serial LIKE %s ESCAPE '\\' "
                  f"LIMIT {int(cap) + 1}) s", [_like_prefix(serial.upper())])[0][0]
    return float("inf") if found > cap else found


def _driver(product: Product, q: DeviceListQuery, groups: list[DeviceGroup] | None,
            serials: float | None = None) -> str:
    """Which filter's index a gather starts from: the one expected to match least. Group sizes are stored and
    ids are random hex (a prefix of n digits matches 1/16^n of them); a serial prefix's matches are counted
    when the caller did (`serials`); names and serials are read from their indexes when nothing smaller is
    known."""
    known = {}
    if groups is not None:
        known["groups"] = _known_matches(product, q, groups, "groups")
    if q.device_id:
        known["id"] = _known_matches(product, q, groups, "id")
    if serials is not None:
        known["serial"] = serials
    smallest = min(known, key=known.get) if known else ""
    if smallest and (known[smallest] <= WALK_ROWS or not (q.name or q.serial)):
        return smallest
    return "name" if q.name else "serial" if q.serial else smallest


def _filters(product: Product, q: DeviceListQuery, groups: list[DeviceGroup] | None, *, driver: str = ""
             ) -> _Filters:
    """The filters as SQL over `x`. The `driver` (a gather's) is written for its index: a semi-join for
    groups and serials, the name-piece conditions for a name. Every other filter is tested row by row as a
    walk tests it: the serial probe, and on SQLite the group probe, carry a LIMIT so they run per row (an index
    probe) instead of hashing every match first; on PostgreSQL a group is tested on the device's `group_ids`."""
    f = _Filters()
    pg = connection.vendor == "postgresql"
    if q.device_id:
        if len(q.device_id) == 24:
            f.add("x.id = %s", q.device_id)
        else:
            f.add("x.id LIKE %s ESCAPE '\\'", _like_prefix(q.device_id))
    if q.name:
        pattern = "%" + _like_prefix(q.name)
        # Case-insensitive for ASCII letters, as SQLite's LIKE is: upper() in the "C" collation costs a third
        # of the database default's, and the walk applies it to every row it reads.
        f.add("x.name <> '' AND upper(x.name COLLATE \"C\") LIKE upper(%s COLLATE \"C\") ESCAPE '\\'"
              if pg else "x.name <> '' AND x.name LIKE %s ESCAPE '\\'", pattern)
        if driver == "name" and pg and len(q.name) <= 2:
            # Exactly "the term is in the name" (migration 0013): the trigram index cannot serve so short a term.
            f.add("cyan_short_grams(x.product_id, upper(x.name::text)) @> ARRAY[%s || ':' || upper(%s)]",
                  str(product.pk), q.name)
        elif driver == "name" and pg:
            # The trigram index's own conditions (the default collation's upper() maps more letters, so they
            # keep every row the condition above keeps): the term's rarest trigrams, or the whole term.
            for piece in _rare_grams(product, q.name) or [q.name]:
                f.add("upper(x.name::text) LIKE upper(%s) ESCAPE '\\'", "%" + _like_prefix(piece))
    if q.serial:
        serial = _like_prefix(q.serial.upper())
        if driver == "serial":
            f.add("x.id IN (SELECT s.device_id FROM devices_serialnumber s WHERE s.serial LIKE %s ESCAPE '\\')",
                  serial)
        else:
            f.add("(SELECT 1 FROM devices_serialnumber s WHERE s.device_id = x.id AND s.serial LIKE %s "
                  "ESCAPE '\\' LIMIT 1) IS NOT NULL", serial)
    if groups is not None:
        ids = [g.pk for g in groups] or [0]
        marks = ", ".join(["%s"] * len(ids))
        if driver == "groups":
            f.add(f"x.id IN (SELECT m.device_id FROM devices_devicegroupmembership m WHERE m.group_id IN ({marks}))",
                  *ids)
        elif pg:
            # The device's own copy of its groups (migration 0017), which the sort indexes carry: a walk tests
            # it on the index entry, with no probe.
            f.add(f"x.group_ids && ARRAY[{marks}]::bigint[]", *ids)
        else:
            f.add(f"(SELECT 1 FROM devices_devicegroupmembership m WHERE m.device_id = x.id AND m.group_id IN "
                  f"({marks}) LIMIT 1) IS NOT NULL", *ids)
    return f


def _groups(product: Product, q: DeviceListQuery) -> list[DeviceGroup] | None:
    if not q.groups:
        return None
    return list(DeviceGroup.objects.filter(product=product, name__in=q.groups))


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _walk(product: Product, q: DeviceListQuery, groups, *, window: int, want: int | None) -> list[str]:
    """Ids of the first `want` matches among the first `window` rows of the list in its order (all of them
    when `want` is None): one index range, read in order and never past `window`, so a filter that matches
    nothing costs `window` index entries, not the fleet."""
    f = _filters(product, q, groups)
    limit = "" if want is None else f" LIMIT {int(want)}"
    grouped = ["x.group_ids"] if groups is not None and connection.vendor == "postgresql" else []
    columns = ", ".join(dict.fromkeys(["x.id", "x.name", "x.product_id", *grouped, *_sort_columns(q)]))
    # The outer ORDER BY is the inner one, which PostgreSQL knows the rows already come in: it streams the
    # window through the filters and stops at the `want`-th match, with no sort. Where the walk ended is
    # counted afterwards when it is wanted (_position): numbering the rows here, row_number() over the window,
    # cost more than the walk itself (11 of 20 ms for 38,000 rows; bench/README.md).
    sql = (f"SELECT x.id FROM (SELECT {columns} FROM devices_device x WHERE x.product_id = %s AND x.quarantined = %s "
           f"AND NOT x.denied ORDER BY {_order(q)} LIMIT {int(window)}) x WHERE {f.where()} "
           f"ORDER BY {_order(q, derived=True)}{limit}")
    return [r[0] for r in _rows(sql, [product.pk, q.quarantined, *f.params])]


# Where a row is in the list's order, as conditions that each read one range of the sort index: sortAttr:
# (its column over a device row, or None for the id alone; in the descending list whether NULLs come first,
# and whether ties go by descending id). The ascending list is the same order reversed, so all three flip.
SORT_POSITION = {
    "lastConnection": ("last_heard", False, False),
    "deviceName": ("name", False, True),  # its key, the ASCII lower case (NAME_KEY_SQL)
    "deviceId": (None, False, True),
    "firmwareVersion": ("firmware_version", True, True),
}


def _position(product: Product, q: DeviceListQuery, device_id: str, window: int) -> int | None:
    """How many rows of the unfiltered list come before the device `device_id` and it, where a walk of `window`
    rows ended: a count of index entries (~0.1 µs each). The device's sort value is read in the same statement (`v`), and the
    conditions that do not apply to it (a NULL or not) are false once, not row by row."""
    column, nulls_first, id_descending = SORT_POSITION[q.sort]
    if not q.descending:
        nulls_first, id_descending = not nulls_first, not id_descending
    at_id = f"x.id {'>=' if id_descending else '<='} v.id"
    if column is None:
        parts = [at_id]
    else:
        def of(row: str) -> str:
            return NAME_KEY_SQL[connection.vendor].replace("x.", f"{row}.") if column == "name" else f"{row}.{column}"

        theirs = of("x")
        parts = [f"{theirs} IS NULL AND v.value IS NOT NULL" if nulls_first else
                 f"{theirs} IS NOT NULL AND v.value IS NULL",
                 f"{theirs} IS NULL AND v.value IS NULL AND {at_id}",
                 f"{theirs} {'>' if q.descending else '<'} v.value",
                 f"{theirs} = v.value AND {at_id}"]
    # Each count stops at the window: the device was in it, so no more rows come before it.
    base = "SELECT 1 FROM devices_device x WHERE x.product_id = %s AND x.quarantined = %s AND NOT x.denied"
    value = "" if column is None else f", {of('d')} AS value"
    counts = (f"(SELECT count(*) FROM ({base} AND {part} LIMIT {int(window)}) c)" for part in parts)
    sql = (f"SELECT {' + '.join(counts)} "
           f"FROM (SELECT d.id{value} FROM devices_device d WHERE d.id = %s) v")
    rows = _rows(sql, [*[product.pk, q.quarantined] * len(parts), device_id])
    return rows[0][0] if rows else None  # None: the device was deleted since the walk


def _gather(product: Product, q: DeviceListQuery, groups, *, offset: int, limit: int, serials: float | None = None
            ) -> tuple[list[str], int]:
    """One page of the matches, found through the filter's own index and sorted afterwards, and how many
    matches there are (exact: every one of them is read)."""
    f = _filters(product, q, groups, driver=_driver(product, q, groups, serials))
    # MATERIALIZED keeps PostgreSQL from folding the ORDER BY ... LIMIT back into the match query, where a walk
    # of the sort index (the plan this replaces) would look cheaper to it than it is.
    materialized = "MATERIALIZED " if connection.vendor == "postgresql" else ""
    columns = ", ".join(["x.id", *_sort_columns(q)])
    sql = (f"WITH x AS {materialized}(SELECT {columns} FROM devices_device x "
           f"WHERE x.product_id = %s AND x.quarantined = %s AND NOT x.denied AND {f.where()}) "
           f"SELECT x.id, count(*) OVER () FROM x ORDER BY {_order(q, derived=True)} LIMIT %s OFFSET %s")
    rows = _rows(sql, [product.pk, q.quarantined, *f.params, limit, offset])
    if rows:
        return [r[0] for r in rows], rows[0][1]
    if offset == 0:
        return [], 0
    total = _rows(f"SELECT count(*) FROM devices_device x WHERE x.product_id = %s AND x.quarantined = %s AND NOT "
                  f"x.denied AND {f.where()}", [product.pk, q.quarantined, *f.params])[0][0]
    return [], total


def _plain(product: Product, q: DeviceListQuery, *, offset: int, limit: int, population: int | None
           ) -> list[str]:
    """A page of the unfiltered list: its ids off the sort index (index-only), OFFSET rows in. A B-tree
    cannot skip to the n-th entry, so an OFFSET costs n entries (~0.17 µs each); past the middle of a list of
    known length the index is read from the other end, which makes the last pages as cheap as the first."""
    if population is not None and offset >= population:
        return []
    if population is not None and offset + limit > population // 2 and offset < population:
        # The same rows, counted from the end: the opposite order, reversed back here.
        backward_offset = max(population - offset - limit, 0)
        backward_limit = population - offset - backward_offset
        order = _order(q, forward=False)
        offset, limit = backward_offset, backward_limit
    else:
        order, population = _order(q), None
    sql = (f"SELECT x.id FROM devices_device x WHERE x.product_id = %s AND x.quarantined = %s AND NOT x.denied "
           f"ORDER BY {order} LIMIT %s OFFSET %s")
    ids = [r[0] for r in _rows(sql, [product.pk, q.quarantined, limit, offset])]
    return ids[::-1] if population is not None else ids


def _population(product: Product, q: DeviceListQuery) -> tuple[int, bool]:
    """How many rows the unfiltered list has: the stored member count, or the quarantine counted up to a
    cap (True when there are more)."""
    if not q.quarantined:
        return product.device_count, False
    return quarantine_count(product, cap=QUARANTINE_COUNT_CAP)


# A name search sorted by name (PostgreSQL). Its matches are the names that start with the term, which are one
# range of dev_prod_name however many they are (the sort key is the name's ASCII lower case), and the names
# that hold it further in, which dev_name_tail_trgm finds. When the sample says the second kind is few, the page
# is the first rows of the range merged with all of those: a fleet named `sensor_…` searched for `sensor_9`
# no longer reads the 9/16 of its names that sort before the range, or gathers the 1/16 that match.
TAIL_GATHER_MAX = 3_000  # expected names that hold the term past their start (~3 µs each, gathered)
TAIL_READ_MAX = 4 * TAIL_GATHER_MAX  # read at most, when the sample expected fewer
HEAD_ROWS_MAX = 20_000  # the deepest row of the range a page may need (page 800 of 25): deeper, the usual plan
HEAD_COUNT_CAP = 20_000  # names starting with the term counted exactly (index-only, ~0.1 µs each); past it, estimated


@functools.cache
def _has_tail_index() -> bool:
    """Whether migration 0016 made dev_name_tail_trgm (it needs pg_trgm and btree_gin)."""
    return bool(_rows("SELECT 1 FROM pg_indexes WHERE indexname = 'dev_name_tail_trgm'", []))


def _head_range(term: str) -> tuple[str, str]:
    """The name keys that start with `term` (ASCII, lower case): [term, the next string of its length)."""
    return term, term[:-1] + chr(ord(term[-1]) + 1)


def _name_sorted(product: Product, q: DeviceListQuery, *, offset: int, limit: int, population: int
                 ) -> tuple[list[str], int, bool, bool] | None:
    """The page of a name search sorted by name, as the range of names that start with the term merged with
    the names that hold it further in; None where this plan does not apply or the sample says the second kind
    is many. The total is exact up to HEAD_COUNT_CAP names starting with the term, else an estimate."""
    term, lowered = q.name.upper(), q.name.lower()  # the sample's names are upper case, the sort key lower
    if connection.vendor != "postgresql" or not q.name.isascii() or len(term) < 3 or not _has_tail_index():
        return None
    sample = _name_sample(product)
    pieces = _rare_grams(product, q.name, tail=True)
    if not sample.names or not pieces:
        return None
    tail_rate = _sample_share(sample, lambda name: term in name[1:])
    need = offset + limit
    if tail_rate * population > TAIL_GATHER_MAX or need > HEAD_ROWS_MAX:
        return None  # many hold the term further in, or a page so deep the range's rows would be many
    key = NAME_KEY_SQL["postgresql"]
    listed = "x.product_id = %s AND x.quarantined = %s AND NOT x.denied"
    low, high = _head_range(lowered)
    head = _rows(f"SELECT x.id, {key} FROM devices_device x WHERE {listed} AND {key} >= %s AND {key} < %s "
                 f"ORDER BY {_order(q)} LIMIT %s", [product.pk, False, low, high, need])
    heads = len(head) if len(head) < need else _rows(
        f"SELECT count(*) FROM (SELECT 1 FROM devices_device x WHERE {listed} AND {key} >= %s AND {key} < %s "
        f"LIMIT {HEAD_COUNT_CAP + 1}) x", [product.pk, False, low, high])[0][0]
    # The index's conditions (the term's rarest trigrams in the names' tails), then the exact one.
    tail_sql = " AND ".join(["substr(upper(x.name::text), 2) LIKE %s ESCAPE '\\'"] * len(pieces))
    # Read no more than TAIL_READ_MAX of them: a sample that missed a clump of them gives way to the usual plan.
    tail = _rows(f"SELECT x.id, {key} FROM devices_device x WHERE {listed} AND x.name <> '' AND {tail_sql} "
                 f"AND substr({key}, 2) LIKE %s ESCAPE '\\' LIMIT {TAIL_READ_MAX + 1}",
                 [product.pk, False, *["%" + _like_prefix(p) for p in pieces], "%" + _like_prefix(lowered)])
    if len(tail) > TAIL_READ_MAX:
        return None
    merged = dict(head)
    merged.update(tail)
    # Python compares strings by code point, as the "C" collation does.
    ordered = sorted(merged.items(), key=lambda r: (r[1], r[0]), reverse=q.descending)
    tails_only = sum(not k.startswith(lowered) for _, k in tail)
    estimated = heads > HEAD_COUNT_CAP
    if estimated:
        heads = max(heads, round(population * _sample_share(sample, lambda name: name.startswith(term))))
    return [i for i, _ in ordered[offset:need]], heads + tails_only, estimated, False


def _marked(product: Product, q: DeviceListQuery, groups, *, offset: int, limit: int, population: int
            ) -> tuple[list[str], int, bool, bool] | None:
    """A deep page of the unfiltered list, or of one group alone, read through the list's marks; None where
    they do not apply or the product has none. The whole list's total is the stored member count, and the
    marks must agree with it (they count the same rows; a write between the two reads makes them differ, and
    the page is read by OFFSET); a group's total is its marks' count, exact."""
    if connection.vendor != "postgresql" or q.quarantined or q.device_id or q.name or q.serial:
        return None
    if groups is None:
        if min(offset, population - offset - limit) < MARK_OFFSET:
            return None
        group_id = None
    elif len(groups) == 1 and offset >= MARK_GROUP_OFFSET:
        group_id = groups[0].pk
    else:
        return None
    forward = not q.descending  # the ascending list
    found = listmarks.marked_page(product.pk, q.sort, q.descending, group_id, offset=offset, limit=limit,
                                  order_asc=_order(q, forward=forward),
                                  order_asc_derived=_order(q, forward=forward, derived=True),
                                  sort_columns=_sort_columns(q))
    if found is None or (group_id is None and found[1] != population):
        return None
    return found[0], found[1], False, False


def _page_ids(product: Product, q: DeviceListQuery, groups) -> tuple[list[str], int, bool, bool]:
    """(ids of the page, total, estimated, capped)."""
    offset, limit = (q.page - 1) * q.per_page, q.per_page
    need = offset + limit
    population, capped = _population(product, q)
    if (marked := _marked(product, q, groups, offset=offset, limit=limit, population=population)) is not None:
        return marked
    if not q.filtered:
        # The stored member count moves with every write in the same transaction, so it can say where the
        # end is; a capped quarantine count cannot.
        return (_plain(product, q, offset=offset, limit=limit, population=None if capped else population),
                population, False, capped)
    # A serial, and on SQLite a group, is probed in its own table for every row a walk reads.
    probes = bool(q.serial or (groups is not None and connection.vendor != "postgresql"))
    window = whole = max(PROBE_WALK_ROWS if probes else WALK_ROWS, 2 * need)
    if (q.sort == "deviceName" and q.name and not (q.device_id or q.serial or groups is not None or q.quarantined)
            and population > whole
            and (page := _name_sorted(product, q, offset=offset, limit=limit, population=population)) is not None):
        return page
    # Filters whose share of the list is known without reading it: the groups' stored sizes and an id prefix
    # (ids are random hex: n digits match 1/16^n). With only those, the walk is sized to where the page should
    # fill (with half again to spare, up to LONG_WALK_ROWS), or skipped for the gather when that is further.
    known = 1.0
    if groups is not None:
        known *= min(1.0, sum(g.device_count for g in groups) / max(population, 1))
    if q.device_id:
        known *= 1 / max(population, 1) if len(q.device_id) == 24 else 16.0 ** -len(q.device_id)
    share = None
    if not (q.name or q.serial):
        share = known
        span = 1.5 * need / share if share else float("inf")
        # Past the end of the list the page is not expected to fill at all: few match, and the gather is cheap.
        # A walk that reads the index alone may go further, while it reads fewer rows than SHARE_WALK_RATIO
        # times the matches the gather would.
        longest = LONG_WALK_ROWS if probes else max(LONG_WALK_ROWS, min(SHARE_WALK_ROWS,
                                                                        SHARE_WALK_RATIO * known * population))
        window = max(window, math.ceil(span)) if span <= min(longest, population) else 0
    elif q.serial and not q.name and known < 1.0:
        # A serial prefix only narrows what the groups and id prefix match: when even their share would not
        # fill the page within LONG_WALK_ROWS, no walk would, and the gather starts at once.
        span = 1.5 * need / known if known else float("inf")
        if span > min(LONG_WALK_ROWS, population):
            window = 0
    elif q.name and not q.quarantined and population > whole:
        # How often the term occurs in a sample of the list's names, times the known share of the other
        # filters: the walk is sized to where the page should fill, as for a known share, or skipped for the
        # gather. Only rows whose name matches are probed for a group or serial, so such a walk costs about
        # what a walk on the name alone does.
        rate = _name_rate(product, q.name)
        if rate is not None:
            # Twice the expected span: a sampled rate is less sure than a stored group size. The walk may go
            # further than for a group alone while it reads fewer rows than NAME_WALK_RATIO times what the
            # gather would (the smaller of the name's and the known filters' matches).
            span = 2.0 * need / (rate * known) if rate * known else float("inf")
            gathered = population * min(rate, known)
            longest = min(population, max(LONG_WALK_ROWS, min(NAME_WALK_ROWS, NAME_WALK_RATIO * gathered)))
            window = max(window, math.ceil(span)) if span <= longest else 0
    # Too few serials start so for the page to fill within the window (counted only that far): gather them.
    serials = (_serial_matches(q.serial, cap=need * population // window if window else WALK_ROWS)
               if q.serial and not q.name else None)
    if serials is not None and (serials == 0 or need * population > window * serials):
        window = 0
    if window and population <= whole and not capped:
        # The window holds the whole list: walk all of it, and the count is exact.
        hits = _walk(product, q, groups, window=whole, want=None)
        return hits[offset:need], len(hits), False, False
    if window and share is not None:
        # The page alone is walked for, and the total is the known share of the list: an estimate (group
        # members may be quarantined, denied or in two of the groups; ids are only expected to spread evenly).
        hits = _walk(product, q, groups, window=window, want=need)
        if len(hits) >= need:
            return hits[offset:need], max(need, min(population, round(population * share))), True, False
    elif window:
        hits = _walk(product, q, groups, window=window, want=max(need, WALK_SAMPLE))
        if len(hits) >= need:
            # The sample's rate of matches over the list (the position of the last match read, or the whole
            # window when fewer than the sample matched): an estimate, and said to be one.
            read = window
            if len(hits) == max(need, WALK_SAMPLE):
                # Never fewer rows than matches: the last match's sort value may have moved since the walk
                # (a device heard again jumps to the top of the last-connection order).
                read = max(len(hits), min(window, _position(product, q, hits[-1], window) or window))
            total = max(len(hits), round(len(hits) * population / read))
            return hits[offset:need], total, True, False
    ids, total = _gather(product, q, groups, offset=offset, limit=limit, serials=serials)
    return ids, total, False, False


def product_device_page(*, product: Product, query: DeviceListQuery, shown: tuple[str, ...] | None = None
                        ) -> DevicePage:
    """One page of a product's device list: the page's ids (one query, or a walk that found too few and then
    the gather; for a name search sorted by name, the range of names starting with the term, its count, and
    the names holding it further in), the rows, their groups. So three device queries, four after a walk that
    gave way or one sized by a sampled rate (where it ended is counted for the estimate), five for a name-sorted
    name search; and the group names when filtered by group, and the name
    sample when this process has none for the product (one query; two past NAME_SAMPLE devices: the id range,
    then the runs). The total is the stored count, an exact count of gathered matches, or an estimate (marked).
    `shown` names the only fields a caller reads (the owner's and customer's as `owner__email`...), as the
    console's list does: whole rows with their platform and SIM cost twice as much to read and build."""
    groups = _groups(product, query)
    ids, total, estimated, capped = _page_ids(product, query, groups)
    # No ORDER BY (the page's order is the ids'): Django's ordering step costs more than the query here.
    # The product again: a device moved to another product between the two queries is not shown.
    found = Device.objects.filter(id__in=ids, product_id=product.pk).order_by()
    if shown is None:
        found = found.select_related("owner", "customer", "platform", "sim")
    else:
        found = found.select_related(*{f.rsplit("__", 1)[0] for f in shown if "__" in f}).only(*shown)
    rows = {d.id: d for d in found} if ids else {}
    devices = [rows[i] for i in ids if i in rows]
    return DevicePage(rows=devices, total=total, estimated=estimated, capped=capped, page=query.page,
                      per_page=query.per_page, groups=groups_of(ids) if ids else {})


EXPORT_WINDOW = 50_000  # id-index entries an export query reads; its matches are loaded 1,000 at a time
EXPORT_GATHER = 50_000  # a name or serial export gathers its ids at once when no more than this many match
EXPORT_ROWS_AT_ONCE = 5_000  # PostgreSQL: so few matches are read whole by the gathering query (~2 MB)


def _export_gathered(product: Product, query: DeviceListQuery, groups, size: int, names: GroupNamer):
    """The export's batches in id order when its matches are known to be few, found through the driving
    filter's index; None when they may be many (then the export reads the id index window by window). On
    PostgreSQL a driver not expected to match more than EXPORT_ROWS_AT_ONCE (its known size, the name
    sample's rate; a serial prefix is not known) has them read whole by that one query, which visits their
    rows anyway; more are gathered as ids and read a batch at a time."""
    driver = _driver(product, query, groups)
    expected = _known_matches(product, query, groups, driver)
    if driver in ("groups", "id") and expected <= WALK_ROWS:
        cap = WALK_ROWS  # a small group or a long id prefix: stored or known sizes
    elif driver in ("name", "serial"):
        cap = EXPORT_GATHER  # looked up in the name-piece or serial index, and given up past the cap
        if driver == "name":
            rate = _name_rate(product, query.name)
            expected = product.device_count * rate if rate is not None else 0
    else:
        return None
    g = _filters(product, query, groups, driver=driver)
    where = f"x.product_id = %s AND x.quarantined = %s AND NOT x.denied AND {g.where()}"
    params = [product.pk, query.quarantined, *g.params]
    # Ids are lowercase hex in the "C" collation: Python's string order is the database's.
    if connection.vendor == "postgresql" and (expected <= EXPORT_ROWS_AT_ONCE or driver == "serial"):
        rows = _rows(f"{_export_select()} WHERE {where} LIMIT {int(EXPORT_ROWS_AT_ONCE) + 1}", params)
        if len(rows) <= EXPORT_ROWS_AT_ONCE:
            return _export_row_batches(names, sorted(rows), size) if len(rows) <= cap else None
    found = [r[0] for r in _rows(f"SELECT x.id FROM devices_device x WHERE {where} LIMIT {int(cap) + 1}", params)]
    return _export_rows(product, query, sorted(found), size, names) if len(found) <= cap else None


class ExportRow(NamedTuple):
    """What an export line shows of a device (devices/web/devices.py, EXPORT_HEADER). Read as plain values: a
    whole device row decodes five timestamps and three JSON fields into a model, which was most of an
    export's time (bench/search.py, export q=ab1)."""

    id: str
    name: str
    serial_number: str | None
    owner_email: str | None
    customer_email: str | None
    firmware_version: int | None
    last_heard: str  # ISO 8601 as datetime.isoformat() writes it in UTC, "" if never heard
    online: bool
    development: bool
    groups: Sequence[str]  # in the database's order of names


EXPORT_FIELDS = ("id", "name", "serial_number", "owner__email", "customer__email", "firmware_version", "last_heard",
                 "online", "development")


def _export_rows(product: Product, query: DeviceListQuery, ids: list[str], size: int, names: GroupNamer):
    """The ExportRows of `ids` (in that order, those still in the list: a device moved to another product,
    quarantined or denied since the ids were read is left out), `size` at a time. PostgreSQL reads each batch
    in one statement, with the groups from the rows' `group_ids` and the ids as one array: a 1,000-entry IN
    list cost more to build and bind than to run, and the membership join as much again (bench/search.py,
    export q=ab1)."""
    pg = connection.vendor == "postgresql"
    for start in range(0, len(ids), size):
        batch = ids[start:start + size]
        if pg:
            found = {r[0]: r for r in _rows(f"{_export_select()} WHERE x.id = ANY(%s) AND x.product_id = %s "
                                            "AND x.quarantined = %s AND NOT x.denied",
                                            [batch, product.pk, query.quarantined])}
            yield from _export_row_batches(names, [found[i] for i in batch if i in found], size)
            continue
        rows = {r[0]: r for r in Device.objects.filter(id__in=batch, product_id=product.pk, denied=False,
                                                       quarantined=query.quarantined)
                .values_list(*EXPORT_FIELDS).order_by()}
        groups = groups_of(batch)
        yield [ExportRow(*r[:6], r[6].isoformat() if r[6] else "", *r[7:], groups[i])
               for i in batch if (r := rows.get(i)) is not None]


def _export_row_batches(names: GroupNamer, rows: list[tuple], size: int):
    """Rows of _export_select (PostgreSQL), `size` at a time, as ExportRows with their group names."""
    for start in range(0, len(rows), size):
        yield [ExportRow(*r[:-1], names(r[-1])) for r in rows[start:start + size]]


@functools.cache
def _export_select() -> str:
    """EXPORT_FIELDS and the device's group ids, as one statement's columns (PostgreSQL)."""
    users, customers = User._meta.db_table, Customer._meta.db_table
    return ("SELECT x.id, x.name, x.serial_number, o.email, c.email, x.firmware_version, "
            f"{_ISO_UTC.format('x.last_heard')}, x.online, x.development, x.group_ids FROM devices_device x "
            f"LEFT JOIN {users} o ON o.id = x.owner_id LEFT JOIN {customers} c ON c.id = x.customer_id")


# A timestamp as Python's isoformat() writes an aware UTC datetime (microseconds only when there are some), ""
# for NULL: formatted by PostgreSQL, as decoding and formatting a datetime per row was a fifth of an export.
_ISO_UTC = ("""coalesce(to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN """
            "date_trunc('second', {0}) = {0} THEN '' ELSE "
            "to_char({0} AT TIME ZONE 'UTC', '.US') END || '+00:00', '')")


def product_device_batches(*, product: Product, query: DeviceListQuery, size: int = 1000):
    """Every device of the filtered list (as ExportRows), in id order, at most `size` at a time. A filter whose matches are
    few (a small group, a long id prefix, a rare name or serial prefix: up to EXPORT_GATHER ids) is gathered
    through its own index at once. Otherwise each query reads the next EXPORT_WINDOW entries of the id index
    after the last one read (keyset, never an OFFSET) and returns the matches among them, so no query reads
    more than a window however few devices match, the whole export reads the index once, and memory holds
    one window's ids and one batch of rows."""
    groups = _groups(product, query)
    names = group_namer(product)
    gathered = _export_gathered(product, query, groups, size, names)
    if gathered is not None:
        yield from gathered
        return
    f = _filters(product, query, groups)
    # Each window's matches, and its last id even when that one does not match (where the next window starts).
    # The window is read once (MATERIALIZED) and each filter tested once per row.
    pg = connection.vendor == "postgresql"
    materialized = "MATERIALIZED " if pg else ""
    grouped = ", x.group_ids" if pg and groups is not None else ""
    sql = (f"WITH w AS {materialized}(SELECT x.id, x.name, x.product_id{grouped} FROM devices_device x WHERE x.product_id = %s "
           f"AND x.quarantined = %s AND NOT x.denied AND x.id > %s ORDER BY x.id LIMIT {EXPORT_WINDOW}) "
           f"SELECT t.id, t.hit FROM (SELECT x.id, CASE WHEN {f.where()} THEN 1 ELSE 0 END AS hit FROM w x) t "
           f"WHERE t.hit = 1 OR t.id = (SELECT max(id) FROM w) ORDER BY t.id")
    last = ""
    while True:
        window = _rows(sql, [product.pk, query.quarantined, last, *f.params])
        if not window:
            return
        last = window[-1][0]
        yield from _export_rows(product, query, [r[0] for r in window if r[1]], size, names)


DEVICE_RELATED = ("owner", "customer", "platform", "product", "product__account", "sim")


@functools.cache
def _device_by_id(related: tuple[str, ...], product: bool) -> Prepared:
    """A device by id, with these relations, within a product or not: compiled once per shape
    (console/prepared.py), because every call, variable read and device page starts with it."""
    if product:
        return Prepared(lambda p: Device.objects.select_related(*related)
                        .filter(product_id=p.integer("product"), pk=p.text("id")))
    return Prepared(lambda p: Device.objects.select_related(*related).filter(pk=p.text("id")))


def device_get(*, principal: Principal, device_id: str, action: str, related: tuple[str, ...] = DEVICE_RELATED
               ) -> Device:
    """A device by id (or name) through the dev form: 404 unless the caller may see it, 403 unless it may
    `action` it. `related` are the relations loaded with it; the product and its account always are (the
    rights need them). A hot path that reads none of the others (a function call) passes fewer."""
    ident = (device_id or "").strip()
    related = tuple(sorted({*related, "product", "product__account"}))
    # Particle accepts a device's name wherever its id goes (api-js: "Device ID or Name"). Names are not
    # unique across tenants, so a name is looked up within what the caller may see; an id is one row, and
    # DeviceRights (restrict()'s twin for a device in hand) decides 404, 403 or the device.
    if is_device_id(ident):
        device = _device_by_id(related, False).first(id=ident.lower())
    else:
        device = (Device.objects.restrict(principal).select_related(*related).filter(name=ident).order_by("id")
                  .first())
    rights = DeviceRights(principal, device) if device is not None else None
    if rights is None or not rights.may():
        raise NotFound(f"Device {device_id} not found")
    if not rights.may(action):
        raise Forbidden("Your access to this device does not allow this action")
    return device


def _serial_lookup_bucket(principal: Principal) -> str:
    caller = principal.customer_id if principal.kind == "customer" else (
        principal.user.pk if principal.user else principal.product_id)
    return f"serial-lookups:{principal.kind}:{caller}"


def device_by_serial(*, principal: Principal, serial: str) -> Device:
    """GET /v1/serial_numbers/:sn: the device behind a serial number, if the caller may read it (else 404).
    Each caller may look up 50 serials an hour (particle-api.md "Numbers"): serials are guessable."""
    if count_hit(_serial_lookup_bucket(principal), 3600) > SERIAL_LOOKUPS_PER_HOUR:
        raise LockedOut(f"At most {SERIAL_LOOKUPS_PER_HOUR} serial number lookups per hour", code="rate_limited",
                        retry_after=3600)
    device = (Device.objects.restrict(principal, "devices:get").select_related("sim")
              .filter(serial_entry__serial=(serial or "").strip().upper()).first())
    if device is None:
        raise NotFound(f"No device with serial number {serial}")
    return device


def product_device_get(*, product: Product, device_id: str, include_denied: bool = True,
                       related: tuple[str, ...] = ("owner", "customer", "platform", "sim")) -> Device:
    """A device of `product` (already found through the caller's scope) by id or name, else 404."""
    ident = (device_id or "").strip()
    if is_device_id(ident):
        device = _device_by_id(tuple(sorted(related)), True).first(product=product.pk, id=ident.lower())
        if device is not None and device.denied and not include_denied:
            device = None
    else:
        qs = Device.objects.filter(product=product, name=ident).order_by("id")
        if not include_denied:
            qs = qs.filter(denied=False)
        device = qs.select_related(*related).first()
    if device is None:
        raise NotFound(f"Device {device_id} not found in this product")
    device.product = product  # the caller's product, already found through its scope: no second join
    return device


@functools.cache
def _product_device_by_id(related: tuple[str, ...], product_by: str) -> Prepared:
    related = ("product", "product__account", "product__account__owner", "product__platform", *related)
    if product_by == "pk":
        return Prepared(lambda p: Device.objects.select_related(*related)
                        .filter(product_id=p.integer("product"), pk=p.text("id")))
    return Prepared(lambda p: Device.objects.select_related(*related)
                    .filter(product__slug=p.text("product"), pk=p.text("id")))


def product_and_device_get(*, principal: Principal, product: str | int, device_id: str, action: str,
                           related: tuple[str, ...] = ("owner", "customer", "platform", "sim")) -> Device:
    """`product_get` then `product_device_get`, answered by one query when `device_id` is an id and the
    device is in that product: the device comes with its product, and `product_check` gives the verdict
    product_get would. Anything else (a name, a miss) takes the two steps, so every error is theirs."""
    lookup = validation.ident(product)
    ident = (device_id or "").strip()
    if lookup is not None and is_device_id(ident):
        (field, value), = lookup.items()
        device = _product_device_by_id(tuple(sorted(related)), field).first(product=value, id=ident.lower())
        if device is not None:
            product_check(principal=principal, product=device.product, ident=product, action=action)
            return device
    found = product_get(principal=principal, ident=product, action=action)
    return product_device_get(product=found, device_id=device_id, related=related)


def sandbox_devices(*, user: User, sandbox_only: bool = False) -> QuerySet[Device]:
    """GET /v1/devices for a user: every device claimed to them, newest contact first (product devices too,
    unless `sandbox_only`)."""
    return _owned(user, sandbox_only).select_related("owner", "customer", "platform", "product", "sim")


def _owned(user: User, sandbox_only: bool) -> QuerySet[Device]:
    qs = Device.objects.filter(owner=user)
    if sandbox_only:
        qs = qs.filter(product__isnull=True)
    return qs.order_by(F("last_handshake_at").desc(nulls_last=True), "id")


# What the console's sandbox list shows of a device (devices/web/sandbox.py, templates/devices/sandbox_list.html):
# the whole rows with five relations cost ~5 ms of model building for a page of 50.
SANDBOX_PAGE_FIELDS = ("id", "name", "online", "last_heard", "last_handshake_at", "owner_id", "product_id",
                       "platform_id", "product__name", "product__slug", "platform__name", "platform__connectivity")


def sandbox_device_page(*, user: User, sandbox_only: bool, page: int, per_page: int, total: int) -> Page:
    """A page of sandbox_devices for the console's list, with only the fields it shows (SANDBOX_PAGE_FIELDS)
    and the owner set from `user` rather than joined. Past the first, its ids come off the owner's index first (a values query
    drops the joins, so the OFFSET reads index entries, not joined rows: page 150 69 -> 42 ms), then just
    those rows. `total` is the caller's (the stored counts of sandbox_device_details)."""
    listed = _owned(user, sandbox_only).select_related("platform", "product").only(*SANDBOX_PAGE_FIELDS)
    offset = (page - 1) * per_page
    if offset == 0:  # the first page reads just its rows through the join: no ids round trip
        devices = list(listed[:per_page])
    else:
        ids = list(listed.values_list("id", flat=True)[offset:offset + per_page])
        # Through the same filter again: a device claimed by someone else between the two queries is not shown.
        rows = {d.id: d for d in listed.filter(id__in=ids).order_by()} if ids else {}
        devices = [rows[i] for i in ids if i in rows]
    for device in devices:
        device.owner = user  # the filter's own: no join, and one user object instead of one per row
    return Page(rows=devices, page=page, per_page=per_page, total=total)


def sandbox_device_details(*, user: User) -> dict:
    """The seed's "device list details": personal devices vs claimed product devices."""
    # Both counts in one read of the owner's index, which carries the product (migration 0015).
    counts = Device.objects.filter(owner=user).aggregate(personal=Count("id", filter=Q(product__isnull=True)),
                                                         in_products=Count("id", filter=Q(product__isnull=False)))
    personal, in_products = counts["personal"], counts["in_products"]
    return {"total_personal_devices": personal, "total_claimed_product_devices": in_products,
            "counted_against_free_limit": sandbox_device_count(user, personal=personal), "free_limit": FREE_DEVICE_LIMIT}


def sim_of(device: Device) -> SimCard | None:
    try:
        return device.sim
    except SimCard.DoesNotExist:
        return None


def unscoped_device_for_claim(device_id: str) -> Device | None:
    """Any registered device, locked: claiming must find unclaimed registry devices nobody can see yet. The
    claim service decides what the caller learns about it."""
    return (Device.objects.select_for_update(of=("self",)).select_related("product", "product__account")
            .filter(pk=device_id).first())


def quarantine_count(product: Product, cap: int = 1000) -> tuple[int, bool]:
    """How many devices wait in quarantine, counted up to `cap` over the quarantine half of dev_prod_id."""
    n = Device.objects.filter(product=product, quarantined=True, denied=False).values("id")[:cap + 1].count()
    return min(n, cap), n > cap


def device_history(product: Product, device_id: str, limit: int = 50) -> list[AuditEntry]:
    """The audit trail of one device in this product, newest first."""
    return list(AuditEntry.objects.filter(target=device_id, product_id=product.pk).order_by("-created_at", "-pk")[:limit])


def user_device_counts(user: User) -> tuple[int, int]:
    """(Wi-Fi, cellular) devices claimed to `user` (`GET /v1/user`)."""
    counts = Device.objects.filter(owner=user).aggregate(
        wifi=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.WIFI)),
        cellular=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.CELLULAR)))
    return counts["wifi"], counts["cellular"]
