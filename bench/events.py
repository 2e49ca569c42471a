"""Event benchmarks (issue 13) on PostgreSQL + Redis with real web processes (uvicorn) and clients over 127.0.0.1.

    .venv/bin/python bench/events.py fanout  [--subscribers 1000] [--rate 100] [--seconds 20]
    .venv/bin/python bench/events.py publish [--clients 20] [--seconds 20] [--web 2]
    .venv/bin/python bench/events.py all

`fanout`: N server-sent event streams open on ONE web process, all on one product's stream; a thread of this
process publishes device events through the bus (`events_publish`, as the gateway does) at the given rate, each
carrying its publish time; every stream must receive every event. Latency is publish → bytes read by the
client, for every event on a sample of up to 100 streams (the other streams count their events; parsing every
frame of every stream would make this process the bottleneck). Prints median and p99 fan-out latency, the web
process's CPU, and the ratios against the targets (1,000 streams: p99 ≤ 250 ms; 100 streams: p99 ≤ 15 ms).

`publish`: C concurrent clients on keep-alive connections POST /v1/devices/events as fast as they are answered,
for S seconds; prints requests/s, median and p99, and web CPU per request.

Uses BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cyan_bench, dropped and recreated) and Redis
db 6 (BENCH_REDIS_URL), like bench/gateway.py, whose process helpers it uses. The per-address stream limits are
raised for the web process: every client here comes from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway as g  # noqa: E402  (bench/gateway.py: database, processes, CPU readings)

STREAM_ENV = {"EVENTS_MAX_STREAMS_PER_ADDRESS": "1000000"}
STAMP = re.compile(rb'"data":"(\d+\.\d+)"')


def fixtures():
    """An org product with one device in it, and the owner's token."""
    from console.services import tokens as token_services
    from devices.models import Device
    from devices.services.registry import devices_manufacture
    from products.models import Platform

    owner, product = g.owner_and_product(quarantine=False)
    (made,) = devices_manufacture(platform=Platform.objects.get(pk=6), count=1)
    Device.objects.filter(pk=made.device_id).update(product=product)
    token = token_services.token_issue(kind="user", user=owner).access_token
    return product, made.device_id, token


def start_web(procs, workers: int) -> int:
    port = g.free_port()
    procs.start("web", [g.PYTHON, "-m", "uvicorn", "console.asgi:application", "--host", "127.0.0.1", "--port",
                        str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log",
                        "--workers", str(workers)], STREAM_ENV)
    g.wait_port(port)
    return port


class StreamClient(asyncio.Protocol):
    """One SSE stream: counts the events it receives; a sampled one also records each event's latency."""

    def __init__(self, sampled: bool, opened: asyncio.Future):
        self.sampled = sampled
        self.opened = opened
        self.events = 0
        self.latencies: list[float] = []
        self.tail = b""
        self.headers_done = False

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.headers_done:
            self.tail += data
            if b":ok" not in self.tail:
                return
            self.headers_done = True
            if not self.tail.startswith(b"HTTP/1.1 200"):
                self.opened.set_exception(RuntimeError(self.tail[:200].decode(errors="replace")))
                return
            self.opened.set_result(True)
            data, self.tail = self.tail.split(b":ok", 1)[1], b""
        self.events += data.count(b"\nevent: ")
        if self.sampled:
            buf = self.tail + data
            end = buf.rfind(b"\n\n")
            if end >= 0:
                self.latencies += [now - float(t) for t in STAMP.findall(buf, 0, end)]
                self.tail = buf[end:]
            else:
                self.tail = buf

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"closed before :ok ({exc})"))


async def open_streams(port: int, path: str, token: str, count: int, sample: int) -> list[StreamClient]:
    loop = asyncio.get_running_loop()
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    clients = []
    for n in range(count):
        opened = loop.create_future()
        transport, client = await loop.create_connection(lambda: StreamClient(n < sample, opened), "127.0.0.1",
                                                         port)
        transport.write(request)
        clients.append((client, opened))
        if n % 50 == 49:
            await asyncio.gather(*(o for _, o in clients[-50:]))
    await asyncio.gather(*(o for _, o in clients))
    return [c for c, _ in clients]


def publisher(device_id: str, rate: float, seconds: float, sent: list) -> None:
    from devices import events

    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while True:
        due = start + n * interval
        now = time.monotonic()
        if due - start >= seconds:
            break
        if due > now:
            time.sleep(due - now)
        events.events_publish([events.event_make(device_id=device_id, name="bench/fanout",
                                                 data=f"{time.time():.6f}")])
        sent.append(1)
        n += 1


