"""The last-connection sort index, written per database (shared by migrations 0002 and 0011, and checked by
tests/test_migrations_indexes.py)."""

MEMBERS = "WHERE NOT quarantined AND NOT denied"


def lastheard_index_sql(vendor: str) -> str:
    order = "last_heard DESC NULLS LAST" if vendor == "postgresql" else "last_heard DESC"
    return f"CREATE INDEX IF NOT EXISTS dev_prod_lastheard ON devices_device (product_id, {order}, id) {MEMBERS}"


def ensure_lastheard_index(schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(lastheard_index_sql(schema_editor.connection.vendor))
