"""Device search at fleet scale (issue 14): every query shape of the product device list, the console list, its
CSV export and the sandbox list, timed on a 1,000,000-device product beside a hand-written SQL query that
returns the same page.

    make bench-search                       # PostgreSQL: load (or reuse) the fixture, then time every shape
    make bench-search BENCH_ARGS="--reuse"  # keep a loaded database from an earlier run
    make bench-search BENCH_ARGS="--sqlite" # the embedded default, 100,000 devices: no shape may pass 1 s

PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cyan_search_bench). Without
--reuse the database is dropped and recreated. Loading runs outside BENCH_LOCK (default var/bench.lock, a
flock(1) file another benchmark on the machine may hold too); only the timing holds it. See bench/README.md.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cyan_search_bench")
LOCK = os.environ.get("BENCH_LOCK", str(Path(__file__).resolve().parent.parent / "var" / "bench.lock"))
FIXTURE_VERSION = 2  # 2: devices carry group_ids (migration 0017)
TARGET_MS = 25.0
SQLITE_LIMIT_MS = 1000.0


# --- the fixture ------------------------------------------------------------------------------------------

@dataclass
class Fixture:
    """What the loader made, read back from the database on --reuse."""

    product_id: int
    product_slug: str
    other_product_id: int
    owner_email: str
    members: int
    sample_id: str
    sample_name: str
    sample_serial: str
    group_ids: dict[str, int] = field(default_factory=dict)


def setup_django(url: str, sqlite_path: Path | None) -> None:
    if sqlite_path is not None:
        os.environ["DATABASE_URL"] = f"sqlite:///{sqlite_path}"
    else:
        os.environ["DATABASE_URL"] = url
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ.setdefault("CACHE_KEY_PREFIX", "cyan-search-bench")
    os.environ.setdefault("CYAN_DATA_DIR", str(ROOT / "var" / "bench-search"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "console.settings"
    import django

    django.setup()


def recreate_pg_database(url: str) -> None:
    import psycopg

    admin, name = url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_database_exists(url: str) -> bool:
    import psycopg

    admin, name = url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def stored_fixture(members: int) -> Fixture | None:
    """The fixture an earlier run loaded, if it is this version and size."""
    from django.db import connection

    with connection.cursor() as c:
        if "bench_search_fixture" not in connection.introspection.table_names(c):
            return None
        c.execute("SELECT version, members, product_id, other_product_id, owner_email, sample_id, sample_name, "
                  "sample_serial FROM bench_search_fixture")
        row = c.fetchone()
    if row is None or row[0] != FIXTURE_VERSION or row[1] != members:
        return None
    from products.models import DeviceGroup, Product

    product = Product.objects.get(pk=row[2])
    return Fixture(product_id=product.pk, product_slug=product.slug, other_product_id=row[3], owner_email=row[4],
                   members=row[1], sample_id=row[5], sample_name=row[6], sample_serial=row[7],
                   group_ids=dict(DeviceGroup.objects.filter(product=product).values_list("name", "id")))


def device_rows(rng: random.Random, count: int, *, product_id, first_serial: int, now: datetime, quarantined=False,
                denied=False, owner_id=None):
    """`count` device rows in the bench's shape: names `sensor_<first 8 hex of the id>`, firmware 1-20 (1% none),
    last contact within 30 days (2% never), serial BOR + 12 digits."""
    for n in range(count):
        device_id = "%024x" % rng.getrandbits(96)
        last = None if rng.random() < 0.02 else now - timedelta(seconds=rng.randrange(2_592_000))
        firmware = None if rng.random() < 0.01 else rng.randint(1, 20)
        yield {
            "id": device_id, "platform_id": 13, "serial_number": f"BOR{first_serial + n:012d}", "secret_hash": "",
            "imei": "", "mac_wifi": "", "manufactured_at": now, "added_to_product_at": now if product_id else None,
            "name": f"sensor_{device_id[:8]}", "notes": "", "development": False, "quarantined": quarantined,
            "denied": denied, "firmware_version": firmware, "system_firmware_version": "",
            "firmware_updates_enabled": True, "firmware_updates_forced": False, "status": "normal",
            "functions": "[]", "variables": "{}", "online": rng.random() < 0.1, "last_heard": last,
            "last_handshake_at": last, "updated_at": now, "product_id": product_id, "owner_id": owner_id,
        }


DEVICE_COLUMNS = ["id", "platform_id", "serial_number", "secret_hash", "imei", "mac_wifi", "manufactured_at",
                  "added_to_product_at", "name", "notes", "development", "quarantined", "denied", "firmware_version",
                  "system_firmware_version", "firmware_updates_enabled", "firmware_updates_forced", "status",
                  "functions", "variables", "online", "last_heard", "last_handshake_at", "updated_at", "product_id",
                  "owner_id"]


class Writer:
    """Bulk rows into a table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, connection):
        self.connection = connection

    def write(self, table: str, columns: list[str], rows) -> None:
        with self.connection.cursor() as c:
            if self.connection.vendor == "postgresql":
                with c.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            marks = ", ".join(["%s"] * len(columns))
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == 10_000:
                    c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
                    batch = []
            if batch:
                c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)


