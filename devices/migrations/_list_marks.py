"""Order statistics for the product device list (PostgreSQL, migration 0018; issue 14).

A B-tree cannot skip to its n-th entry, so page 5,000 of a million devices read 500,000 index entries (40–60
ms). These tables cut each sort order of a big product's list into segments of a few thousand rows and keep,
per segment, how many listed devices (members: not quarantined, not denied) it holds, in all and per group.
A deep page then adds counts to find its segment and reads that segment's index range alone.

- `devices_listmarks`: a row per (product, sort, generation) of a list with marks: the sorted bounds of the sort's
  value (`ts_bounds` for last_heard, `text_bounds` for the name key or the id, `int_bounds` for the firmware
  version), with bucket i holding the values in [bounds[i], bounds[i+1]) as `width_bucket` numbers them. A
  value shared by many devices (a firmware version, devices never heard) gets a bucket of its own, bounded by
  the value and the next possible one, and such `heavy` buckets are split again by the id (`id_bounds`):
  within one value the list is in id order, so those pieces are ranges too. NULLs are bucket -1 (last_heard,
  first in the ascending list) or NULL_LAST (firmware, last), always split by id.
- `devices_listcount`: signed counts per (product, sort, generation, bucket, sub, group; group 0 is the
  whole list), each tagged with the transaction that wrote it (`xid`; 0 once folded). Statement triggers on
  devices_device add one row per touched segment for each statement that inserts, updates or deletes
  devices, for every generation of the product's marks, so every door (services, admin, imports, the
  gateway's flushes, the group triggers, raw SQL) keeps them exact. A periodic task folds them and rebuilds
  marks whose segments grew (`devices.services.listmarks`).

A rebuild never holds device writes for longer than it takes the writers already counting to commit:
1. it adds the new generation, not yet `ready`, while holding devices_listcount in EXCLUSIVE mode. Each
   trigger takes that table in ROW EXCLUSIVE mode as its own statement before it reads the marks, so a writer
   either counted before (and has committed when the lock is granted) or reads the new generation and counts
   for it too;
2. it waits for the sessions holding a snapshot in a transaction begun before the publish to end that
   transaction: a REPEATABLE READ or SERIALIZABLE writer reads the marks in its transaction's snapshot, so
   one that began before would count for the old generations alone, and must have ended before the count;
3. it counts the list from one snapshot into the new generation and keeps that snapshot (`snap`): a writer
   the snapshot sees is in the count, so its own rows for the generation are left out (`pg_visible_in_snapshot`);
   one it does not see is not, and its rows count. Then the generation is `ready` and the older ones go.
A page reads the counts and its rows in one REPEATABLE READ snapshot (devices/selectors/listmarks.py).
Count, abandon, drop and compact of one product take one advisory lock first, so they never deadlock.
"""

NULL_LAST = 2_000_000_000  # the bucket of NULL firmware versions (last in the ascending list)

# Sort codes, in the order of devices.selectors.devices.SORTS.
SORT_CODES = {"lastConnection": 0, "deviceName": 1, "deviceId": 2, "firmwareVersion": 3}

