"""The device gateway: Particle's Gen 2 device protocol over TCP (docs/device-protocol.md).

tcp.py (bytes, handshake, AES channel) → session.py (CoAP meaning, transport-free) → hub.py (one process's
sessions, Redis presence and commands, batched calls into devices/services)."""
