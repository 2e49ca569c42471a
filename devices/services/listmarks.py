"""Marks of the product device list (PostgreSQL): building them for a big product, folding the counts the
triggers add, and dropping them when a product shrinks. The design is in devices/migrations/_list_marks.py;
the list reads them in devices.selectors.devices (`_marked_page`). A worker task runs `keep` every minute."""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from devices.migrations._list_marks import ALL_SORTS, COLUMNS, INSERT, NULL_LAST, SORT_CODES, counted
from products.models import Product

log = logging.getLogger("devices.listmarks")

MARK_ROWS = 4_096  # rows a segment holds when built
# Names and ids do not move as devices are heard, and their bounds are text, which width_bucket compares by
# walking the array (~1.5 µs a device at 245 bounds, in every trigger and count): their segments are longer.
TEXT_ROWS_FACTOR = 4
MARK_ID_BOUNDS = 128  # pieces a value shared by many devices (or NULL) is split into, by id
MARK_MIN_MEMBERS = 50_000  # a smaller list pages fast enough without marks (page 2,000 of 25 reads 50,000 entries)
MARK_GROWTH = 8  # a segment grown past MARK_GROWTH * MARK_ROWS rows gets its sort's marks rebuilt
REBUILD_LOCK_MS = 200  # how long a rebuild waits for writers to let go of the counts before it tries later
SNAPSHOT_WAIT_SECONDS = 30.0  # how long a rebuild waits for older snapshots to end before it tries later
STALE_PENDING = dt.timedelta(hours=1)  # a generation not ready after this was left by a rebuild that died
FUTURE_SAMPLE = dt.timedelta(minutes=10)  # how far back the last-connection marks look for the rate of hearing
FUTURE_HORIZON = dt.timedelta(days=1)  # how far ahead they place bounds
FUTURE_BOUNDS = 2_000  # and at most so many

# Per sort code: the value the list sorts by (over a device row `x`), its array column in devices_listmarks, the
# bucket of NULLs (None: never NULL) and the device columns an index-only count reads.
_KEYS = {
    0: ('x.last_heard', "ts_bounds", -1, "last_heard"),
    1: ('lower(x.name COLLATE "C")', "text_bounds", None, "name"),
    2: ("x.id", "text_bounds", None, ""),
    3: ("x.firmware_version", "int_bounds", NULL_LAST, "firmware_version"),
}
_NULLS = {"last_heard": "timestamptz", "name": "text", "firmware_version": "integer"}  # the other sorts' columns
_MEMBERS = "x.product_id = %s AND NOT x.quarantined AND NOT x.denied"


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


INT_MAX = 2_147_483_647


def _next_value(value):
    """The smallest value that sorts after `value` (C collation for text: no text holds NUL); None when no
    value of the type does (the bucket ends at the top anyway)."""
    if isinstance(value, dt.datetime):
        return value + dt.timedelta(microseconds=1) if value < dt.datetime.max.replace(tzinfo=value.tzinfo) else None
    if isinstance(value, str):
        return value + "\x01"
    return value + 1 if value < INT_MAX else None


def bounds(product_id: int, sort: int, rows: int) -> tuple[list, list[int]]:
    """The bounds of a sort's buckets over a product's listed devices, and the numbers of its heavy buckets:
    a bound at the first value of every `rows` devices in the sort's order, and around every value more than
    `rows` devices share, which gets a bucket of its own (it and the next possible value bound it, so no value
    can join it later). Read outside any lock: any bounds are right, these are well spread."""
    key = _KEYS[sort][0]
    found = _rows(
        f"WITH g AS (SELECT {key} AS v, count(*) AS c FROM devices_device x WHERE {_MEMBERS} AND {key} IS NOT NULL "
        f"GROUP BY 1), "
        f"r AS (SELECT v, c, (sum(c) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) - c)::bigint / %s AS blk FROM g), "
        f"s AS (SELECT v, c, blk, lag(blk) OVER (ORDER BY v) AS prev FROM r) "
        f"SELECT v, c > %s FROM s WHERE prev IS NULL OR blk <> prev OR c > %s ORDER BY v",
        [product_id, rows, rows, rows])
    values = {v for v, _ in found}
    shared = [v for v, heavy in found if heavy]
    values.update(n for v in shared if (n := _next_value(v)) is not None)
    ordered = sorted(values)  # Python orders str by code point: the C collation's (UTF-8 byte) order
    at = {v: i + 1 for i, v in enumerate(ordered)}  # width_bucket's numbers
    heavy = [at[v] for v in shared]
    if _KEYS[sort][2] is not None:
        heavy.append(_KEYS[sort][2])
    return ordered, sorted(heavy)


