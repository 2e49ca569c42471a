"""Cyan's fleet simulator: a device-side implementation of Particle's Gen 2 TCP protocol.

It never calls Cyan's server code (an import-linter contract in .importlinter keeps it so): it has its own
CoAP codec and channel, so a server that misreads the protocol fails a test instead of agreeing with itself.
See docs/device-protocol.md, "Fleet simulator".
"""

from .device import SimulatedDevice
from .fleet import Fleet
from .secrets import DeviceSpec, Secrets, read_secrets

__all__ = ["DeviceSpec", "Fleet", "Secrets", "SimulatedDevice", "read_secrets"]
