"""Webhook benchmarks (issue 13) on PostgreSQL + Redis with real processes: the gateway, Celery workers, the
fleet simulator over 127.0.0.1 and a receiver on 127.0.0.1 (bench/receiver.py).

    .venv/bin/python bench/webhooks.py endtoend [--rate 1000] [--seconds 30] [--devices 500] [--workers 2]
    .venv/bin/python bench/webhooks.py dispatch [--deliveries 20000] [--workers 2]
    .venv/bin/python bench/webhooks.py ceiling [--requests 20000]
    .venv/bin/python bench/webhooks.py all

`endtoend`: simulated devices publish `temperature` over the real protocol at the offered rate; one product
webhook matches every event. Counted over the measured window (after a 5 s warm-up): events the receiver got per
second (each event id once), and latency from the gateway's `published_at` to the receiver reading the request.
Targets: ≥ 2,000 events/s end to end; p99 ≤ 1 s at 1,000 events/s.

`dispatch`: the deliveries of N events written at once (the bus consumer's bulk inserts and its tasks, one per
200), while the workers send them; deliveries/s from the first to the last request the receiver got. Target
≥ 2,000/s.

`ceiling`: the machine's own limits for the two targets. (1) HTTP alone: one aiohttp client process (the
client Cyan's worker uses) sends default-webhook-sized form POSTs, 200 in flight, to the receiver; POST/s and
CPU per request of each side. (2) `endtoend --no-hook` at 2,000 events/s: what devices → gateway → bus cost
without any webhook. Together they say how much of the machine 2,000 webhooks/s would leave for the rest.

Uses BENCH_DATABASE_URL / BENCH_REDIS_URL like bench/gateway.py, whose helpers it uses.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway as g  # noqa: E402

# The receiver is on 127.0.0.1: allowed here (and so in every process this starts), refused by default.
os.environ["INTEGRATIONS_ALLOW_PRIVATE_TARGETS"] = "true"
WORKER_ENV: dict = {}
WARM_UP = 5.0


def hook_for(product, owner, port: int):
    from console.scoping import Principal
    from integrations.services import integration_create
    from integrations.validation import webhook_fields

    return integration_create(principal=Principal.for_user(owner), product=product, fields=webhook_fields(
        {"event": "temperature", "url": f"http://127.0.0.1:{port}/hook", "requestType": "POST"}))


def start_common(procs, workers: int, concurrency: int) -> int:
    port = g.free_port()
    procs.start("receiver", [g.PYTHON, str(g.ROOT / "bench" / "receiver.py"), str(port)])
    g.wait_port(port)
    for n in range(workers):
        procs.start(f"worker{n}", [g.PYTHON, "-m", "celery", "-A", "console", "worker", "--loglevel", "WARNING",
                                   "--concurrency", str(concurrency), "--queues", "bench-gw", "-n", f"hooks{n}@%h"],
                    WORKER_ENV)
    return port


def dump(port: int) -> list:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/dump", timeout=30) as resp:
        return json.loads(resp.read())


def cpu_line(procs, names, before, after, wall) -> str:
    return ", ".join(f"{n} {(after[n] - before[n]) / wall:.0%}" for n in names) + " of a core"


def bench_endtoend(args) -> dict:
    g.prepare()
    g.raise_file_limit()
    import redis

    from devices import presence

    owner, product = g.owner_and_product(quarantine=False)
    ids, pkcs1 = g.load_fleet(args.devices, product=product, members=args.devices, onboarded=True)
    r = redis.Redis.from_url(g.REDIS)
    every = args.devices / args.rate
    names = ("gateway", "worker", "receiver", "sim")
    with g.processes() as procs:
        receiver = start_common(procs, args.workers, args.concurrency)
        if not args.no_hook:
            hook_for(product, owner, receiver)
        port = procs.gateway(0)
        secrets_path = g.DATA_DIR / "hooks.jsonl"
        g.write_secrets(secrets_path, ids, pkcs1, port)
        procs.start("sim", [g.PYTHON, "manage.py", "simulate_fleet", "--secrets", str(secrets_path), "--product",
                            str(product.pk), "--firmware-version", "1", "--publish-every", str(every)])
        t0 = time.time()
        while r.hlen(presence.where_key()) < len(ids):
            if time.time() - t0 > 120:
                raise RuntimeError("the devices did not connect")
            time.sleep(0.5)
        time.sleep(WARM_UP)
        dump(receiver)
        services = {"postgres": g.pids_named("postgres"), "redis": g.pids_named("redis-server")}

        def snap():
            cpu = {n: g.cpu_seconds(procs.pids(n)) for n in names}
            # Per process, so a backend that exits inside the window (another database's) counts nothing.
            cpu.update({(n, pid): g.cpu_seconds([pid]) for n, pids in services.items() for pid in pids})
            return cpu, g.machine_busy_seconds()

        (cpu0, (busy0, all0)), start = snap(), time.time()
        time.sleep(args.seconds)
        (cpu1, (busy1, all1)), end = snap(), time.time()
        time.sleep(3)  # let the window's last events arrive
        got = dump(receiver)
        from devices.events import bus_key
        on_bus = len(r.xrange(bus_key(), f"{int(start * 1000)}-0", f"{int(end * 1000)}-0"))
    window = [(recv, eid, pub) for recv, eid, pub in got if start <= pub < end]
    unique = {eid for _, eid, _ in window}
    latencies = sorted((recv - pub) * 1000 for recv, _, pub in window)
    wall = end - start
    received_in_window = sum(1 for recv, _, _ in got if start <= recv < end)
    p99 = g.pct(latencies, 0.99) if latencies else float("nan")
    result = {"offered_per_s": args.rate, "devices": args.devices, "bus_per_s": round(on_bus / wall),
              "published_in_window": len(unique),
              "received_per_s": round(received_in_window / wall), "duplicates": len(window) - len(unique),
              "median_ms": round(statistics.median(latencies), 1) if latencies else None, "p99_ms": round(p99, 1),
              "throughput_ratio_vs_2000": round(received_in_window / wall / 2000, 2),
              "p99_ratio_vs_1s": round(p99 / 1000, 2),
              "cpu": cpu_line(procs, names, cpu0, cpu1, wall) + ", " + ", ".join(
                  f"{n} {sum(max(0.0, cpu1[k] - cpu0[k]) for k in cpu0 if k[0] == n and k in cpu1) / wall:.0%}"
                  for n in services),
              "machine_busy_pct": round(100 * (busy1 - busy0) / (all1 - all0), 1)}
    print(json.dumps(result))
    return result


def bench_dispatch(args) -> dict:
    g.prepare()
    from devices import events
    from integrations.delivery import events_consume

    owner, product = g.owner_and_product(quarantine=False)
    (device,) = g.load_fleet(1, product=product, members=1, onboarded=True)[0]
    with g.processes() as procs:
        receiver = start_common(procs, args.workers, args.concurrency)
        hook_for(product, owner, receiver)
        time.sleep(5)  # the workers start
        made = [events.BusEvent(id=f"{1_700_000_000_000 + n}-0", name="temperature", data="21.5", coreid=device,
                                published_at=events.now_iso(), ttl=60, product_id=product.pk, user_id=None,
                                customer_id=None, org_id=None, hook=False, origin="device")
                for n in range(args.deliveries)]
        names = ("worker", "receiver")
        cpu0, (busy0, all0) = {n: g.cpu_seconds(procs.pids(n)) for n in names}, g.machine_busy_seconds()
        t0 = time.time()
        for start in range(0, len(made), 1000):
            events_consume(made[start:start + 1000])
        written = time.time() - t0
        got: list = []
        deadline = time.time() + 300
        while len({eid for _, eid, _ in got}) < args.deliveries and time.time() < deadline:
            time.sleep(0.5)
            got += dump(receiver)
        cpu1, (busy1, all1) = {n: g.cpu_seconds(procs.pids(n)) for n in names}, g.machine_busy_seconds()
        wall = time.time() - t0
    arrivals = sorted(recv for recv, _, _ in got)
    unique = len({eid for _, eid, _ in got})
    span = arrivals[-1] - arrivals[0] if arrivals else float("nan")
    result = {"deliveries": args.deliveries, "received_unique": unique, "duplicates": len(got) - unique,
              "written_s": round(written, 2), "first_received_after_s": round(arrivals[0] - t0, 2),
              "first_to_last_s": round(span, 2), "deliveries_per_s": round(unique / span),
              "ratio_vs_2000": round(unique / span / 2000, 2),
              "worker_cpu_ms_per_delivery": round(1000 * (cpu1["worker"] - cpu0["worker"]) / max(1, unique), 2),
              "cpu": cpu_line(None, names, cpu0, cpu1, wall),
              "machine_busy_pct": round(100 * (busy1 - busy0) / (all1 - all0), 1)}
    print(json.dumps(result))
    return result


def bench_http(args) -> dict:
    """The HTTP part alone: no database, no Redis, no Celery."""
    import asyncio
    import resource
    import subprocess

    import aiohttp

    port = g.free_port()
    receiver = subprocess.Popen([g.PYTHON, str(g.ROOT / "bench" / "receiver.py"), str(port)])
    g.wait_port(port)
    body = b"event=temperature&data=21.5&coreid=0123456789abcdef01234567&published_at=2026-12-02T04%3A00%3A00.000Z"
    headers = {"User-Agent": "ParticleBot/1.1", "Content-Type": "application/x-www-form-urlencoded",
               "X-Cyan-Event-Id": "1700000000000-0", "X-Cyan-Timestamp": "1700000000",
               "X-Cyan-Signature": "sha256=" + "0" * 64}

    def own_cpu() -> float:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return use.ru_utime + use.ru_stime

    async def run() -> dict:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
            async def one():
                async with http.post(f"http://127.0.0.1:{port}/hook", data=body, headers=headers) as resp:
                    await resp.read()

            for _ in range(3):
                await asyncio.gather(*(one() for _ in range(200)))
            mine, theirs, start = own_cpu(), g.cpu_seconds([receiver.pid]), time.time()
            for _ in range(args.requests // 200):
                await asyncio.gather(*(one() for _ in range(200)))
            wall = time.time() - start
            n = args.requests // 200 * 200
            client_ms = 1000 * (own_cpu() - mine) / n
            return {"posts_per_s": round(n / wall), "client_cpu_ms_per_request": round(client_ms, 3),
                    "receiver_cpu_ms_per_request": round(1000 * (g.cpu_seconds([receiver.pid]) - theirs) / n, 3),
                    "one_client_process_max_per_s": round(1000 / client_ms),
                    "cores_for_2000_per_s": round(2 * client_ms, 2)}

    try:
        result = asyncio.run(run())
    finally:
        receiver.terminate()
        receiver.wait(10)
    print(json.dumps({"http_alone": result}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    e2e = sub.add_parser("endtoend")
    e2e.add_argument("--rate", type=float, default=1000)
    e2e.add_argument("--seconds", type=float, default=30)
    e2e.add_argument("--devices", type=int, default=500)
    e2e.add_argument("--workers", type=int, default=1)
    e2e.add_argument("--concurrency", type=int, default=2)
    e2e.add_argument("--no-hook", action="store_true",
                     help="no webhook: what devices → gateway → bus alone reach (the ceiling of the chain)")
    dis = sub.add_parser("dispatch")
    dis.add_argument("--deliveries", type=int, default=20000)
    dis.add_argument("--workers", type=int, default=1)
    dis.add_argument("--concurrency", type=int, default=2)
    ceil = sub.add_parser("ceiling")
    ceil.add_argument("--requests", type=int, default=20000)
    sub.add_parser("all")
    args = parser.parse_args()
    if args.what == "endtoend":
        bench_endtoend(args)
    elif args.what == "dispatch":
        bench_dispatch(args)
    elif args.what == "ceiling":
        bench_http(args)
        bench_endtoend(argparse.Namespace(rate=2000, seconds=20, devices=500, workers=1, concurrency=2, no_hook=True))
    else:
        bench_dispatch(argparse.Namespace(deliveries=20000, workers=1, concurrency=2))
        for rate in (1000, 2000):
            bench_endtoend(argparse.Namespace(rate=rate, seconds=30, devices=500, workers=1, concurrency=2,
                                              no_hook=False))


if __name__ == "__main__":
    main()