def id_bounds(product_id: int, pieces: int) -> list[str]:
    """Ids splitting the product's listed devices into about `pieces` runs (index-only)."""
    members = _rows(f"SELECT count(*) FROM devices_device x WHERE {_MEMBERS}", [product_id])[0][0]
    step = max(1, members // pieces)
    return sorted(r[0] for r in _rows(  # in code point order: the C collation width_bucket compares them in
        f"SELECT id FROM (SELECT x.id, row_number() OVER (ORDER BY x.id) AS rn FROM devices_device x "
        f"WHERE {_MEMBERS}) s WHERE rn %% %s = 1", [product_id, step]))


def future_bounds(product_id: int, after: dt.datetime | None, rows: int) -> list[dt.datetime]:
    """Bounds of last_heard ahead of now, spaced by how fast the list was heard in the last FUTURE_SAMPLE
    (so each fills with about `rows` devices): a device heard moves to the top of the order, and without
    them every device heard after a rebuild would go to its last segment."""
    now = timezone.now()
    heard = _rows(f"SELECT count(*) FROM devices_device x WHERE {_MEMBERS} AND x.last_heard > %s",
                  [product_id, now - FUTURE_SAMPLE])[0][0]
    per_second = heard / FUTURE_SAMPLE.total_seconds()
    step = dt.timedelta(seconds=min(max(rows / per_second, 1.0), FUTURE_HORIZON.total_seconds()) if per_second
                        else FUTURE_HORIZON.total_seconds())
    start = max(now, after + dt.timedelta(microseconds=1)) if after else now
    count = min(FUTURE_BOUNDS, int(FUTURE_HORIZON / step))
    return [start + step * (i + 1) for i in range(count)]


def rebuild(product_id: int, sorts=None, *, rows: int | None = None, pieces: int | None = None) -> bool:
    """(Re)build the marks of a product's list for the given sort codes (all four by default): `publish` a
    new generation, then `count` it (devices/migrations/_list_marks.py says why in two steps). False when
    writers held devices_listcount past REBUILD_LOCK_MS (try again later)."""
    if connection.vendor != "postgresql":
        return False
    # Each step must commit on its own: inside a caller's transaction the EXCLUSIVE lock would be held through
    # the count, and every device write would wait for it.
    assert not connection.in_atomic_block, "rebuild() runs outside any transaction"
    ids = id_bounds(product_id, pieces or MARK_ID_BOUNDS)
    for sort in sorts if sorts is not None else SORT_CODES.values():
        generation = publish(product_id, sort, ids, rows=rows)
        if generation is None:
            return False
        try:
            if not wait_for_older_snapshots():
                abandon(product_id, sort, generation)
                return False
            count(product_id, sort, generation)
        except Exception:
            abandon(product_id, sort, generation)  # writers would count for it until it went stale
            raise
    return True


def wait_for_older_snapshots(timeout: float | None = None) -> bool:
    """Wait until every client session of this database that may hold a snapshot taken before now has ended
    that transaction (False when one still has not after `timeout` seconds, SNAPSHOT_WAIT_SECONDS by
    default). A REPEATABLE READ or SERIALIZABLE writer's trigger reads the marks in its transaction's
    snapshot: one taken before a generation was published never sees it and counts for the old ones alone,
    so the count must start after it has ended (as CREATE INDEX CONCURRENTLY waits). A READ COMMITTED writer
    takes a new snapshot per statement, after its lock: the publish already waited for it. The sessions are
    listed once, those holding a snapshot in a transaction begun by now, and only they are waited for: a
    later transaction's snapshot sees the generation whatever its xmin says."""
    deadline = time.monotonic() + (SNAPSHOT_WAIT_SECONDS if timeout is None else timeout)
    older = _rows(
        "SELECT pid, xact_start FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' AND backend_xmin IS NOT NULL AND xact_start <= clock_timestamp()", [])
    while older:
        still = _rows(
            "SELECT a.pid FROM pg_stat_activity a JOIN unnest(%s::int[], %s::timestamptz[]) AS o(pid, xact_start) "
            "ON a.pid = o.pid AND a.xact_start = o.xact_start", [[p for p, _ in older], [x for _, x in older]])
        if not still:
            return True
        if time.monotonic() >= deadline:
            log.info("list marks: %s sessions still in transactions older than the new marks", len(still))
            return False
        older = [(p, x) for p, x in older if p in {r[0] for r in still}]
        time.sleep(0.05)
    return True


def _hold_product(cursor, product_id: int) -> None:
    """Serialize count, abandon, drop and compact of one product's marks (transaction-scoped): taken before
    any of their row locks, so they cannot deadlock on one another's."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('cyan.listmarks', %s))", [product_id])


def abandon(product_id: int, sort: int, generation: int) -> None:
    """Remove a published generation that will not be counted (writers stop counting for it)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _hold_product(cursor, product_id)
        cursor.execute("DELETE FROM devices_listmarks WHERE product_id = %s AND sort = %s AND generation = %s",
                       [product_id, sort, generation])
        cursor.execute("DELETE FROM devices_listcount WHERE product_id = %s AND sort = %s AND generation = %s",
                       [product_id, sort, generation])


def _segment_rows(sort: int) -> int:
    """The rows a segment of this sort holds when built."""
    return MARK_ROWS * (TEXT_ROWS_FACTOR if _KEYS[sort][1] == "text_bounds" else 1)


def publish(product_id: int, sort: int, ids: list[str], *, rows: int | None = None) -> int | None:
    """Add a generation of marks for a sort, not ready yet, once every writer that counted without it has
    committed (None: they held the counts past REBUILD_LOCK_MS). Writers from then on count for it too."""
    rows = rows or _segment_rows(sort)
    values, heavy = bounds(product_id, sort, rows)
    if sort == 0:
        values += future_bounds(product_id, values[-1] if values else None, rows)
    column = _KEYS[sort][1]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{int(REBUILD_LOCK_MS)}ms'")
            cursor.execute("LOCK TABLE devices_listcount IN EXCLUSIVE MODE")
            return _rows(
                f"INSERT INTO devices_listmarks (product_id, sort, generation, ready, {column}, heavy, id_bounds, "
                f"built_at) VALUES (%s, %s, nextval('devices_listmarks_generation'), false, %s, %s, %s, %s) "
                f"RETURNING generation",
                [product_id, sort, values, heavy, ids, timezone.now()])[0][0]
    except OperationalError as exc:  # lock_timeout: writers are busy
        log.info("list marks of product %s (sort %s) not rebuilt: %s", product_id, sort, exc)
        return None


def count(product_id: int, sort: int, generation: int) -> None:
    """Count a published generation from one snapshot, keep the snapshot, make it the one lists read and drop
    the older ones. No lock: writers go on, and the snapshot says which of them the count holds."""
    # Only the sort's own columns, so the count reads that sort's index alone.
    own = _KEYS[sort][3]
    picked = ", ".join(f"NULL::{_NULLS[c]} AS {c}" if c in _NULLS and c != own else c for c in COLUMNS.split(", "))
    with transaction.atomic(), connection.cursor() as cursor:
        _hold_product(cursor, product_id)
        # Held until the count commits: a drop() or abandon() meanwhile waits, and one before leaves nothing.
        cursor.execute("SELECT 1 FROM devices_listmarks WHERE product_id = %s AND sort = %s AND generation = %s "
                       "FOR UPDATE", [product_id, sort, generation])
        if cursor.fetchone() is None:
            return
        cursor.execute("SET LOCAL jit = off")  # compiling the count took longer than running it
        # One statement, so the count and the snapshot it keeps are the same.
        cursor.execute(
            f"WITH c AS ({INSERT}"
            + counted(f"SELECT {picked}, 1 AS n, {ALL_SORTS} AS touched FROM devices_device x WHERE {_MEMBERS}",
                      "product_id = %s AND sort = %s AND generation = %s", xid="'0'::xid8")
            + " RETURNING 1) UPDATE devices_listmarks SET ready = true, snap = pg_current_snapshot(), "
            "built_at = %s WHERE product_id = %s AND sort = %s AND generation = %s",
            [product_id, sort, generation, product_id, timezone.now(), product_id, sort, generation])
        cursor.execute("DELETE FROM devices_listmarks WHERE product_id = %s AND sort = %s AND generation < %s",
                       [product_id, sort, generation])
        cursor.execute("DELETE FROM devices_listcount WHERE product_id = %s AND sort = %s AND generation < %s",
                       [product_id, sort, generation])


def drop(product_id: int) -> None:
    """Remove a product's marks (its list pages by OFFSET again)."""
    with transaction.atomic(), connection.cursor() as cursor:
        _hold_product(cursor, product_id)
        cursor.execute("DELETE FROM devices_listmarks WHERE product_id = %s", [product_id])
        cursor.execute("DELETE FROM devices_listcount WHERE product_id = %s", [product_id])


def compact(product_id: int) -> int:
    """Fold a product's count rows into one per segment and group (the triggers add a row per touched
    segment and statement): rows of a writer its generation's snapshot saw were counted by the rebuild and go,
    the others fold into the generation's own (xid 0); rows of a generation gone go too, and a generation
    left unready by a rebuild that died. Rows of writers not yet committed are not seen, and stay. Returns the
    rows left."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        _hold_product(cursor, product_id)
        cursor.execute("DELETE FROM devices_listmarks WHERE product_id = %s AND NOT ready AND built_at < %s",
                       [product_id, timezone.now() - STALE_PENDING])
        cursor.execute("DELETE FROM devices_listcount c WHERE c.product_id = %s AND NOT EXISTS (SELECT 1 FROM "
                       "devices_listmarks m WHERE m.product_id = c.product_id AND m.sort = c.sort AND "
                       "m.generation = c.generation)", [product_id])
        return _rows(
            "WITH d AS (DELETE FROM devices_listcount c USING devices_listmarks m WHERE c.product_id = %s "
            "AND m.product_id = c.product_id AND m.sort = c.sort AND m.generation = c.generation AND m.ready "
            "RETURNING c.*, m.snap), "
            "k AS (INSERT INTO devices_listcount (product_id, sort, generation, bucket, sub, group_id, n, xid) "
            "SELECT d.product_id, d.sort, d.generation, d.bucket, d.sub, d.group_id, sum(d.n), '0'::xid8 FROM d "
            "WHERE d.xid = '0'::xid8 OR NOT pg_visible_in_snapshot(d.xid, d.snap) "
            "GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d.n) <> 0 RETURNING 1) "
            "SELECT count(*) FROM k", [product_id])[0][0]


def segments(product_id: int, sort: int) -> tuple[int, int] | None:
    """(the most rows one segment of the whole list holds, the rows of all of them) now; None when the sort
    has no ready marks."""
    found = _rows(
        "SELECT coalesce(max(t.s), 0)::bigint, coalesce(sum(t.s), 0)::bigint FROM "
        "(SELECT * FROM devices_listmarks WHERE product_id = %s AND sort = %s AND ready ORDER BY generation DESC "
        "LIMIT 1) m LEFT JOIN LATERAL (SELECT sum(c.n) AS s FROM devices_listcount c WHERE c.product_id = "
        "m.product_id AND c.sort = m.sort AND c.group_id = 0 AND c.generation = m.generation AND (c.xid = '0'::xid8 "
        "OR NOT pg_visible_in_snapshot(c.xid, m.snap)) GROUP BY c.bucket, c.sub) t ON true GROUP BY m.generation",
        [product_id, sort])
    return (int(found[0][0]), int(found[0][1])) if found else None


def drop_orphans() -> int:
    """Remove the marks of products deleted since (returns how many products had them)."""
    if connection.vendor != "postgresql":
        return 0
    gone = [r[0] for r in _rows("SELECT DISTINCT m.product_id FROM devices_listmarks m WHERE NOT EXISTS "
                                "(SELECT 1 FROM products_product p WHERE p.id = m.product_id)", [])]
    for product_id in gone:
        drop(product_id)
    return len(gone)


def marked_products() -> set[int]:
    """The products whose lists have marks."""
    if connection.vendor != "postgresql":
        return set()
    return {r[0] for r in _rows("SELECT DISTINCT product_id FROM devices_listmarks", [])}


def keep(product: Product) -> str:
    """What the worker does for one product each minute: fold its counts, build the marks a big list lacks,
    rebuild those whose segments grew, drop them from a list that shrank."""
    if connection.vendor != "postgresql":
        return "none"
    if product.device_count < MARK_MIN_MEMBERS // 2:
        if _rows("SELECT 1 FROM devices_listmarks WHERE product_id = %s LIMIT 1", [product.pk]):
            drop(product.pk)
            return "dropped"
        return "none"
    compact(product.pk)
    if product.device_count < MARK_MIN_MEMBERS:
        return "kept"
    # A sort without marks, one whose segments grew, or whose counts differ from the rows (they cannot,
    # while every writer passes the triggers; a rebuild repairs what could).
    with transaction.atomic():  # the rows and the counts from one snapshot: a write between is no drift
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        members = _rows(f"SELECT count(*) FROM devices_device x WHERE {_MEMBERS}", [product.pk])[0][0]
        found = {sort: segments(product.pk, sort) for sort in SORT_CODES.values()}
    stale = []
    for sort, seen in found.items():
        grown = MARK_GROWTH * _segment_rows(sort)
        if seen is None or seen[0] > grown or seen[1] != members:
            stale.append(sort)
    if stale:
        return "rebuilt" if rebuild(product.pk, stale) else "busy"
    return "kept"
