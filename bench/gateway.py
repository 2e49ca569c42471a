"""Device gateway benchmarks (issue 12) on PostgreSQL + Redis, with real gateway, worker and web processes and the
fleet simulator over 127.0.0.1.

    .venv/bin/python bench/gateway.py connect [--devices 10000] [--at-a-time 200] [--gateways 2] [--workers 2]
    .venv/bin/python bench/gateway.py idle    [--devices 20000] [--minutes 5] [--gateways 2]
    .venv/bin/python bench/gateway.py calls   [--rate 200] [--seconds 30] [--devices 100] [--web 1]
    .venv/bin/python bench/gateway.py all

(`make bench-gateway` runs `all`.) Uses BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cyan_bench,
dropped and recreated) and Redis db 6 on 127.0.0.1 (BENCH_REDIS_URL). Fixtures (the registry, keys, products) are
loaded with COPY and are not measured; one RSA-1024 key is shared by every device of a benchmark fleet
(benchmark-only: generating 20,000 keys is not what is measured). Prints medians, p99, CPU and memory, and the
ratios against the targets and against the machine's own limit (`openssl speed rsa2048`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
PYTHON = sys.executable
BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cyan_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
DATA_DIR = ROOT / "var" / "bench-gateway"
TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP_SECONDS = 2  # calls: offered at the rate before the measured window


def env() -> dict:
    out = dict(os.environ)
    out.update(DATABASE_URL=BENCH_URL, REDIS_URL=REDIS, CACHE_KEY_PREFIX="bench-gw", CELERY_QUEUE="bench-gw",
               CYAN_DATA_DIR=str(DATA_DIR), DJANGO_SETTINGS_MODULE="console.settings", PYTHONUNBUFFERED="1",
               RATE_LIMIT_ENABLED="false")
    return out


def setup_django() -> None:
    os.environ.update(env())
    import django

    django.setup()


def prepare() -> None:
    import psycopg
    import redis

    admin = BENCH_URL.rsplit("/", 1)[0] + "/postgres"
    name = BENCH_URL.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(REDIS).flushdb()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- fixtures ------------------------------------------------------------------------------------------------
def shared_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    return spki, pkcs1


def load_fleet(count: int, *, platform_id: int = 6, product=None, members: int = 0, onboarded: bool = False):
    """Register `count` devices with one shared key; the first `members` are in `product` (and, if
    `onboarded`, have connected before). Returns (ids, the shared private key)."""
    import secrets

    from django.db import connection
    from django.utils import timezone

    from products.models import Product

    spki, pkcs1 = shared_key()
    now = timezone.now()
    ids = [secrets.token_hex(12) for _ in range(count)]
    with connection.cursor() as c:
        raw = c.cursor
        with raw.copy("COPY devices_device (id, platform_id, serial_number, secret_hash, imei, mac_wifi, "
                      "manufactured_at, name, notes, development, quarantined, denied, system_firmware_version, "
                      "firmware_updates_enabled, firmware_updates_forced, status, functions, variables, online, "
                      "updated_at, product_id, added_to_product_at, first_connected_at) FROM STDIN") as copy:
            for n, device_id in enumerate(ids):
                member = product is not None and n < members
                copy.write_row((device_id, platform_id, f"BEN{n:09d}", "", "", "", now, "", "", False, False, False,
                                "", True, False, "normal", "[]", "{}", False, now,
                                product.pk if member else None, now if member else None,
                                now if member and onboarded else None))
        with raw.copy("COPY devices_devicekey (device_id, algorithm, public_key, created_at, updated_at) "
                      "FROM STDIN") as copy:
            for device_id in ids:
                copy.write_row((device_id, "rsa", spki, now, now))
        c.execute("VACUUM ANALYZE devices_device")
        c.execute("VACUUM ANALYZE devices_devicekey")
    if product is not None and members:
        Product.objects.filter(pk=product.pk).update(device_count=members)
    return ids, pkcs1


def owner_and_product(quarantine: bool = True):
    from console.scoping import Principal
    from console.services import orgs as org_services
    from console.services import users as user_services
    from products.models import Product
    from products.services import product_create

    owner = user_services.user_create(email="gateway-bench@example.com", password="bench-password-1",
                                      validate=False)
    org = org_services.org_create(creator=owner, name="Gateway Bench")
    product = product_create(principal=Principal.for_user(owner), account=org, name="Bench Photons", platform_id=6)
    Product.objects.filter(pk=product.pk).update(quarantine=quarantine)
    product.refresh_from_db()
    return owner, product


def write_secrets(path: Path, ids: list[str], pkcs1: bytes, port: int) -> None:
    from devices import keys

    with open(path, "w") as fh:
        fh.write(json.dumps({"kind": "server", "server_key": base64.b64encode(keys.server_key_file("127.0.0.1")).decode(),
                             "host": "127.0.0.1", "port": port}) + "\n")
        fh.write(json.dumps({"kind": "shared_key", "private_key": base64.b64encode(pkcs1).decode()}) + "\n")
        for device_id in ids:
            fh.write(json.dumps({"kind": "device", "id": device_id, "platform_id": 6}) + "\n")


# --- processes -----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


class Processes:
    def __init__(self):
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = DATA_DIR / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], extra_env: dict | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        proc = subprocess.Popen(args, cwd=ROOT, env={**env(), **(extra_env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def gateway(self, n: int) -> int:
        port = free_port()
        self.start(f"gateway{n}", [PYTHON, "manage.py", "gateway", "--host", "127.0.0.1", "--port", str(port)],
                   {"GATEWAY_MAX_HANDSHAKES_PER_ADDRESS": "100000", "GATEWAY_MAX_HANDSHAKES_PER_SECOND": "100000"})
        wait_port(port)
        return port

    def worker(self, n: int, concurrency: int = 2) -> None:
        self.start(f"worker{n}", [PYTHON, "-m", "celery", "-A", "console", "worker", "--loglevel", "WARNING",
                                  "--concurrency", str(concurrency), "--queues", "bench-gw", "-n", f"bench{n}@%h"])

    def web(self, workers: int = 1) -> int:
        port = free_port()
        self.start("web", [PYTHON, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port",
                           str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log",
                           "--workers", str(workers)])
        wait_port(port)
        return port

    def pids(self, prefix: str) -> list[int]:
        """The processes named `prefix…` and their children (Celery's prefork pool)."""
        out = []
        for name, proc in self.procs.items():
            if name.startswith(prefix) and proc.poll() is None:
                out += [proc.pid, *children(proc.pid)]
        return out

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def processes():
    procs = Processes()
    try:
        yield procs
    finally:
        procs.stop()


def children(pid: int) -> list[int]:
    out = []
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(path.parent.name)
            out += [child, *children(child)]
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / TICKS, sum(fields) / TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def pids_named(name: str) -> list[int]:
    out = []
    for path in Path("/proc").glob("[0-9]*/comm"):
        try:
            if path.read_text().strip().startswith(name):
                out.append(int(path.parent.name))
        except OSError:
            continue
    return out


def rsa_sign_per_second() -> float:
    """`openssl speed rsa2048`: RSA-2048 private-key operations per second on one core."""
    out = subprocess.run(["openssl", "speed", "-seconds", "3", "rsa2048"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("rsa 2048"):
            return float(line.split()[-2])
    raise RuntimeError("openssl speed printed no rsa 2048 line")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


# --- 1. first connects ---------------------------------------------------------------------------------------
def bench_connect(args) -> None:
    prepare()
    raise_file_limit()
    owner, product = owner_and_product(quarantine=True)
    members = args.devices // 2
    print(f"connect: {args.devices:,} first-time devices ({members:,} product members, the rest unknown to it: "
          f"quarantine), {args.at_a_time} connecting at a time, {args.gateways} gateways, {args.workers} workers")
    ids, pkcs1 = load_fleet(args.devices, product=product, members=members)
    limit = rsa_sign_per_second()
    from devices import keys
    from devices.simulator import DeviceSpec, Fleet
    from devices.simulator.channel import load_device_key, device_public_der

    server_key = keys.server_key_file("127.0.0.1")
    with processes() as procs:
        ports = [procs.gateway(n) for n in range(args.gateways)]
        for n in range(args.workers):
            procs.worker(n)
        # Beat re-enqueues onboarding work whose worker died or whose message was lost (part of the design).
        procs.start("beat", [PYTHON, "-m", "celery", "-A", "console", "beat", "--loglevel", "WARNING",
                             "--schedule", str(DATA_DIR / "celerybeat-schedule")])
        time.sleep(3)
        key = load_device_key(pkcs1)
        public = device_public_der(key)
        specs = [DeviceSpec(d, 6, shared_key=key, shared_public_der=public) for d in ids]
        started: dict[str, float] = {}

        async def run():
            fleets = [Fleet(specs[n::args.gateways], "127.0.0.1", port, server_key=server_key,
                            product_id=product.pk, firmware_version=1, reconnect=True)
                      for n, port in enumerate(ports)]
            loop = asyncio.get_running_loop()
            for fleet in fleets:
                fleet.loop = loop
            waiting = [d for fleet in fleets for d in fleet.devices]
            waiting.reverse()
            in_flight = []
            t0 = time.time()
            while waiting or in_flight:
                in_flight = [d for d in in_flight if d.state != "online"]
                while waiting and len(in_flight) < args.at_a_time:
                    device = waiting.pop()
                    started[device.device_id] = time.time()
                    device.schedule_connect(0)
                    in_flight.append(device)
                await asyncio.sleep(0.002)
                if time.time() - t0 > 600:
                    raise RuntimeError("the fleet did not connect in 10 minutes")
            hello_done = time.time()
            failures = sum(f.failures for f in fleets)
            return fleets, t0, hello_done, failures

        cpu0 = {name: cpu_seconds(procs.pids(name)) for name in ("gateway", "worker")}
        fleets, t0, hello_done, failures = asyncio.run(_with_onboarding_wait(run, len(ids)))
        cpu1 = {name: cpu_seconds(procs.pids(name)) for name in ("gateway", "worker")}
        from devices.models import Onboarding

        rows = list(Onboarding.objects.filter(state="done").values_list("device_id", "outcome", "decided_at"))
        latencies = [decided.timestamp() - started[d] for d, _, decided in rows if d in started]
        outcomes = {}
        for _, outcome, _ in rows:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        last = max(decided.timestamp() for _, _, decided in rows)
        elapsed = last - t0
        rate = len(rows) / elapsed
        machine = limit * (os.cpu_count() or 1) / 2
        print(f"  onboarded {len(rows):,} of {len(ids):,} ({outcomes}); failed handshakes (retried) {failures}")
        print(f"  sustained {rate:,.0f} connects/s over {elapsed:.1f} s  (target >= 300: {rate / 300:.2f}x)")
        print(f"  connect -> onboarded: median {statistics.median(latencies) * 1000:.0f} ms, "
              f"p99 {pct(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms  "
              f"(target p99 <= 2000 ms: {pct(latencies, 0.99) / 2:.2f} of it)")
        print(f"  machine's limit: openssl speed rsa2048 = {limit:,.0f} private-key ops/s per core; two per "
              f"handshake on {os.cpu_count()} cores = {machine:,.0f} handshakes/s; achieved {rate / machine:.1%} of it")
        print(f"  CPU during the run: gateways {cpu1['gateway'] - cpu0['gateway']:.1f} s, workers "
              f"{cpu1['worker'] - cpu0['worker']:.1f} s over {elapsed:.1f} s wall; RSS gateways "
              f"{rss_mb(procs.pids('gateway')):.0f} MB, workers {rss_mb(procs.pids('worker')):.0f} MB")


async def _with_onboarding_wait(run, total: int):
    from asgiref.sync import sync_to_async

    from devices.models import Onboarding

    result = await run()
    deadline = time.time() + 300
    while time.time() < deadline:
        done = await sync_to_async(lambda: Onboarding.objects.filter(state="done").count())()
        if done >= total:
            break
        await asyncio.sleep(0.25)
    fleets = result[0]
    for fleet in fleets:
        await fleet.stop()
    return result


# --- 2. idle fleet -------------------------------------------------------------------------------------------
def bench_idle(args) -> None:
    prepare()
    raise_file_limit()
    owner, product = owner_and_product(quarantine=False)
    print(f"idle: {args.devices:,} connected devices pinging every 15 s for {args.minutes:g} min; "
          f"{args.gateways} gateways, 1 worker, beat, web")
    ids, pkcs1 = load_fleet(args.devices, product=product, members=args.devices, onboarded=True)
    import redis

    from devices import presence

    r = redis.Redis.from_url(REDIS)
    with processes() as procs:
        ports = [procs.gateway(n) for n in range(args.gateways)]
        procs.worker(0, concurrency=1)
        procs.start("beat", [PYTHON, "-m", "celery", "-A", "console", "beat", "--loglevel", "WARNING",
                             "--schedule", str(DATA_DIR / "celerybeat-schedule")])
        procs.web()
        share = (len(ids) + args.gateways - 1) // args.gateways
        for n, port in enumerate(ports):
            path = DATA_DIR / f"fleet{n}.jsonl"
            write_secrets(path, ids[n * share:(n + 1) * share], pkcs1, port)
            procs.start(f"sim{n}", [PYTHON, "manage.py", "simulate_fleet", "--secrets", str(path),
                                    "--product", str(product.pk), "--firmware-version", "1", "--ramp", "400"])
        t0 = time.time()
        while r.hlen(presence.where_key()) < len(ids):
            if time.time() - t0 > 600:
                raise RuntimeError("the fleet did not connect in 10 minutes")
            time.sleep(1)
        print(f"  {len(ids):,} connected in {time.time() - t0:.0f} s; settling 20 s, then measuring")
        time.sleep(20)
        server = ("gateway", "worker", "beat", "web")
        pg, rd = pids_named("postgres"), pids_named("redis-server")
        before = {name: cpu_seconds(procs.pids(name)) for name in server + ("sim",)}
        before_pg, before_rd = cpu_seconds(pg), cpu_seconds(rd)
        wall0 = time.time()
        peak_rss, peak_sim = 0.0, 0.0
        while time.time() - wall0 < args.minutes * 60:
            time.sleep(5)
            peak_rss = max(peak_rss, sum(rss_mb(procs.pids(name)) for name in server))
            peak_sim = max(peak_sim, rss_mb(procs.pids("sim")))
        wall = time.time() - wall0
        used = {name: cpu_seconds(procs.pids(name)) - before[name] for name in before}
        total = sum(used[name] for name in server)
        connected = r.hlen(presence.where_key())
        print(f"  still connected at the end: {connected:,}")
        print(f"  server processes: {total / wall:.1%} of one core (target <= 10%: {total / wall / 0.10:.2f} of it); "
              + ", ".join(f"{name} {used[name] / wall:.1%}" for name in server))
        print(f"  server RSS peak {peak_rss:,.0f} MB (target <= 1024 MB: {peak_rss / 1024:.2f} of it)")
        print(f"  simulator: RSS peak {peak_sim:,.0f} MB (target <= 500 MB: {peak_sim / 500:.2f} of it), "
              f"CPU {used['sim'] / wall:.1%} of a core")
        print(f"  beside them: PostgreSQL {(cpu_seconds(pg) - before_pg) / wall:.1%}, Redis "
              f"{(cpu_seconds(rd) - before_rd) / wall:.1%} of a core (the last_heard flush every 15 s)")
        print(f"  machine's limit: {len(ids) / 15:,.0f} pings/s arrive; a core is 100%")


# --- 3. function calls through the API -----------------------------------------------------------------------
def bench_calls(args) -> None:
    prepare()
    raise_file_limit()
    import aiohttp
    import redis

    from console.models import AccessToken
    from console.services import tokens as token_services
    from devices import presence

    owner, product = owner_and_product(quarantine=False)
    ids, pkcs1 = load_fleet(args.devices, product=product, members=args.devices, onboarded=True)
    token = token_services.token_issue(kind=AccessToken.Kind.USER, user=owner, client_name="bench").access_token
    r = redis.Redis.from_url(REDIS)
    print(f"calls: POST /v1/products/:p/devices/:id/echo at {args.rate}/s for {args.seconds} s, "
          f"{args.devices} connected devices, {args.web} web process(es) (uvicorn), 1 gateway")
    with processes() as procs:
        port = procs.gateway(0)
        web = procs.web(args.web)
        path = DATA_DIR / "calls.jsonl"
        write_secrets(path, ids, pkcs1, port)
        procs.start("sim", [PYTHON, "manage.py", "simulate_fleet", "--secrets", str(path), "--product",
                            str(product.pk), "--firmware-version", "1"])
        t0 = time.time()
        while r.hlen(presence.where_key()) < len(ids):
            if time.time() - t0 > 120:
                raise RuntimeError("the devices did not connect")
            time.sleep(0.5)
        time.sleep(3)

        async def load():
            latencies, errors = [], []
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=35),
                                             headers={"Authorization": f"Bearer {token}"}) as http:
                async def one(n: int):
                    device = ids[n % len(ids)]
                    start = time.perf_counter()
                    try:
                        async with http.post(f"http://127.0.0.1:{web}/v1/products/{product.pk}/devices/{device}"
                                             f"/echo", data={"arg": "x" * (n % 40)}) as resp:
                            body = await resp.json()
                    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                        errors.append(("no answer", type(exc).__name__))
                        return
                    if resp.status != 200 or body.get("return_value") != n % 40:
                        errors.append((resp.status, body))
                    else:
                        latencies.append(time.perf_counter() - start)

                async def offer(seconds: float) -> float:
                    tasks = []
                    begin = time.perf_counter()
                    for n in range(int(args.rate * seconds)):
                        delay = begin + n / args.rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.ensure_future(one(n)))
                    await asyncio.gather(*tasks)
                    return time.perf_counter() - begin

                # Warm up at the offered rate, unmeasured: the web processes open their pooled database and
                # Redis connections and their request threads as the concurrency first asks for them.
                await offer(WARM_UP_SECONDS)
                latencies.clear()
                errors.clear()
                # The load generator's own collector is kept out of the measured window: a full collection
                # in this process (Django is loaded here too) stalled it for 74-88 ms, counted as latency.
                gc.collect()
                gc.freeze()
                gc.disable()
                try:
                    marks.append(snapshot())
                    wall = await offer(args.seconds)
                    marks.append(snapshot())
                    return latencies, errors, wall
                finally:
                    gc.enable()

        def snapshot():
            cpu = {name: cpu_seconds(procs.pids(name)) for name in ("web", "gateway", "sim")}
            cpu["load generator"] = time.process_time()
            return cpu, machine_busy_seconds()

        marks = []
        latencies, errors, wall = asyncio.run(load())
        (cpu0, (busy0, all0)), (cpu1, (busy1, all1)) = marks
        achieved = len(latencies) / wall
        if not latencies:
            print(f"  nothing answered; errors: {errors[:5]}")
            return
        p99 = pct(latencies, 0.99)
        print(f"  {len(latencies):,} answered, {len(errors)} errors ({errors[:3]}); {achieved:,.0f} calls/s "
              f"answered (offered {args.rate:g}/s)")
        print(f"  latency: median {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms  (target p99 <= 50 ms: {p99 / 0.05:.2f} of it)")
        print("  CPU: " + ", ".join(f"{name} {(cpu1[name] - cpu0[name]) / wall:.0%}" for name in cpu0)
              + f" of a core; web {(cpu1['web'] - cpu0['web']) / len(latencies) * 1000:.1f} ms per call")
        print(f"  machine's limit: all {os.cpu_count()} cores {(busy1 - busy0) / (all1 - all0):.0%} busy during the "
              f"run (load generator, PostgreSQL and Redis included)")

        # The machine's own floor: the same request through Redis to the device, with no HTTP, no auth, no ORM.
        floor = []
        for n in range(500):
            start = time.perf_counter()
            presence.device_request(ids[n % len(ids)], "function", name="echo", arg="x", timeout=5)
            floor.append(time.perf_counter() - start)
        print(f"  floor (presence.device_request straight to the gateway, serial): median "
              f"{statistics.median(floor) * 1000:.2f} ms, p99 {pct(floor, 0.99) * 1000:.2f} ms; API p99 is "
              f"{p99 / pct(floor, 0.99):.1f}x that")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    c = sub.add_parser("connect")
    c.add_argument("--devices", type=int, default=10_000)
    c.add_argument("--at-a-time", type=int, default=200)
    c.add_argument("--gateways", type=int, default=2)
    c.add_argument("--workers", type=int, default=2)
    i = sub.add_parser("idle")
    i.add_argument("--devices", type=int, default=20_000)
    i.add_argument("--minutes", type=float, default=5)
    i.add_argument("--gateways", type=int, default=2)
    k = sub.add_parser("calls")
    k.add_argument("--rate", type=float, default=200)
    k.add_argument("--seconds", type=float, default=30)
    k.add_argument("--devices", type=int, default=100)
    k.add_argument("--web", type=int, default=1, help="uvicorn worker processes")
    sub.add_parser("all")
    args = parser.parse_args()
    if args.which == "all":
        for name, fn in (("connect", bench_connect), ("idle", bench_idle), ("calls", bench_calls)):
            sub_args = parser.parse_args([name])
            fn(sub_args)
    else:
        {"connect": bench_connect, "idle": bench_idle, "calls": bench_calls}[args.which](args)


if __name__ == "__main__":
    main()
