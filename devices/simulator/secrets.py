"""The secrets file `manage.py manufacture --secrets FILE` writes, read the way a device reads its keys.

JSON Lines: a `server` line (the server key file in base64, and where to connect), optionally a
`shared_key` line (a benchmark fleet whose devices all hold one key), then one `device` line per device.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from .channel import device_public_der, load_device_key, server_address


@dataclass(slots=True)
class DeviceSpec:
    """One device as the simulator needs it: its id, platform, and private key (PKCS#1 DER) — or, in a
    shared-key fleet, the one loaded key every device uses (so 20,000 devices hold one key object)."""

    device_id: str
    platform_id: int
    private_key: bytes | None = None
    shared_key: object | None = None
    shared_public_der: bytes | None = None


@dataclass
class Secrets:
    server_key: bytes
    host: str | None
    port: int | None
    devices: list[DeviceSpec] = field(default_factory=list)
    product_id: int | None = None  # the product the devices say in their Hello, when the file names one


def read_secrets(path: str, *, offset: int = 0, count: int | None = None) -> Secrets:
    """Read the file; keep the devices from `offset`, at most `count` of them (the slice one process runs)."""
    server_key = None
    host = port = product_id = None
    shared = shared_der = None
    devices: list[DeviceSpec] = []
    seen = 0
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ValueError(f"{path}:{number}: not JSON") from None
            kind = row.get("kind")
            if kind == "server":
                server_key = base64.b64decode(row["server_key"])
                host = row.get("host") or server_address(server_key)
                port = int(row["port"]) if row.get("port") else None
                product_id = int(row["product_id"]) if row.get("product_id") else None
            elif kind == "shared_key":
                shared = load_device_key(base64.b64decode(row["private_key"]))
                shared_der = device_public_der(shared)
            elif kind == "device":
                seen += 1
                if seen <= offset or (count is not None and len(devices) >= count):
                    continue
                device_id = str(row["id"]).lower()
                if len(device_id) != 24 or any(c not in "0123456789abcdef" for c in device_id):
                    raise ValueError(f"{path}:{number}: a device id is 24 hex digits")
                key = row.get("private_key")
                if key is None and shared is None:
                    raise ValueError(f"{path}:{number}: a device line needs private_key (or a shared_key line)")
                devices.append(DeviceSpec(device_id=device_id, platform_id=int(row["platform_id"]),
                                          private_key=base64.b64decode(key) if key else None,
                                          shared_key=None if key else shared,
                                          shared_public_der=None if key else shared_der))
            else:
                raise ValueError(f"{path}:{number}: unknown kind {kind!r}")
    if server_key is None:
        raise ValueError(f"{path}: no server line")
    return Secrets(server_key=server_key, host=host, port=port, devices=devices, product_id=product_id)


def count_devices(path: str) -> int:
    """How many device lines the file holds (without decoding any key)."""
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if '"device"' in line and json.loads(line).get("kind") == "device")