def bench_fanout(args) -> dict:
    g.prepare()
    g.raise_file_limit()
    product, device_id, token = fixtures()
    with g.processes() as procs:
        port = start_web(procs, 1)
        web_pids = procs.pids("web")

        async def run():
            clients = await open_streams(port, f"/v1/products/{product.pk}/events", token, args.subscribers,
                                         min(100, args.subscribers))
            await asyncio.sleep(1.0)
            sent: list = []
            gc.collect()
            gc.freeze()
            gc.disable()
            cpu0, (busy0, total0) = g.cpu_seconds(web_pids), g.machine_busy_seconds()
            thread = threading.Thread(target=publisher, args=(device_id, args.rate, args.seconds, sent))
            started = time.monotonic()
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.2)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and min(c.events for c in clients) < len(sent):
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            cpu1, (busy1, total1) = g.cpu_seconds(web_pids), g.machine_busy_seconds()
            gc.enable()
            return clients, len(sent), elapsed, cpu1 - cpu0, (busy1 - busy0) / max(1e-9, total1 - total0)

        import uvloop

        clients, published, elapsed, web_cpu, busy = uvloop.run(run())
    latencies = sorted(x * 1000 for c in clients for x in c.latencies)
    counts = [c.events for c in clients]
    target = 250.0 if args.subscribers >= 1000 else 15.0 if args.subscribers <= 100 else None
    p99 = g.pct(latencies, 0.99) if latencies else float("nan")
    result = {
        "subscribers": args.subscribers, "rate": args.rate, "published": published,
        "every_stream_got_every_event": min(counts) == published, "fewest_received": min(counts),
        "median_ms": round(statistics.median(latencies), 2) if latencies else None, "p99_ms": round(p99, 2),
        "web_cpu_pct": round(100 * web_cpu / elapsed, 1), "machine_busy_pct": round(100 * busy, 1),
        "deliveries_per_s": round(published * args.subscribers / elapsed),
    }
    if target:
        result["p99_target_ms"] = target
        result["p99_ratio"] = round(p99 / target, 2)
    print(json.dumps(result))
    return result


def bench_publish(args) -> dict:
    g.prepare()
    _, _, token = fixtures()
    with g.processes() as procs:
        port = start_web(procs, args.web)
        web_pids = procs.pids("web")
        body = json.dumps({"name": "bench/publish", "data": "21.5", "private": True}).encode()
        request = (f"POST /v1/devices/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

        async def client(latencies: list, stop_at: float, errors: list):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.I)[1])
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors.append(head[:40])
                latencies.append(time.perf_counter() - t0)
            writer.close()

        async def run():
            warm: list = []
            await asyncio.gather(*(client(warm, time.monotonic() + 2, []) for _ in range(args.clients)))
            latencies: list = []
            errors: list = []
            gc.collect()
            gc.disable()
            cpu0, (busy0, total0) = g.cpu_seconds(web_pids), g.machine_busy_seconds()
            started = time.monotonic()
            await asyncio.gather(*(client(latencies, started + args.seconds, errors) for _ in range(args.clients)))
            elapsed = time.monotonic() - started
            cpu1, (busy1, total1) = g.cpu_seconds(web_pids), g.machine_busy_seconds()
            gc.enable()
            return latencies, errors, elapsed, cpu1 - cpu0, (busy1 - busy0) / max(1e-9, total1 - total0)

        import uvloop

        latencies, errors, elapsed, web_cpu, busy = uvloop.run(run())
    ms = sorted(x * 1000 for x in latencies)
    result = {"clients": args.clients, "web_processes": args.web, "requests": len(ms), "errors": len(errors),
              "requests_per_s": round(len(ms) / elapsed), "median_ms": round(statistics.median(ms), 2),
              "p99_ms": round(g.pct(ms, 0.99), 2), "web_cpu_ms_per_request": round(1000 * web_cpu / len(ms), 2),
              "machine_busy_pct": round(100 * busy, 1)}
    print(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    fan = sub.add_parser("fanout")
    fan.add_argument("--subscribers", type=int, default=1000)
    fan.add_argument("--rate", type=float, default=100)
    fan.add_argument("--seconds", type=float, default=20)
    pub = sub.add_parser("publish")
    pub.add_argument("--clients", type=int, default=20)
    pub.add_argument("--seconds", type=float, default=20)
    pub.add_argument("--web", type=int, default=2)
    sub.add_parser("all")
    args = parser.parse_args()
    if args.what == "fanout":
        bench_fanout(args)
    elif args.what == "publish":
        bench_publish(args)
    else:
        for n in (100, 1000):
            bench_fanout(argparse.Namespace(subscribers=n, rate=100, seconds=20))
        bench_publish(argparse.Namespace(clients=20, seconds=20, web=2))


if __name__ == "__main__":
    main()
