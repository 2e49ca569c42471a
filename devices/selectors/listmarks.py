"""Deep pages of a product's device list through its marks (PostgreSQL; devices/migrations/_list_marks.py):
the segment counts say which segment holds the page's first row and how far into it, and the page is read
from that segment's index range (and the next ones while it is not full) instead of OFFSET rows from the
start of the list."""

from __future__ import annotations

from django.db import connection

from devices.migrations._list_marks import NULL_LAST, SORT_CODES

# Per sortAttr: the sorted value over a device row `x` (the sort index's own expression), its bounds' column
# (an index into the marks row below), the bucket of NULLs, and whether, in the ascending list, devices that
# share a value (and NULLs) go by descending id.
_SORTS = {
    "lastConnection": ("x.last_heard", 1, -1, True),
    "deviceName": ('lower(x.name COLLATE "C")', 2, None, False),
    "deviceId": ("x.id", 2, None, False),
    "firmwareVersion": ("x.firmware_version", 3, NULL_LAST, False),
}
# The newest ready marks of a (product, sort) and the counts of one group's segments under them: each writer's
# rows, except those of writers the rebuild's count had seen (devices/migrations/_list_marks.py).
_MARKS = (
    "SELECT m.generation, m.ts_bounds, m.text_bounds, m.int_bounds, m.heavy, m.id_bounds, c.buckets, c.subs, c.ns "
    "FROM (SELECT * FROM devices_listmarks WHERE product_id = %s AND sort = %s AND ready "
    "ORDER BY generation DESC LIMIT 1) m CROSS JOIN LATERAL ("
    "SELECT array_agg(t.bucket ORDER BY t.bucket, t.sub) AS buckets, array_agg(t.sub ORDER BY t.bucket, t.sub) AS subs, "
    "array_agg(t.n ORDER BY t.bucket, t.sub) AS ns FROM (SELECT c.bucket, c.sub, sum(c.n)::bigint AS n "
    "FROM devices_listcount c WHERE c.product_id = m.product_id AND c.sort = m.sort AND c.group_id = %s "
    "AND c.generation = m.generation AND (c.xid = '0'::xid8 OR NOT pg_visible_in_snapshot(c.xid, m.snap)) "
    "GROUP BY c.bucket, c.sub) t) c")


def _segment(sort: str, marks: tuple, bucket: int, sub: int) -> tuple[str, list]:
    """The condition, over `x`, that holds for the rows of one segment: a range of the sort's value (or its
    NULLs), and for a heavy bucket a range of ids within its one value."""
    key, column, null_bucket, _ = _SORTS[sort]
    parts, params = [], []
    if bucket == null_bucket:
        parts.append(f"{key} IS NULL")
    else:
        bounds = marks[column] or []
        if bucket >= 1:
            parts.append(f"{key} >= %s")
            params.append(bounds[bucket - 1])
        if bucket < len(bounds):
            parts.append(f"{key} < %s")
            params.append(bounds[bucket])
        if not parts:
            parts.append(f"{key} IS NOT NULL")
    if bucket in marks[4]:
        ids = marks[5]
        if sub >= 1:
            parts.append("x.id >= %s")
            params.append(ids[sub - 1])
        if sub < len(ids):
            parts.append("x.id < %s")
            params.append(ids[sub])
    return " AND ".join(parts), params


def marked_page(product_id: int, sort: str, descending: bool, group_id: int | None, *, offset: int, limit: int,
                order_asc: str, order_asc_derived: str, sort_columns: list[str]) -> tuple[list[str], int] | None:
    """(ids of the page, how many rows the list has) read through the marks, or None when the product has no
    marks for this sort. `order_asc` is the list's ascending ORDER BY over `x` (and `order_asc_derived` the
    same over the page query's derived rows, which carry `sort_columns`); `group_id` is the one group the
    list is filtered by (None: the whole list)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_MARKS, [product_id, SORT_CODES[sort], group_id or 0])
        marks = cursor.fetchone()
        if marks is None:
            return None
        tie_desc = _SORTS[sort][3]
        segments = sorted(((b, s, n) for b, s, n in zip(marks[6] or [], marks[7] or [], marks[8] or []) if n),
                          key=lambda t: (t[0], -t[1] if tie_desc else t[1]))
        if any(n < 0 for _, _, n in segments):
            return None  # cannot be: the counts are broken; OFFSET is right whatever they say
        total = sum(n for _, _, n in segments)
        # The page in the ascending list: a descending page is the same rows counted from the other end.
        start, want = (total - offset - limit, limit) if descending else (offset, limit)
        if start < 0:
            start, want = 0, want + start
        if want <= 0 or start >= total:
            return [], total
        seen, first = 0, 0
        while seen + segments[first][2] <= start:
            seen += segments[first][2]
            first += 1
        skip = start - seen
        # The first segment from `skip` rows in, then the next ones while the page is not full; each part
        # reads at most the page, and the parts come back in their order.
        group = f" AND x.group_ids && ARRAY[{int(group_id)}]::bigint[]" if group_id else ""
        columns = ", ".join(["x.id", *sort_columns])
        parts, params = [], []
        covered, at = -skip, first
        while covered < want and at < len(segments):
            bucket, sub, n = segments[at]
            where, values = _segment(sort, marks, bucket, sub)
            parts.append(f"(SELECT {columns}, {len(parts)} AS seg FROM devices_device x WHERE x.product_id = %s "
                         f"AND x.quarantined = false AND NOT x.denied AND {where}{group} "
                         f"ORDER BY {order_asc} LIMIT %s OFFSET %s)")
            params.extend([product_id, *values, want, skip if at == first else 0])
            covered += n
            at += 1
        cursor.execute(f"SELECT x.id FROM ({' UNION ALL '.join(parts)}) x ORDER BY x.seg, {order_asc_derived}",
                       params)
        ids = [r[0] for r in cursor.fetchall()][:want]
    return (ids[::-1] if descending else ids), total
