"""What the gateway asks of the domain when a device connects, talks and goes away. The gateway calls these
(from a thread, in batches: many devices connect in the same few milliseconds); they are plain services,
so tests, the simulator's benchmarks and a future DTLS transport reach the same rules.

The shapes are here; the functions below them decide (onboarding, presence in the rows, claim codes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hello:
    """One connection's Hello, after a handshake that proved the device's key."""

    device_id: str
    gateway: str
    session: str
    product_id: int          # the Hello's product id (a device without product firmware says its platform id)
    firmware_version: int    # product firmware version; 65535 = none
    platform_id: int
    flags: int
    ip_address: str | None


@dataclass(frozen=True)
class Verdict:
    """What the gateway does with the connection: "online" (let it in now), "quarantined" (keep it connected
    but let it do nothing until approved), "pending" (a worker decides; it will notify the gateway with op
    "admit"), "refused" (close it, logging `reason`)."""

    outcome: str
    reason: str = ""
