"""The last-connection sort index, written per database (shared by migrations 0002 and 0011, and checked by
tests/test_migrations_indexes.py)."""

MEMBERS = "WHERE NOT quarantined AND NOT denied"


def lastheard_index_sql(vendor: str) -> str:
    order = "last_heard DESC NULLS LAST" if vendor == "postgresql" else "last_heard DESC"
    return f"CREATE INDEX IF NOT EXISTS dev_prod_lastheard ON devices_device (product_id, {order}, id) {MEMBERS}"


def ensure_lastheard_index(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(lastheard_index_sql(schema_editor.connection.vendor))


# Since migration 0013 the list indexes serve both lists (members, and quarantine with quarantined=true) and,
# on PostgreSQL, carry the name (INCLUDE) so a name search can walk any sort order without reading the table.
LISTED = "WHERE NOT denied"


def list_index_sql(vendor: str) -> list[str]:
    """The device list's sort indexes and the owner's list index, per database."""
    pg = vendor == "postgresql"
    include = " INCLUDE (name)" if pg else ""
    nulls_last = " NULLS LAST" if pg else ""  # SQLite's DESC already puts NULLs last and cannot say it
    return [
        "CREATE INDEX IF NOT EXISTS dev_prod_lastheard ON devices_device "
        f"(product_id, quarantined, last_heard DESC{nulls_last}, id){include} {LISTED}",
        name_index_sql(vendor),
        "CREATE INDEX IF NOT EXISTS dev_prod_fw ON devices_device "
        f"(product_id, quarantined, firmware_version, id){include} {LISTED}",
        f"CREATE INDEX IF NOT EXISTS dev_prod_id ON devices_device (product_id, quarantined, id){include} {LISTED}",
        owner_index_sql(vendor),
    ]


def name_index_sql(vendor: str) -> str:
    """The name sort's index. Since migration 0016 the list sorts names by their ASCII lower case, compared code
    point by code point (`NAME_KEY`, the same on both databases and under any server collation), so the names
    that start with a search term, in any case, are one range of this index. PostgreSQL carries the name
    (INCLUDE) for a name search's walk; SQLite carries it as a last key."""
    if vendor == "postgresql":
        return (f"CREATE INDEX IF NOT EXISTS dev_prod_name ON devices_device (product_id, quarantined, "
                f"{NAME_KEY['postgresql']}, id) INCLUDE (name) {LISTED}")
    return (f"CREATE INDEX IF NOT EXISTS dev_prod_name ON devices_device (product_id, quarantined, "
            f"{NAME_KEY['sqlite']}, id, name) {LISTED}")


# The name sort's key (the index above is written with the same expression, so the planner matches it): lower()
# of ASCII letters only (PostgreSQL's in the "C" collation, SQLite's own). Lower case rather than upper keeps
# digits and punctuation before letters ("sensor_1" before "sensora").
NAME_KEY = {"postgresql": 'lower(name COLLATE "C")', "sqlite": "lower(name)"}


# Name search where the term is not at the name's start (PostgreSQL, migration 0016): the names without their
# first character, in a trigram index, so the list can find the few devices whose name holds a term further in
# while the many that start with it are read as one range of the name sort's index.
TAIL_TRIGRAM_INDEX = ("CREATE INDEX IF NOT EXISTS dev_name_tail_trgm ON devices_device USING gin "
                      "(product_id, (substr(upper(name::text), 2)) gin_trgm_ops) WHERE name <> ''")


def owner_index_sql(vendor: str) -> str:
    """The sandbox list's index (a user's devices, newest handshake first). Since migration 0015 it carries the
    product on PostgreSQL, so the list's counts of personal and product devices read the index alone."""
    pg = vendor == "postgresql"
    return ("CREATE INDEX IF NOT EXISTS dev_owner_handshake ON devices_device "
            f"(owner_id, last_handshake_at DESC{' NULLS LAST' if pg else ''}, id){' INCLUDE (product_id)' if pg else ''} "
            "WHERE owner_id IS NOT NULL")


# Name search of one or two characters (PostgreSQL): a trigram index cannot answer LIKE '%ab%', so each named
# device also gets the set of its one- and two-character pieces, each prefixed by its product
# ("12:AB"), in a GIN index. `'12:AB' = ANY` of that set is exactly "AB is in the name" within product 12.
SHORT_GRAMS_FUNCTION = """
CREATE OR REPLACE FUNCTION cyan_short_grams(product bigint, name text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT product::text || ':' || substr(name, i, n)), '{}')
    FROM generate_series(1, 2) AS n, generate_series(1, length(name) - n + 1) AS i
$$"""
SHORT_GRAMS_INDEX = ("CREATE INDEX IF NOT EXISTS dev_name_short ON devices_device USING gin "
                     "(cyan_short_grams(product_id, upper(name::text))) WHERE name <> '' AND product_id IS NOT NULL")


# A device's groups on its own row (PostgreSQL, migration 0017): `group_ids`, the sorted ids of the groups it is
# in (NULL in none), kept by triggers on the membership table, so every door that adds or removes a membership
# (the services, the admin, a group or device deleted) keeps it true; only a TRUNCATE of the membership table or
# its triggers disabled (the bench's bulk load, which writes the column itself) pass them by. The sort indexes carry it
# (INCLUDE), so a list filtered by group tests `group_ids && ARRAY[…]` on each index entry it walks (~0.1 µs)
# instead of probing the membership index for every row (~2 µs). The column is not in Django's model state:
# the ORM never reads or writes it. Each trigger changes the array in place (`d.group_ids` of the row as it
# is when the row lock is granted), so two transactions changing one device's groups at once both count.
GROUP_IDS_COLUMN = "ALTER TABLE devices_device ADD COLUMN IF NOT EXISTS group_ids bigint[]"
GROUP_IDS_FILL = (
    "UPDATE devices_device d SET group_ids = m.ids FROM (SELECT device_id, array_agg(group_id ORDER BY group_id) "
    "AS ids FROM devices_devicegroupmembership GROUP BY device_id) m WHERE d.id = m.device_id")
GROUP_IDS_FUNCTION = """
CREATE OR REPLACE FUNCTION cyan_device_group_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The device rows first, in id order, as every writer of many devices takes them (liveness).
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM devices_device WHERE id IN (SELECT device_id FROM new_rows) ORDER BY id FOR UPDATE;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM 1 FROM devices_device WHERE id IN (SELECT device_id FROM old_rows) ORDER BY id FOR UPDATE;
    ELSE
        PERFORM 1 FROM devices_device WHERE id IN (SELECT device_id FROM old_rows UNION SELECT device_id FROM new_rows)
         ORDER BY id FOR UPDATE;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE devices_device d
           SET group_ids = NULLIF(ARRAY(SELECT g FROM unnest(d.group_ids) AS g WHERE g <> ALL (o.ids) ORDER BY g), '{}')
          FROM (SELECT device_id, array_agg(group_id) AS ids FROM old_rows GROUP BY device_id) o
         WHERE d.id = o.device_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE devices_device d
           SET group_ids = ARRAY(SELECT DISTINCT g FROM unnest(coalesce(d.group_ids, '{}') || n.ids) AS g ORDER BY g)
          FROM (SELECT device_id, array_agg(group_id) AS ids FROM new_rows GROUP BY device_id) n
         WHERE d.id = n.device_id;
    END IF;
    RETURN NULL;
END
$$"""
GROUP_IDS_TRIGGERS = [
    "CREATE TRIGGER dgm_group_ids_insert AFTER INSERT ON devices_devicegroupmembership "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_device_group_ids()",
    "CREATE TRIGGER dgm_group_ids_delete AFTER DELETE ON devices_devicegroupmembership "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_device_group_ids()",
    "CREATE TRIGGER dgm_group_ids_update AFTER UPDATE ON devices_devicegroupmembership "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cyan_device_group_ids()",
]


def grouped_list_index_sql() -> list[str]:
    """The four sort indexes of migration 0013 and 0016 on PostgreSQL, carrying `group_ids` beside the name."""
    return [sql.replace("INCLUDE (name)", "INCLUDE (name, group_ids)") for sql in list_index_sql("postgresql")[:4]]
