"""Deep pages of a product's device list through its marks (PostgreSQL; devices/migrations/_list_marks.py):
the segment counts say which segment holds the page's first row and how far into it, and the page is read
from that segment's index range (and the next ones while it is not full) instead of OFFSET rows from the
start of the list."""

from __future__ import annotations

from django.db import connection, transaction

from devices.migrations._list_marks import NULL_LAST, SORT_CODES

# Per sortAttr: the sorted value over a device row `x` (the sort index's own expression), which of the
# segment query's bound columns it uses (0 timestamps, 1 text, 2 integers), the bucket of NULLs, and whether,
# in the ascending list, devices that share a value (and NULLs) go by descending id.
_SORTS = {
    "lastConnection": ("x.last_heard", 0, -1, True),
    "deviceName": ('lower(x.name COLLATE "C")', 1, None, False),
    "deviceId": ("x.id", 1, None, False),
    "firmwareVersion": ("x.firmware_version", 2, NULL_LAST, False),
}

# The newest ready marks of a (product, sort); the counts of one group's segments under them (each writer's
# rows, except those of writers the rebuild's count had seen), in the ascending list's order; and of those,
# the segments that hold rows [start, start + want) of that list, with the bounds of each (SQL arrays are
# 1-based: bucket i is [bounds[i], bounds[i + 1]), and a bound past either end is NULL). The totals come in
# every row, and in a row of their own (a NULL segment) when no segment holds the rows asked for. Only the
# page's bounds are read: decoding the 2,000 timestamps of the last-connection marks cost ~8 ms.
_SEGMENTS = """
WITH m AS MATERIALIZED (
    SELECT * FROM devices_listmarks WHERE product_id = %(product)s AND sort = %(sort)s AND ready
    ORDER BY generation DESC LIMIT 1),
c AS (
    SELECT c.bucket, c.sub, sum(c.n)::bigint AS n
      FROM devices_listcount c JOIN m ON c.product_id = m.product_id AND c.sort = m.sort
       AND c.generation = m.generation
     WHERE c.group_id = %(group)s AND (c.xid = '0'::xid8 OR NOT pg_visible_in_snapshot(c.xid, m.snap))
     GROUP BY c.bucket, c.sub HAVING sum(c.n) <> 0),
o AS (
    SELECT bucket, sub, n, (sum(n) OVER (ORDER BY bucket, sub * %(sub_order)s ROWS UNBOUNDED PRECEDING) - n)::bigint
           AS before, (sum(n) OVER ())::bigint AS total, min(n) OVER () AS least FROM c),
t AS (SELECT coalesce(max(total), 0) AS total, coalesce(min(least), 0) AS least FROM o)
SELECT t.total, t.least, s.bucket, s.sub, s.n, s.before, s.heavy, s.ts_lo, s.ts_hi, s.text_lo, s.text_hi,
       s.int_lo, s.int_hi, s.id_lo, s.id_hi
  FROM m CROSS JOIN t
  LEFT JOIN LATERAL (
      SELECT o.bucket, o.sub, o.n, o.before, o.bucket = ANY(m.heavy) AS heavy,
             m.ts_bounds[o.bucket] AS ts_lo, m.ts_bounds[o.bucket + 1] AS ts_hi,
             m.text_bounds[o.bucket] AS text_lo, m.text_bounds[o.bucket + 1] AS text_hi,
             m.int_bounds[o.bucket] AS int_lo, m.int_bounds[o.bucket + 1] AS int_hi,
             m.id_bounds[o.sub] AS id_lo, m.id_bounds[o.sub + 1] AS id_hi
        FROM o
       WHERE o.before < (CASE WHEN %(descending)s THEN t.total - %(offset)s ELSE %(offset)s + %(limit)s END)
         AND o.before + o.n > (CASE WHEN %(descending)s THEN t.total - %(offset)s - %(limit)s ELSE %(offset)s END)
  ) s ON true
 ORDER BY s.before
"""


