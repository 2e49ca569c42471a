"""The fleet simulator for tests: keys and secrets files made here, and a fleet running on a background loop.

    keys = server_keys()                                  # the server's RSA-2048 pair
    specs = device_specs(3)                               # three devices with fresh RSA-1024 keys
    with running_fleet(specs, "127.0.0.1", port, server_key=server_key_file(keys.public_key())) as sim:
        assert sim.wait_connected(timeout=10)
        sim.call(lambda fleet: fleet.devices[0].publish("x", "1"))

`running_fleet` runs the fleet's asyncio loop in a thread, so a test (and the Django code it drives) stays
synchronous; `sim.call(fn)` runs `fn(fleet)` on the fleet's loop and returns its result, `sim.run(coro_fn)`
awaits `coro_fn(fleet)` there. Keys come from `cryptography` here so these tests never depend on
`manage.py manufacture`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devices.simulator import DeviceSpec, Fleet

_SPKI = dict(encoding=serialization.Encoding.DER, format=serialization.PublicFormat.SubjectPublicKeyInfo)


def server_keys() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def device_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def pkcs1_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def server_key_file(public_key: rsa.RSAPublicKey, host: str = "127.0.0.1") -> bytes:
    """The server key file a device holds: SPKI DER padded with 0xFF to 384 bytes, the address TLV, 0xFF."""
    spki = public_key.public_bytes(**_SPKI)
    parts = host.split(".")
    if len(parts) == 4 and all(part.isdigit() for part in parts):
        address = bytes((0, 4)) + bytes(int(part) for part in parts)
    else:
        address = bytes((1, len(host))) + host.encode()
    return spki.ljust(384, b"\xff") + address + b"\xff"


def new_device_id() -> str:
    return os.urandom(12).hex()


def device_specs(count: int, *, platform_id: int = 6, key: rsa.RSAPrivateKey | None = None) -> list[DeviceSpec]:
    """`count` devices with fresh ids and keys of their own (or all holding `key`)."""
    return [DeviceSpec(device_id=new_device_id(), platform_id=platform_id, private_key=pkcs1_der(key or device_key()))
            for _ in range(count)]


def write_secrets(path, *, server_key: bytes, devices: list[DeviceSpec], host: str | None = "127.0.0.1",
                  port: int | None = 5683, shared_key: rsa.RSAPrivateKey | None = None) -> None:
    """A secrets file in the layout `manage.py manufacture --secrets` writes (JSON Lines)."""
    with open(path, "w", encoding="utf-8") as fh:
        header: dict[str, Any] = {"kind": "server", "server_key": base64.b64encode(server_key).decode()}
        if host is not None:
            header["host"] = host
        if port is not None:
            header["port"] = port
        fh.write(json.dumps(header) + "\n")
        if shared_key is not None:
            fh.write(json.dumps({"kind": "shared_key",
                                 "private_key": base64.b64encode(pkcs1_der(shared_key)).decode()}) + "\n")
        for spec in devices:
            row: dict[str, Any] = {"kind": "device", "id": spec.device_id, "platform_id": spec.platform_id}
            if shared_key is None:
                row["private_key"] = base64.b64encode(spec.private_key).decode()
            fh.write(json.dumps(row) + "\n")


class RunningFleet:
    """A handle on a fleet whose loop runs in another thread."""

    def __init__(self, fleet: Fleet, loop: asyncio.AbstractEventLoop):
        self.fleet = fleet
        self.loop = loop

    @property
    def devices(self):
        return self.fleet.devices

    def run(self, coroutine_function: Callable[[Fleet], Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_function(self.fleet), self.loop).result(timeout)

    def call(self, function: Callable[[Fleet], Any], timeout: float = 10) -> Any:
        async def call(fleet):
            return function(fleet)
        return self.run(call, timeout)

    def wait_until(self, predicate: Callable[[Fleet], bool], timeout: float = 10) -> bool:
        return self.run(lambda fleet: fleet.wait_until(lambda: predicate(fleet), timeout), timeout + 5)

    def wait_connected(self, count: int | None = None, timeout: float = 10) -> bool:
        return self.run(lambda fleet: fleet.wait_connected(count, timeout), timeout + 5)


@contextmanager
def running_fleet(devices: list[DeviceSpec], host: str, port: int, **options):
    """Run `Fleet(devices, host, port, **options)` on a loop in a background thread until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fleet-simulator", daemon=True)
    thread.start()
    fleet = Fleet(devices, host, port, **options)
    try:
        asyncio.run_coroutine_threadsafe(fleet.start(), loop).result(10)
        yield RunningFleet(fleet, loop)
    finally:
        try:
            asyncio.run_coroutine_threadsafe(fleet.stop(), loop).result(20)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