TABLES = [
    """CREATE TABLE IF NOT EXISTS devices_listmarks (
        product_id bigint NOT NULL,
        sort smallint NOT NULL,
        generation bigint NOT NULL,
        ready boolean NOT NULL,
        snap pg_snapshot,
        ts_bounds timestamptz[],
        text_bounds text[] COLLATE "C",
        int_bounds integer[],
        heavy integer[] NOT NULL,
        id_bounds text[] COLLATE "C" NOT NULL,
        built_at timestamptz NOT NULL,
        PRIMARY KEY (product_id, sort, generation))""",
    """CREATE TABLE IF NOT EXISTS devices_listcount (
        product_id bigint NOT NULL,
        sort smallint NOT NULL,
        generation bigint NOT NULL,
        bucket integer NOT NULL,
        sub integer NOT NULL,
        group_id bigint NOT NULL,
        n bigint NOT NULL,
        xid xid8 NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS devices_listcount_key ON devices_listcount (product_id, sort, group_id, generation)",
    # Generations are never reused: count rows a dropped generation left cannot join a new one.
    "CREATE SEQUENCE IF NOT EXISTS devices_listmarks_generation",
]

# The bucket of a device row `r` under the marks `m` (one expression for the four sorts; the key expressions
# are the sort indexes' own).
BUCKET = f"""CASE m.sort
    WHEN 0 THEN CASE WHEN r.last_heard IS NULL THEN -1 ELSE coalesce(width_bucket(r.last_heard, m.ts_bounds), 0) END
    WHEN 1 THEN coalesce(width_bucket(lower(r.name COLLATE "C"), m.text_bounds), 0)
    WHEN 2 THEN coalesce(width_bucket(r.id COLLATE "C", m.text_bounds), 0)
    ELSE CASE WHEN r.firmware_version IS NULL THEN {NULL_LAST}
              ELSE coalesce(width_bucket(r.firmware_version, m.int_bounds), 0) END
    END"""


ALL_SORTS = 15  # `touched`: the bit of each sort code whose segment a row may have left or joined


def counted(rows: str, where: str = "", xid: str = "pg_current_xact_id()") -> str:
    """The counts of the device rows `rows` (a subquery with the device columns, a signed `n` and `touched`),
    per segment and group, for every marked sort of their products whose bit `touched` has (`where`, over
    devices_listmarks, narrows the marks; by default to the rows' products), each count row tagged with `xid`
    (the writer's transaction)."""
    where = where or f"product_id IN (SELECT r.product_id FROM ({rows}) r)"
    # The marks are read once and their arrays copied out of TOAST (a slice is a new array): a join with the
    # table itself fetched each array again for every row (20 s to count a million devices, not 1–2).
    return f"""WITH m AS MATERIALIZED (
        SELECT product_id, sort, generation, ts_bounds[:] AS ts_bounds, text_bounds[:] AS text_bounds,
               int_bounds[:] AS int_bounds, heavy[:] AS heavy, id_bounds[:] AS id_bounds
          FROM devices_listmarks WHERE {where})
    SELECT m.product_id, m.sort, m.generation, s.bucket, s.sub, g.group_id, sum(r.n), {xid}
      FROM ({rows}) r
      JOIN m ON m.product_id = r.product_id AND (r.touched >> m.sort) & 1 = 1
      CROSS JOIN LATERAL (
          SELECT b.bucket, CASE WHEN b.bucket = ANY(m.heavy)
                                THEN coalesce(width_bucket(r.id COLLATE "C", m.id_bounds), 0) ELSE 0 END AS sub
            FROM (SELECT {BUCKET} AS bucket) b) s
      CROSS JOIN LATERAL unnest(array_prepend(0::bigint, coalesce(r.group_ids, '{{}}'::bigint[]))) AS g(group_id)
     WHERE NOT r.quarantined AND NOT r.denied AND g.group_id IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(r.n) <> 0"""


COLUMNS = "product_id, quarantined, denied, last_heard, name, id, firmware_version, group_ids"
INSERT = "INSERT INTO devices_listcount (product_id, sort, generation, bucket, sub, group_id, n, xid) "


def _updated(side: str, other: str, n: int) -> str:
    """One side of an UPDATE's rows (`side` old_rows or new_rows), each with the sorts whose segment it may
    have changed against its row on the `other` side: all of them when it moved in or out of a list (product,
    quarantine, denial, groups) or has no row there (its id changed), else those whose value changed. A flush of
    last_heard so works out the last-connection segments alone."""
    cols = ", ".join(f"a.{c}" for c in COLUMNS.split(", "))
    return (f"SELECT {cols}, {n} AS n, CASE WHEN b.id IS NULL OR a.product_id IS DISTINCT FROM b.product_id "
            f"OR a.quarantined <> b.quarantined OR a.denied <> b.denied OR a.group_ids IS DISTINCT FROM b.group_ids "
            f"THEN {ALL_SORTS} ELSE (CASE WHEN a.last_heard IS DISTINCT FROM b.last_heard THEN 1 ELSE 0 END) "
            f"| (CASE WHEN a.name <> b.name THEN 2 ELSE 0 END) "
            f"| (CASE WHEN a.firmware_version IS DISTINCT FROM b.firmware_version THEN 8 ELSE 0 END) END AS touched "
            f"FROM {side} a LEFT JOIN {other} b ON b.id = a.id")


FUNCTION = f"""
CREATE OR REPLACE FUNCTION cyan_list_counts() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    -- Its own statement: the next one reads the marks after any rebuild holding the table has committed.
    LOCK TABLE devices_listcount IN ROW EXCLUSIVE MODE;
    IF TG_OP = 'INSERT' THEN
        {INSERT}{counted(f"SELECT {COLUMNS}, 1 AS n, {ALL_SORTS} AS touched FROM new_rows")};
    ELSIF TG_OP = 'DELETE' THEN
        {INSERT}{counted(f"SELECT {COLUMNS}, -1 AS n, {ALL_SORTS} AS touched FROM old_rows")};
    ELSE
        {INSERT}{counted(f"{_updated('old_rows', 'new_rows', -1)} UNION ALL {_updated('new_rows', 'old_rows', 1)}")};
    END IF;
    RETURN NULL;
END
$$"""

# A TRUNCATE passes row and transition-table triggers by: it empties every list, so the marks go with it.
TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION cyan_list_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM devices_listcount;
    DELETE FROM devices_listmarks;
    RETURN NULL;
END
$$"""

TRIGGERS = [
    "CREATE TRIGGER dev_list_counts_truncate AFTER TRUNCATE ON devices_device "
    "FOR EACH STATEMENT EXECUTE FUNCTION cyan_list_counts_truncate()",
    "CREATE TRIGGER dev_list_counts_insert AFTER INSERT ON devices_device "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_list_counts()",
    "CREATE TRIGGER dev_list_counts_delete AFTER DELETE ON devices_device "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_list_counts()",
    "CREATE TRIGGER dev_list_counts_update AFTER UPDATE ON devices_device "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_list_counts()",
]

DROP = [
    *(f"DROP TRIGGER IF EXISTS dev_list_counts_{op} ON devices_device"
      for op in ("insert", "delete", "update", "truncate")),
    "DROP FUNCTION IF EXISTS cyan_list_counts()",
    "DROP FUNCTION IF EXISTS cyan_list_counts_truncate()",
    "DROP TABLE IF EXISTS devices_listcount",
    "DROP TABLE IF EXISTS devices_listmarks",
    "DROP SEQUENCE IF EXISTS devices_listmarks_generation",
]