def _segment(sort: str, row: tuple) -> tuple[str, list]:
    """The condition, over `x`, that holds for the rows of one segment (a row of _SEGMENTS from its bucket
    on): a range of the sort's value (or its NULLs), and for a heavy bucket a range of ids within its one
    value."""
    key, kind, null_bucket, _ = _SORTS[sort]
    bucket, heavy = row[0], row[4]
    low, high = row[5 + 2 * kind], row[6 + 2 * kind]
    parts, params = [], []
    if bucket == null_bucket:
        parts.append(f"{key} IS NULL")
    else:
        if low is not None:
            parts.append(f"{key} >= %s")
            params.append(low)
        if high is not None:
            parts.append(f"{key} < %s")
            params.append(high)
        if not parts:
            parts.append(f"{key} IS NOT NULL")
    if heavy:
        if row[11] is not None:
            parts.append("x.id >= %s")
            params.append(row[11])
        if row[12] is not None:
            parts.append("x.id < %s")
            params.append(row[12])
    return " AND ".join(parts), params


def marked_page(product_id: int, sort: str, descending: bool, group_id: int | None, *, offset: int, limit: int,
                order_asc: str, order_asc_derived: str, sort_columns: list[str]) -> tuple[list[str], int] | None:
    """(ids of the page, how many rows the list has) read through the marks, or None when the product has no
    marks for this sort. `order_asc` is the list's ascending ORDER BY over `x` (and `order_asc_derived` the
    same over the page query's derived rows, which carry `sort_columns`); `group_id` is the one group the
    list is filtered by (None: the whole list)."""
    if connection.vendor != "postgresql":
        return None
    if connection.in_atomic_block or not connection.get_autocommit():  # SET TRANSACTION must come first
        return _marked_page(product_id, sort, descending, group_id, offset, limit, order_asc, order_asc_derived,
                            sort_columns)
    # Both statements in one snapshot: a device heard or moved between them would otherwise leave a segment
    # after it was counted, and the page would come back short.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _marked_page(product_id, sort, descending, group_id, offset, limit, order_asc, order_asc_derived,
                            sort_columns)


def _marked_page(product_id, sort, descending, group_id, offset, limit, order_asc, order_asc_derived,
                 sort_columns) -> tuple[list[str], int] | None:
    tie_desc = _SORTS[sort][3]
    with connection.cursor() as cursor:
        cursor.execute(_SEGMENTS, {"product": product_id, "sort": SORT_CODES[sort], "group": group_id or 0,
                                   "sub_order": -1 if tie_desc else 1, "descending": descending,
                                   "offset": offset, "limit": limit})
        found = cursor.fetchall()
        if not found:
            return None  # no marks for this sort
        total, least = found[0][0], found[0][1]
        if least < 0:
            return None  # cannot be: the counts are broken; OFFSET is right whatever they say
        # The page in the ascending list: a descending page is the same rows counted from the other end.
        start, want = (total - offset - limit, limit) if descending else (offset, limit)
        if start < 0:
            start, want = 0, want + start
        segments = [row[2:] for row in found if row[2] is not None]
        if want <= 0 or not segments:
            return [], total
        # The first segment from `skip` rows in, then the next ones; each part reads at most the page, and
        # the parts come back in their order.
        skip = start - segments[0][3]
        group = f" AND x.group_ids && ARRAY[{int(group_id)}]::bigint[]" if group_id else ""
        columns = ", ".join(["x.id", *sort_columns])
        parts, params = [], []
        for n, row in enumerate(segments):
            where, values = _segment(sort, row)
            parts.append(f"(SELECT {columns}, {n} AS seg FROM devices_device x WHERE x.product_id = %s "
                         f"AND x.quarantined = false AND NOT x.denied AND {where}{group} "
                         f"ORDER BY {order_asc} LIMIT %s OFFSET %s)")
            params.extend([product_id, *values, want, skip if n == 0 else 0])
        cursor.execute(f"SELECT x.id FROM ({' UNION ALL '.join(parts)}) x ORDER BY x.seg, {order_asc_derived}",
                       params)
        ids = [r[0] for r in cursor.fetchall()][:want]
    return (ids[::-1] if descending else ids), total
