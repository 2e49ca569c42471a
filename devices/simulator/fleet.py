"""Many simulated devices on one event loop, with the knobs a test or a benchmark turns.

    fleet = Fleet(read_secrets(path).devices, "127.0.0.1", 5683, server_key=key_file, product_id=4242)
    await fleet.start()
    await fleet.wait_connected(timeout=30)
    ...
    await fleet.stop()
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from .channel import server_public_key
from .device import BACKOFF, CONNECTING, HANDSHAKING, HELLO, ONLINE, SimulatedDevice
from .secrets import DeviceSpec


class Fleet:
    """Simulated devices sharing one loop, one server key and one set of timings (seconds throughout)."""

    def __init__(self, devices: Iterable[DeviceSpec], host: str = "127.0.0.1", port: int = 5683, *,
                 server_key: bytes | rsa.RSAPublicKey, product_id: int | None = None,
                 firmware_version: int = 0xFFFF, claim_code: str | None = None, publish_every: float = 0,
                 churn: float = 0, ramp: float | None = None, ping_interval: float = 15.0,
                 ping_timeout: float = 10.0, hello_timeout: float = 4.0, handshake_timeout: float = 20.0,
                 backoff_unit: float = 1.0, backoff_max: float = 128.0, reconnect_jitter: float = 2.0,
                 reconnect: bool = True, subscribe: bool = True, record: bool = False):
        self.host = host
        self.port = port
        self.server_key = server_key if isinstance(server_key, rsa.RSAPublicKey) else server_public_key(server_key)
        self.product_id = product_id
        self.firmware_version = firmware_version
        self.publish_every = publish_every
        self.churn = churn
        self.ramp = ramp
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.hello_timeout = hello_timeout
        self.handshake_timeout = handshake_timeout
        self.backoff_unit = backoff_unit
        self.backoff_max = backoff_max
        self.reconnect_jitter = reconnect_jitter
        self.reconnect = reconnect
        self.subscribe = subscribe
        self.record = record
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._churn_task: asyncio.Task | None = None
        # Fleet-wide counters (the devices keep their own too).
        self.handshakes = 0
        self.failures = 0
        self.messages_in = 0
        self.messages_out = 0
        self.pings = 0
        self.publishes = 0
        self.online_lost = 0
        self.churned = 0
        self.devices = [SimulatedDevice(self, spec, claim_code=claim_code) for spec in devices]
        self.by_id = {device.device_id: device for device in self.devices}

    def __len__(self) -> int:
        return len(self.devices)

    def __getitem__(self, device_id: str) -> SimulatedDevice:
        return self.by_id[device_id]

    def backoff_delay(self, failures: int) -> float:
        """Device OS's backoff after `failures` failed attempts in a row: 1 s ×5, 2 s ×5, 4 s ×5 … 128 s,
        each jittered by ±20 % so a fleet refused together does not come back together."""
        step = min(self.backoff_max, 2 ** ((max(failures, 1) - 1) // 5))
        return step * self.backoff_unit * random.uniform(0.8, 1.2)

    async def start(self) -> None:
        """Start connecting every device (at `ramp` connects per second if set); returns at once."""
        self.loop = asyncio.get_running_loop()
        self.stopping = False
        for index, device in enumerate(self.devices):
            device.schedule_connect(index / self.ramp if self.ramp else 0)
        if self.churn > 0:
            self._churn_task = self.loop.create_task(self._churn())

    async def _churn(self) -> None:
        # `churn` percent of the online devices drop and reconnect each minute, spread over its seconds.
        owed = 0.0
        while not self.stopping:
            await asyncio.sleep(1)
            online = [device for device in self.devices if device.state == ONLINE]
            owed += len(online) * self.churn / 100 / 60
            count = min(int(owed), len(online))
            owed -= count
            for device in random.sample(online, count):
                device.disconnect("churn")
                self.churned += 1

    async def stop(self, timeout: float = 10.0) -> None:
        """Close every connection and cancel every timer; wait (up to `timeout`) for the sockets to close."""
        self.stopping = True
        if self._churn_task is not None:
            self._churn_task.cancel()
            self._churn_task = None
        for device in self.devices:
            device._cancel_timer()
            device.disconnect("fleet stopped", reconnect=False)
        await self.wait_until(lambda: all(device.transport is None for device in self.devices), timeout)
        for device in self.devices:
            device._cancel_timer()
            if device.transport is not None:
                device.transport.abort()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
        """Poll `predicate` until it holds or `timeout` passes; return whether it held (no event per device)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(interval)
        return True

    async def wait_connected(self, count: int | None = None, timeout: float = 30.0) -> bool:
        """Wait until `count` devices (default all) are online."""
        want = len(self.devices) if count is None else count
        return await self.wait_until(lambda: self.online_count() >= want, timeout)

    def online_count(self) -> int:
        return sum(1 for device in self.devices if device.state == ONLINE)

    def snapshot(self) -> dict:
        """The numbers the progress line shows."""
        states = Counter(device.state for device in self.devices)
        return {
            "devices": len(self.devices),
            "connected": states[ONLINE],
            "handshaking": states[CONNECTING] + states[HANDSHAKING] + states[HELLO],
            "backoff": states[BACKOFF],
            "handshakes": self.handshakes,
            "failures": self.failures,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "pings": self.pings,
            "publishes": self.publishes,
            "churned": self.churned,
        }
