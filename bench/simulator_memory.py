"""Memory and CPU of idle simulated devices (issue 12: 20,000 idle devices in ≤ 500 MB across simulator
processes, at the 15 s ping).

    .venv/bin/python bench/simulator_memory.py [--devices 2000] [--idle 35] [--own-keys] [--asyncio]

Starts a minimal cloud (tests/support/mini_cloud.py, the simulator tests' peer) in a child process, then a
fleet of N devices in this one; once all are online it lets them idle for `--idle` seconds (two pings at
the 15 s default) and prints this process's resident memory per device and the CPU the idle fleet used.
`--own-keys` gives every device its own RSA-1024 key (kept as DER and loaded only for the handshake)
instead of one shared key; `--asyncio` runs without uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve(key_path: str) -> None:
    """The child: a MiniCloud that keeps no connection list, printing its port."""
    from cryptography.hazmat.primitives import serialization

    from tests.support.mini_cloud import MiniCloud

    async def main():
        key = serialization.load_der_private_key(Path(key_path).read_bytes(), None)
        cloud = MiniCloud(private_key=key, keep=False)
        print(await cloud.start(), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def measure(options, key_file: bytes, port: int) -> None:
    from devices.simulator import Fleet
    from tests.support.simulator import device_key, device_specs, new_device_id
    from devices.simulator import DeviceSpec
    from devices.simulator.channel import device_public_der

    shared = device_key()
    if options.own_keys:
        specs = device_specs(options.devices)
    else:
        public = device_public_der(shared)
        specs = [DeviceSpec(new_device_id(), 6, shared_key=shared, shared_public_der=public)
                 for _ in range(options.devices)]
    before = rss()
    fleet = Fleet(specs, "127.0.0.1", port, server_key=key_file, ramp=options.ramp, subscribe=True)
    started = time.monotonic()
    await fleet.start()
    ok = await fleet.wait_connected(timeout=options.devices / options.ramp + 60)
    connected = time.monotonic() - started
    print(f"{fleet.online_count()}/{len(fleet)} online after {connected:.1f} s ({'ok' if ok else 'NOT ALL'}); "
          f"failures {fleet.failures}")
    cpu0, wall0, pings0 = cpu(), time.monotonic(), fleet.pings
    await asyncio.sleep(options.idle)
    used, wall = cpu() - cpu0, time.monotonic() - wall0
    after = rss()
    print(f"idle {wall:.0f} s: {fleet.pings - pings0} pings, CPU {100 * used / wall:.2f}% of one core, "
          f"{fleet.online_count()} still online")
    print(f"rss before the fleet {before / 1e6:.1f} MB, with it {after / 1e6:.1f} MB: "
          f"{(after - before) / len(fleet) / 1024:.1f} KB per device "
          f"(→ {(after - before) / len(fleet) * 20000 / 1e6:.0f} MB for 20,000 plus one interpreter per process)")
    await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=35.0)
    parser.add_argument("--ramp", type=float, default=500.0)
    parser.add_argument("--own-keys", action="store_true")
    parser.add_argument("--asyncio", action="store_true")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve)
        return
    from cryptography.hazmat.primitives import serialization

    from tests.support.simulator import server_key_file, server_keys

    key = server_keys()
    with tempfile.NamedTemporaryFile(suffix=".der") as fh:
        fh.write(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
        fh.flush()
        cloud = subprocess.Popen([sys.executable, __file__, "--serve", fh.name], stdout=subprocess.PIPE, text=True,
                                 cwd=ROOT)
        try:
            port = int(cloud.stdout.readline())
            key_file = server_key_file(key.public_key())
            if options.asyncio:
                asyncio.run(measure(options, key_file, port))
            else:
                import uvloop
                uvloop.run(measure(options, key_file, port))
        finally:
            cloud.terminate()
            cloud.wait(10)


if __name__ == "__main__":
    main()