@contextmanager
def indexes_dropped(connection, table: str):
    """Drop a table's secondary indexes for a bulk load and build them again after: building an index once is
    several times faster than maintaining it row by row (the GIN trigram index above all)."""
    with connection.cursor() as c:
        if connection.vendor == "postgresql":
            c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexdef NOT LIKE "
                      "'CREATE UNIQUE%%'", [table])
        else:
            c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT "
                      "NULL AND sql NOT LIKE 'CREATE UNIQUE%%'", [table])
        saved = c.fetchall()
        for name, _sql in saved:
            c.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as c:
        for _name, sql in saved:
            c.execute(sql)


def load_fixture(members: int, seed: int = 14) -> Fixture:
    """The bench fleet, loaded in bulk (fixture work, never timed):

    - `big-fleet`: `members` devices, plus 1% as many quarantined and 0.1% denied; groups group-0..9 by hash
      (10% each) and `group-rare` (100 devices); 1% of its members claimed to the bench user;
    - `other-fleet` in another account: a tenth as many devices with names of the same shape (a leak into
      big-fleet's list would show as a wrong id in the SQL comparison);
    - the bench user's sandbox: 100 devices outside any product.
    """
    from django.db import connection

    from console.scoping import Principal
    from console.services import orgs as org_services
    from console.services import users as user_services
    from products.models import DeviceGroup, Product
    from products.services import product_create

    rng = random.Random(seed)
    now = datetime.now(dt_timezone.utc).replace(microsecond=0)
    owner = user_services.user_create(email="bench@example.com", password="bench-password-1", validate=False)
    stranger = user_services.user_create(email="other@example.com", password="bench-password-1", validate=False)
    org = org_services.org_create(creator=owner, name="Bench Org")
    other_org = org_services.org_create(creator=stranger, name="Other Org")
    big = product_create(principal=Principal.for_user(owner), account=org, name="Big Fleet", platform_id=13)
    other = product_create(principal=Principal.for_user(stranger), account=other_org, name="Other Fleet",
                           platform_id=13)
    writer = Writer(connection)
    pg = connection.vendor == "postgresql"
    groups = {f"group-{n}": DeviceGroup.objects.create(product=big, name=f"group-{n}") for n in range(10)}
    groups["group-rare"] = DeviceGroup.objects.create(product=big, name="group-rare")
    DeviceGroup.objects.create(product=other, name="group-3")  # the same name in another tenant
    memberships: list[tuple[str, int]] = []
    quarantined, denied = members // 100, members // 1000
    print(f"Loading {members:,} members (+{quarantined:,} quarantined, {denied:,} denied), {members // 10:,} devices "
          f"of another tenant, 100 sandbox devices …", flush=True)
    t0 = time.perf_counter()
    ids: list[str] = []
    serial = [0]

    def batch(count, **kw):
        yield from device_rows(rng, count, first_serial=serial[0], now=now, **kw)
        serial[0] += count

    def claimed_members():
        for n, row in enumerate(batch(members, product_id=big.pk)):
            ids.append(row["id"])  # members only go into groups (denying a device takes it out of its groups)
            if n % 100 == 7:
                row["owner_id"] = owner.pk
            # Each member in one of group-0..9 at random, and one in a hundred in group-rare as well. On
            # PostgreSQL the row carries them (group_ids, migration 0017) as the membership triggers would
            # have written them: the memberships are copied with the triggers off, so 1,000,000 device rows
            # are not written twice.
            mine = [groups[f"group-{rng.randrange(10)}"].pk]
            if n % (members // 100) == 3 and n < members - 1:
                mine.append(groups["group-rare"].pk)
            memberships.extend((row["id"], g) for g in mine)
            row["group_ids"] = sorted(mine)
            yield row

    columns = DEVICE_COLUMNS + (["group_ids"] if pg else [])

    with indexes_dropped(connection, "devices_device"):
        for rows in (claimed_members(), batch(quarantined, product_id=big.pk, quarantined=True),
                     batch(denied, product_id=big.pk, denied=True), batch(members // 10, product_id=other.pk),
                     batch(100, product_id=None, owner_id=owner.pk)):
            writer.write("devices_device", columns, ([r.get(c) for c in columns] for r in rows))
        print(f"  devices written in {time.perf_counter() - t0:.1f} s; serials, groups, indexes …", flush=True)
        with connection.cursor() as c:
            c.execute("INSERT INTO devices_serialnumber (serial, device_id) SELECT serial_number, id FROM devices_device")
    Product.objects.filter(pk=big.pk).update(device_count=members)
    Product.objects.filter(pk=other.pk).update(device_count=members // 10)
    with connection.cursor() as c:
        if pg:
            c.execute("ALTER TABLE devices_devicegroupmembership DISABLE TRIGGER dgm_group_ids_insert")
        writer.write("devices_devicegroupmembership", ["device_id", "group_id"], memberships)
        if pg:
            c.execute("ALTER TABLE devices_devicegroupmembership ENABLE TRIGGER dgm_group_ids_insert")
        c.execute("UPDATE products_devicegroup SET device_count = (SELECT count(*) FROM devices_devicegroupmembership m "
                  "WHERE m.group_id = products_devicegroup.id)")
        c.execute("CREATE TABLE bench_search_fixture (version integer, members integer, product_id bigint, "
                  "other_product_id bigint, owner_email text, sample_id text, sample_name text, sample_serial text)")
        sample = ids[123_456 % len(ids)]
        c.execute("SELECT name, serial_number FROM devices_device WHERE id = %s", [sample])
        name, serial_number = c.fetchone()
        c.execute("INSERT INTO bench_search_fixture VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                  [FIXTURE_VERSION, members, big.pk, other.pk, owner.email, sample, name, serial_number])
    analyze(connection)
    print(f"  fixture loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    return stored_fixture(members)


def analyze(connection) -> None:
    """Fresh statistics and visibility maps after a bulk load or a migration (autovacuum is off here)."""
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def prepare(args) -> Fixture:
    """Migrate, and load the fixture unless --reuse finds it already there; then fresh statistics."""
    sqlite_path = None
    if args.sqlite:
        sqlite_path = ROOT / "var" / "bench-search" / f"bench-{args.members}.sqlite3"
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        if not args.reuse and sqlite_path.exists():
            sqlite_path.unlink()
    elif not (args.reuse and pg_database_exists(PG_URL)):
        recreate_pg_database(PG_URL)
    setup_django(PG_URL, sqlite_path)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    fixture = stored_fixture(args.members) if args.reuse else None
    if fixture is None:
        if args.reuse:
            print("No fixture of this version and size to reuse: loading it afresh.", flush=True)
            connection.close()
            if args.sqlite:
                sqlite_path.unlink(missing_ok=True)
            else:
                recreate_pg_database(PG_URL)
            call_command("migrate", verbosity=0)
        fixture = load_fixture(args.members)
    else:
        analyze(connection)  # a migration since the last run may have added an index
    if connection.vendor == "postgresql":
        keep_marks(connection)
    return fixture


def keep_marks(connection) -> None:
    """What the worker does every minute (devices.keep_list_marks): the marks of the big lists built, or
    rebuilt where their segments grew, and their counts folded. Timed and printed: it is work the server does."""
    from devices.tasks import keep_list_marks

    start = time.perf_counter()
    keep_list_marks()
    print(f"List marks kept (devices.keep_list_marks) in {time.perf_counter() - start:.1f} s", flush=True)
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE devices_listmarks, devices_listcount")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default (SQLite), 100,000 devices")
    parser.add_argument("--members", type=int, help="member devices of big-fleet (default 1,000,000; 100,000 "
                                                    "with --sqlite)")
    parser.add_argument("--reuse", action="store_true", help="keep a fixture an earlier run loaded")
    parser.add_argument("--load-only", action="store_true", help="load the fixture and stop")
    parser.add_argument("--runs", type=int, default=20, help="requests per shape (median and p95 of these)")
    parser.add_argument("--only", default="", help="time only the shapes whose label contains this")
    args = parser.parse_args()
    args.members = args.members or (100_000 if args.sqlite else 1_000_000)
    fixture = prepare(args)
    if args.load_only:
        return
    with bench_lock():
        run(fixture, args)


@contextmanager
def bench_lock():
    """Time only while holding the machine's benchmark lock (flock(1) on the same file), so two engineers'
    benchmarks never run at once; loading happens before it is taken."""
    Path(LOCK).parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as handle:
        start = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_EX)
        waited = time.perf_counter() - start
        if waited > 1:
            print(f"(waited {waited:.0f} s for {LOCK})", flush=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the shapes ---------------------------------------------------------------------------------------------

def api_shapes(fx: Fixture) -> list[tuple[str, dict]]:
    """GET /v1/products/:p/devices: the issue's seven, then their siblings on every filter, sort and depth.
    Terms are picked for what they match in this fleet (names sensor_<8 hex>, serials BOR + 12 digits), never
    for how fast they answer."""
    shapes = [
        # the issue's table
        ("deviceName=zzz (matches nothing)", {"deviceName": "zzz"}),
        ("groups=group-3&deviceName=zzz", {"groups": "group-3", "deviceName": "zzz"}),
        ("deviceName=sensor_9&sortAttr=deviceName", {"deviceName": "sensor_9", "sortAttr": "deviceName"}),
        ("deviceName=ab (2 chars)", {"deviceName": "ab"}),
        ("perPage=100&page=5000 (the middle)", {"perPage": 100, "page": 5000}),
        ("groups=group-3,group-4", {"groups": "group-3,group-4"}),
        ("deviceName=a (1 char)", {"deviceName": "a"}),
        # plain list: sorts, directions, depth
        ("first page", {}),
        *[(f"sortAttr={s}&sortDir={d}", {"sortAttr": s, "sortDir": d})
          for s in ("lastConnection", "deviceName", "deviceId", "firmwareVersion") for d in ("asc", "desc")],
        ("page=1000", {"page": 1000}),
        ("perPage=100&page=2500 (a quarter in)", {"perPage": 100, "page": 2500}),
        ("page=40000 (the last)", {"page": 40_000}),
        ("sortAttr=deviceName&page=20000", {"sortAttr": "deviceName", "page": 20_000}),
        ("page=50000 (past the end)", {"page": 50_000}),
        # deviceName: 1, 2, 3+ characters; none, a few, most; case; sorts
        ("deviceName=q (1 char, none)", {"deviceName": "q"}),
        ("deviceName=zz (2 chars, none)", {"deviceName": "zz"}),
        ("deviceName=e (1 char, all)", {"deviceName": "e"}),
        ("deviceName=ab1 (3 chars, ~0.2%)", {"deviceName": "ab1"}),
        ("deviceName=ab12 (4 chars, ~0.01%)", {"deviceName": "ab12"}),
        ("deviceName=SENSOR (case, all)", {"deviceName": "SENSOR"}),
        (f"deviceName={fx.sample_name} (one)", {"deviceName": fx.sample_name}),
        ("deviceName=_9 (a LIKE wildcard, escaped)", {"deviceName": "_9"}),
        ("deviceName=ab&sortAttr=firmwareVersion&sortDir=desc",
         {"deviceName": "ab", "sortAttr": "firmwareVersion", "sortDir": "desc"}),
        ("deviceName=ab&sortDir=asc", {"deviceName": "ab", "sortDir": "asc"}),
        ("deviceName=ab1&sortAttr=deviceId", {"deviceName": "ab1", "sortAttr": "deviceId"}),
        ("deviceName=a&page=100", {"deviceName": "a", "page": 100}),
        ("deviceName=ab&page=40", {"deviceName": "ab", "page": 40}),
        # deviceId prefix
        ("deviceId=a (1/16)", {"deviceId": "a"}),
        ("deviceId=ab (1/256)", {"deviceId": "ab"}),
        ("deviceId=abc (1/4096)", {"deviceId": "abc"}),
        ("deviceId=<full id>", {"deviceId": fx.sample_id}),
        ("deviceId=zzz (not hex, none)", {"deviceId": "zzz"}),
        ("deviceId=AB&sortAttr=deviceName (case)", {"deviceId": "AB", "sortAttr": "deviceName"}),
        # serialNumber prefix
        ("serialNumber=BOR (all)", {"serialNumber": "BOR"}),
        ("serialNumber=b (case, all)", {"serialNumber": "b"}),
        ("serialNumber=BOR0000001 (10%)", {"serialNumber": "BOR0000001"}),
        ("serialNumber=BOR00000012345 (10)", {"serialNumber": "BOR00000012345"}),
        (f"serialNumber={fx.sample_serial} (one)", {"serialNumber": fx.sample_serial}),
        ("serialNumber=XYZ (none)", {"serialNumber": "XYZ"}),
        # groups
        ("groups=group-3", {"groups": "group-3"}),
        ("groups=group-rare (100)", {"groups": "group-rare"}),
        ("groups=nope (no such group)", {"groups": "nope"}),
        ("groups=group-3&sortAttr=deviceName&sortDir=desc",
         {"groups": "group-3", "sortAttr": "deviceName", "sortDir": "desc"}),
        ("groups=group-3,group-rare&sortAttr=firmwareVersion",
         {"groups": "group-3,group-rare", "sortAttr": "firmwareVersion"}),
        ("groups=group-3&page=40", {"groups": "group-3", "page": 40}),
        ("groups=group-3&page=1000 (deep)", {"groups": "group-3", "page": 1000}),
        # combined
        ("groups=group-3&deviceName=ab", {"groups": "group-3", "deviceName": "ab"}),
        ("groups=group-rare&deviceName=sensor", {"groups": "group-rare", "deviceName": "sensor"}),
        ("deviceId=a&deviceName=b", {"deviceId": "a", "deviceName": "b"}),
        ("serialNumber=BOR0000001&groups=group-3", {"serialNumber": "BOR0000001", "groups": "group-3"}),
        ("deviceId=ab&serialNumber=BOR&groups=group-4",
         {"deviceId": "ab", "serialNumber": "BOR", "groups": "group-4"}),
        # quarantine (1% of the fleet)
        ("quarantined=true", {"quarantined": "true"}),
        ("quarantined=true&sortAttr=deviceName&sortDir=desc",
         {"quarantined": "true", "sortAttr": "deviceName", "sortDir": "desc"}),
        ("quarantined=true&deviceName=ab", {"quarantined": "true", "deviceName": "ab"}),
        ("quarantined=true&deviceName=zzz", {"quarantined": "true", "deviceName": "zzz"}),
        ("quarantined=true&page=300", {"quarantined": "true", "page": 300}),
    ]
    return shapes


def _like(term: str, anywhere: bool) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if anywhere else f"{escaped}%"


HAND_ORDER = {
    ("lastConnection", True): "d.last_heard DESC NULLS LAST, d.id", ("lastConnection", False): "d.last_heard ASC NULLS FIRST, d.id DESC",
    ("deviceName", True): "{name} DESC, d.id DESC", ("deviceName", False): "{name}, d.id",
    ("deviceId", True): "d.id DESC", ("deviceId", False): "d.id",
    ("firmwareVersion", True): "d.firmware_version DESC NULLS FIRST, d.id DESC",
    ("firmwareVersion", False): "d.firmware_version ASC NULLS LAST, d.id",
}


def hand_sql(fx: Fixture, params: dict, *, paged: bool = True) -> tuple[str, list]:
    """The page as one would write it in psql: the filters in a WHERE, ORDER BY the sort, LIMIT/OFFSET."""
    quarantined = params.get("quarantined") == "true"
    where, args = ["d.product_id = %s", "d.quarantined = %s", "NOT d.denied"], [fx.product_id, quarantined]
    if params.get("deviceId"):
        value = params["deviceId"].lower()
        where.append("d.id = %s" if len(value) == 24 else "d.id LIKE %s ESCAPE '\\'")
        args.append(value if len(value) == 24 else _like(value, False))
    if params.get("deviceName"):
        where.append("upper(d.name) LIKE upper(%s) ESCAPE '\\'")
        args.append(_like(params["deviceName"], True))
    if params.get("serialNumber"):
        where.append("d.id IN (SELECT device_id FROM devices_serialnumber WHERE serial LIKE %s ESCAPE '\\')")
        args.append(_like(params["serialNumber"].upper(), False))
    if params.get("groups"):
        names = params["groups"].split(",")
        where.append("d.id IN (SELECT m.device_id FROM devices_devicegroupmembership m JOIN products_devicegroup g "
                     f"ON g.id = m.group_id WHERE g.product_id = %s AND g.name IN ({', '.join(['%s'] * len(names))}))")
        args += [fx.product_id, *names]
    sort = params.get("sortAttr", "lastConnection")
    descending = params.get("sortDir", "desc" if sort == "lastConnection" else "asc") == "desc"
    # Names sort by their ASCII lower case, code point by code point (devices migration 0016).
    from django.db import connection

    name = 'lower(d.name COLLATE "C")' if connection.vendor == "postgresql" else "lower(d.name)"
    order = HAND_ORDER[sort, descending].format(name=name)
    sql = f"SELECT d.id FROM devices_device d WHERE {' AND '.join(where)} ORDER BY {order}"
    if paged:
        per_page, page = int(params.get("perPage", 25)), int(params.get("page", 1))
        sql += " LIMIT %s OFFSET %s"
        args += [per_page, (page - 1) * per_page]
    return sql, args


@dataclass
class Result:
    label: str
    samples: list[float]
    queries: int
    hand: list[float] | None = None
    rows: int = 0
    note: str = ""
    statements: list[tuple] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.samples) * 1000

    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000

    def hand_median(self) -> float | None:
        return statistics.median(self.hand) * 1000 if self.hand else None


def time_sql(sql: str, args: list, runs: int) -> tuple[list[float], list]:
    """A hand-written query's times: `runs` of them, or fewer once it has spent five seconds (the plain SQL
    of a rare term reads the whole fleet)."""
    from django.db import connection

    samples, rows, spent = [], [], 0.0
    for _ in range(runs):
        start = time.perf_counter()
        with connection.cursor() as c:
            c.execute(sql, args)
            rows = c.fetchall()
        samples.append(time.perf_counter() - start)
        spent += samples[-1]
        if spent > 5 and len(samples) >= 3:
            break
    return samples, rows


def time_request(client, url: str, params: dict, runs: int, headers: dict, *, stream: bool = False):
    """The request `runs` times in-process (server time: routing, auth, queries, rendering), after one
    warm-up whose statements are counted."""
    from django.db import connection

    def once():
        response = client.get(url, params, **headers)
        body = b"".join(response.streaming_content) if stream else response.content
        assert response.status_code == 200, (url, params, response.status_code, body[:300])
        return response, body

    once()
    statements = []

    def record(execute, sql, sql_params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, sql_params, many, context)
        finally:
            statements.append((time.perf_counter() - start, sql, sql_params))

    with connection.execute_wrapper(record):
        response, body = once()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        samples.append(time.perf_counter() - start)
    return samples, len(statements), response, body, statements


def run(fixture: Fixture, args) -> None:
    from django.db import connection
    from django.http import StreamingHttpResponse
    from django.test import Client
    from django.urls import get_resolver

    from console.heap import settle_heap
    from console.models import AccessToken, User
    from console.services import tokens as token_services

    owner = User.objects.get(email=fixture.owner_email)
    token = token_services.token_issue(kind=AccessToken.Kind.USER, user=owner, client_name="bench").access_token
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    api, console = Client(), Client()
    console.force_login(owner)
    # As the web process starts (console/asgi.py): every view imported, then the startup heap frozen out of the
    # collector's sight. Without it a full collection re-walks Django's startup objects inside a request.
    get_resolver().url_patterns  # noqa: B018 (the import is the point)
    settle_heap()
    vendor = connection.vendor
    limit = SQLITE_LIMIT_MS if vendor == "sqlite" else TARGET_MS
    results: list[Result] = []
    runs = args.runs

    url = f"/v1/products/{fixture.product_id}/devices"
    for label, params in api_shapes(fixture):
        if args.only and args.only not in f"API {label}":
            continue
        query = {"perPage": 25, **params}
        samples, queries, response, body, statements = time_request(api, url, query, runs, auth)
        data = response.json()
        ids = [d["id"] for d in data["devices"]]
        sql, sql_args = hand_sql(fixture, query)
        hand, rows = time_sql(sql, sql_args, runs)
        assert ids == [r[0] for r in rows], f"{label}: the list and the hand-written SQL disagree"
        meta = data["meta"]
        note = f"{meta['total']:,}{'~' if meta['total_is_estimate'] else ''}"
        results.append(Result(f"API {label}", samples, queries, hand, len(ids), note, statements))

    base = f"/products/{fixture.product_slug}/devices/"
    console_shapes = [("console list", {}, {}), ("console q=zzz", {"q": "zzz"}, {"deviceName": "zzz"}),
                      ("console q=ab", {"q": "ab"}, {"deviceName": "ab"}),
                      ("console q=sensor_9&sort=name", {"q": "sensor_9", "sort": "name"},
                       {"deviceName": "sensor_9", "sortAttr": "deviceName"}),
                      ("console groups=group-3,group-4", {"groups": "group-3,group-4"}, {"groups": "group-3,group-4"}),
                      ("console quarantined=true", {"quarantined": "true"}, {"quarantined": "true"}),
                      ("console page=40000", {"page": 40_000}, {"page": 40_000})]
    for label, params, api_params in console_shapes:
        if args.only and args.only not in label:
            continue
        samples, queries, _response, _body, statements = time_request(console, base, params, runs, {})
        sql, sql_args = hand_sql(fixture, {"perPage": 25, **api_params})
        hand, _ = time_sql(sql, sql_args, runs)
        results.append(Result(label, samples, queries, hand, 0, "", statements))

    export = f"/products/{fixture.product_slug}/devices/export.csv"
    for label, params, api_params in [("export q=zzz (none)", {"q": "zzz", "by": "name"}, {"deviceName": "zzz"}),
                                      ("export groups=group-rare (100)", {"groups": "group-rare"},
                                       {"groups": "group-rare"}),
                                      ("export q=ab12&by=name (~100)", {"q": "ab12", "by": "name"}, {"deviceName": "ab12"}),
                                      ("export q=ab1 (~2,000)", {"q": "ab1", "by": "name"}, {"deviceName": "ab1"})]:
        if args.only and args.only not in label:
            continue
        samples, queries, response, body, statements = time_request(console, export, params, max(3, runs // 4), {},
                                                                    stream=True)
        assert isinstance(response, StreamingHttpResponse)
        lines = body.decode().splitlines()[1:]
        sql, sql_args = hand_sql(fixture, {**api_params, "sortAttr": "deviceId"}, paged=False)
        hand, rows = time_sql(sql, sql_args, max(3, runs // 4))
        assert [line.split(",")[0] for line in lines] == [r[0] for r in rows], f"{label}: export disagrees"
        results.append(Result(label, samples, queries, hand, len(lines), "streamed", statements))

    sandbox = [("API GET /v1/devices?sandbox_only=true (100)", "/v1/devices", {"sandbox_only": "true"}, auth, api,
                "SELECT d.id FROM devices_device d WHERE d.owner_id = %s AND d.product_id IS NULL "
                "ORDER BY d.last_handshake_at DESC NULLS LAST, d.id"),
               ("console sandbox list (10,100 claimed)", "/devices/", {}, {}, console,
                "SELECT d.id FROM devices_device d WHERE d.owner_id = %s "
                "ORDER BY d.last_handshake_at DESC NULLS LAST, d.id LIMIT 50"),
               ("console sandbox list page=150", "/devices/", {"page": 150}, {}, console,
                "SELECT d.id FROM devices_device d WHERE d.owner_id = %s "
                "ORDER BY d.last_handshake_at DESC NULLS LAST, d.id LIMIT 50 OFFSET 7450")]
    for label, path, params, headers, client, sql in sandbox:
        if args.only and args.only not in label:
            continue
        samples, queries, response, body, statements = time_request(client, path, params, runs, headers)
        hand, rows = time_sql(sql, [owner.pk], runs)
        if path == "/v1/devices":
            assert [d["id"] for d in response.json()] == [r[0] for r in rows], f"{label}: disagrees"
        results.append(Result(label, samples, queries, hand, len(rows), "", statements))

    report(results, limit, vendor, fixture, runs)
    if vendor == "postgresql" and results:
        explain_slowest(results)


def report(results: list[Result], limit: float, vendor: str, fixture: Fixture, runs: int) -> None:
    print()
    print(f"{vendor}, {fixture.members:,} member devices; server time in-process, {runs} requests per shape; "
          f"target {limit:.0f} ms median")
    print(f"{'shape':58} {'rows':>5} {'total':>9} {'median':>7} {'p95':>7} {'hand SQL':>9} {'/target':>7} {'queries':>7}")
    over = []
    for r in results:
        hand = r.hand_median()
        hand_text = f"{hand:9.2f}" if hand is not None else f"{'':9}"
        print(f"{r.label[:58]:58} {r.rows:5d} {r.note:>9} {r.median():7.2f} {r.p95():7.2f} {hand_text} "
              f"{r.median() / limit:6.2f}x {r.queries:7d}")
        if r.median() > limit:
            over.append(r.label)
    print()
    print("median and p95: ms of server time; hand SQL: median ms of the hand-written query for the same page "
          "(its ids asserted equal); total: meta.total, ~ an estimate; /target: median over the target")
    print(f"{len(results) - len(over)} of {len(results)} shapes within {limit:.0f} ms" +
          (f"; over: {', '.join(over)}" if over else ""))


def explain_slowest(results: list[Result]) -> None:
    """EXPLAIN ANALYZE of the slowest statement of the slowest shape (for bench/README.md)."""
    from django.db import connection

    slowest = max(results, key=Result.median)
    if not slowest.statements:
        return
    _spent, sql, params = max(slowest.statements, key=lambda s: s[0])
    with connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in c.fetchall())
    print(f"\nThe slowest shape: {slowest.label} ({slowest.median():.1f} ms); its slowest statement:\n{sql}\n"
          f"params {params}\n{plan}")
    if os.environ.get("BENCH_STATEMENTS"):
        for r in results:
            print(f"\n{r.label}")
            for spent, sql, params in r.statements:
                print(f"  {spent * 1000:7.2f} ms  {sql[:160]}  {params}")


if __name__ == "__main__":
    main()
