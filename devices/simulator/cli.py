"""Running a fleet from the command line: `manage.py simulate_fleet` and `python -m devices.simulator`.

One process runs one event loop (uvloop when it is installed). With `--processes N` the devices are split
into N slices, each run by a child `python -m devices.simulator --child` that reports a JSON line of counters
every second; the parent adds them up into the progress line. A process here holds at most about 20,000
sockets, so a 20,000-device fleet needs two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import IO

from .fleet import Fleet
from .secrets import count_devices, read_secrets

COUNTERS = ("connected", "handshaking", "backoff", "handshakes", "failures", "messages_in", "messages_out")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, shared by the management command and `python -m devices.simulator`."""
    parser.add_argument("--secrets", required=True, help="JSON Lines file from `manage.py manufacture --secrets`")
    parser.add_argument("--count", type=int, help="Run the first N devices of the file (default: all)")
    parser.add_argument("--offset", type=int, default=0, help="Skip the first N devices of the file")
    parser.add_argument("--product", type=int, dest="product_id",
                        help="Product id the devices say in their Hello (default: the secrets file's product_id, else "
                             "none, i.e. their platform id "
                             "and firmware version 65535)")
    parser.add_argument("--firmware-version", type=int, default=1,
                        help="Product firmware version said with --product (default 1)")
    parser.add_argument("--publish-every", type=float, default=0.0, metavar="S",
                        help="Each device publishes `temperature` every S seconds, jittered (0 = never)")
    parser.add_argument("--churn", type=float, default=0.0, metavar="PCT",
                        help="Percent of the connected devices that drop and reconnect each minute")
    parser.add_argument("--for", type=float, dest="duration", metavar="SECONDS",
                        help="Stop after this long (default: until Ctrl-C / SIGTERM)")
    parser.add_argument("--host", help="Gateway host (default: the secrets file's, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="Gateway port (default: the secrets file's, else 5683)")
    parser.add_argument("--claim-code", help="A claim code every device presents when it connects")
    parser.add_argument("--processes", type=int, default=1, help="Spread the devices over N processes")
    parser.add_argument("--ramp", type=float, default=200.0, metavar="R",
                        help="New connections per second at the start, per process (default 200; 0 = all at once)")
    parser.add_argument("--ping-interval", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def raise_open_file_limit() -> None:
    """Every device is a socket: lift the soft limit on open files to the hard one."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def rss_bytes() -> int:
    """This process's resident memory, from /proc (0 where there is none)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Progress:
    """One line: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, out: IO[str], every: float | None = None):
        self.out = out
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.every = every if every is not None else (1.0 if self.tty else 5.0)
        self.last = 0.0

    @staticmethod
    def line(numbers: dict) -> str:
        return (f"connected {numbers['connected']} · handshaking {numbers['handshaking']} · "
                f"backoff {numbers['backoff']} · handshakes {numbers['handshakes']} · "
                f"failures {numbers['failures']} · in {numbers['messages_in']} · out {numbers['messages_out']}")

    def show(self, numbers: dict, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        if self.tty:
            self.out.write("\r\x1b[K" + self.line(numbers))
        else:
            self.out.write(self.line(numbers) + "\n")
        self.out.flush()

    def finish(self, numbers: dict, seconds: float) -> None:
        if self.tty:
            self.out.write("\n")
        memory = numbers.get("rss", 0) / 1e6
        self.out.write(f"done after {seconds:.0f} s: {self.line(numbers)} · rss {memory:.0f} MB\n")
        self.out.flush()


def _stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):   # not the main thread (a test calling us): no signals
            pass


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def _endpoint(options: dict, secrets_host: str | None, secrets_port: int | None) -> tuple[str, int]:
    return (options.get("host") or secrets_host or "127.0.0.1", options.get("port") or secrets_port or 5683)


async def run_fleet(options: dict, out: IO[str], stop: asyncio.Event | None = None) -> dict:
    """Run one process's slice of the fleet until `--for` passes or a stop signal; return the final numbers."""
    raise_open_file_limit()
    secrets = read_secrets(options["secrets"], offset=options.get("offset") or 0, count=options.get("count"))
    host, port = _endpoint(options, secrets.host, secrets.port)
    product_id = options.get("product_id") or secrets.product_id  # --product, else the file's
    fleet = Fleet(secrets.devices, host, port, server_key=secrets.server_key, product_id=product_id,
                  firmware_version=options.get("firmware_version") or 1 if product_id is not None else 0xFFFF,
                  claim_code=options.get("claim_code"), publish_every=options.get("publish_every") or 0,
                  churn=options.get("churn") or 0, ramp=options.get("ramp") or None,
                  ping_interval=options.get("ping_interval") or 15.0)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    _stop_signals(loop, stop)
    child = options.get("child")
    progress = None if child else Progress(out)
    started = time.monotonic()
    deadline = started + options["duration"] if options.get("duration") else None
    await fleet.start()

    def numbers() -> dict:
        return {**fleet.snapshot(), "rss": rss_bytes()}

    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        await _wait(stop, 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic())))
        if child:
            out.write(json.dumps(numbers()) + "\n")
            out.flush()
        else:
            progress.show(numbers())
    final = numbers()           # as it was running; then every socket closes
    await fleet.stop()
    if child:
        out.write(json.dumps({**final, "final": True}) + "\n")
        out.flush()
    else:
        progress.finish(final, time.monotonic() - started)
    return final


async def run_processes(options: dict, out: IO[str], stop: asyncio.Event | None = None) -> dict:
    """Split the fleet over `--processes` children and show their summed counters."""
    total = count_devices(options["secrets"])
    if options.get("count") is not None:
        total = min(total, options["count"])
    processes = max(1, min(options["processes"], total or 1))
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    _stop_signals(loop, stop)
    latest: list[dict] = [{} for _ in range(processes)]
    children = []
    base = options.get("offset") or 0
    for index in range(processes):
        start, end = total * index // processes, total * (index + 1) // processes
        argv = [sys.executable, "-m", "devices.simulator", "--child", "--secrets", options["secrets"],
                "--offset", str(base + start), "--count", str(end - start)]
        for name, flag in (("product_id", "--product"), ("firmware_version", "--firmware-version"),
                           ("publish_every", "--publish-every"), ("churn", "--churn"), ("duration", "--for"),
                           ("host", "--host"), ("port", "--port"), ("claim_code", "--claim-code"),
                           ("ramp", "--ramp"), ("ping_interval", "--ping-interval")):
            if options.get(name) is not None:
                argv += [flag, str(options[name])]
        children.append(await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))), start_new_session=True))

    async def follow(index: int, child) -> None:
        async for line in child.stdout:
            try:
                latest[index] = json.loads(line)
            except ValueError:
                continue

    followers = [loop.create_task(follow(i, child)) for i, child in enumerate(children)]
    progress = Progress(out)
    started = time.monotonic()

    def summed() -> dict:
        keys = set(COUNTERS) | {"rss"}
        numbers = {key: sum(child.get(key, 0) for child in latest) for key in keys}
        numbers["rss"] += rss_bytes()          # this parent too: the figure is the whole simulator's
        return numbers

    waiting = loop.create_task(asyncio.wait([loop.create_task(child.wait()) for child in children]))
    while not waiting.done():
        await asyncio.wait([waiting, loop.create_task(stop.wait())], timeout=1.0,
                           return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            break
        progress.show(summed())
    for child in children:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    await asyncio.gather(*(child.wait() for child in children))
    await asyncio.gather(*followers)
    final = summed()
    progress.finish(final, time.monotonic() - started)
    return final


def run(options: dict, out: IO[str] = sys.stdout) -> dict:
    """Run the fleet the options describe, on uvloop when it is installed; return the final numbers."""
    main = run_processes if (options.get("processes") or 1) > 1 and not options.get("child") else run_fleet
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main(options, out))
    return uvloop.run(main(options, out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.simulator", description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(vars(parser.parse_args(argv)))
    return 0
