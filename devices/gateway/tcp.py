"""The TCP transport of the Gen 2 protocol: nonce, RSA handshake, then length-framed AES messages.

An asyncio Protocol per connection (about 2 KB each, where streams cost about 6 KB: DESIGN.md §4). It owns the
bytes; the session (session.py) owns the meaning. Every way a connection can go wrong ends the same way: one log
line with the peer and the reason, and this socket closed — no other connection is touched.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING

from devices.gateway import coap, crypto
from devices.gateway.session import Session, SessionRefused

if TYPE_CHECKING:
    from devices.gateway.hub import Hub

log = logging.getLogger("devices.gateway")


class DeviceConnection(asyncio.Protocol):
    # States: nonce sent and waiting for the device's 256 bytes; checking its key; channel open; closed.
    __slots__ = ("hub", "transport", "peer_ip", "state", "buffer", "nonce", "channel", "session", "started",
                 "reason", "device_id", "handshaking")

    def __init__(self, hub: "Hub"):
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.peer_ip: str | None = None
        self.state = "new"
        self.buffer = bytearray()
        self.nonce = b""
        self.channel: crypto.Channel | None = None
        self.session: Session | None = None
        self.started = 0.0
        self.reason = ""
        self.device_id = ""
        self.handshaking = False

    # --- asyncio callbacks -----------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer_ip = peer[0] if peer else None
        self.started = time.monotonic()
        refusal = self.hub.admit_connection(self)
        if refusal:
            self.close(refusal, level=logging.DEBUG)
            return
        self.nonce = crypto.new_nonce()
        self.state = "nonce"
        transport.write(self.nonce)

    def data_received(self, data: bytes) -> None:
        if self.state not in ("nonce", "key", "open"):
            return
        self.buffer += data
        try:
            if self.state == "nonce":
                if len(self.buffer) > crypto.DEVICE_CIPHERTEXT_BYTES:
                    raise crypto.HandshakeError(f"{len(self.buffer)} bytes where the handshake sends 256")
                if len(self.buffer) == crypto.DEVICE_CIPHERTEXT_BYTES:
                    message, self.buffer = bytes(self.buffer), bytearray()
                    self.state = "key"
                    self.hub.loop.create_task(self._handshake(message))
            elif self.state == "key":
                if len(self.buffer) > 2 + crypto.MAX_FRAME:
                    raise crypto.HandshakeError("data before the handshake finished")
            elif self.state == "open":
                self._frames()
        except (crypto.HandshakeError, coap.CoapError, SessionRefused) as exc:
            self.close(str(exc))
        except Exception:  # a bug must not take the gateway down with it: log it, close this one
            log.exception("device %s from %s: unexpected error", self.device_id or "?", self.peer_ip)
            self.close("internal error")

    def connection_lost(self, exc) -> None:
        was = self.state
        self.state = "closed"
        self.hub.connection_closed(self)
        if self.session is not None:
            self.session.end()
            self.hub.session_gone(self.session)
        if was != "closed" and not self.reason:
            log.info("device %s from %s: connection closed by the device", self.device_id or "?", self.peer_ip)

    # --- the handshake ---------------------------------------------------------------------------------------
    async def _handshake(self, message: bytes) -> None:
        try:
            hello = crypto.open_device_message(self.hub.server_key, message, self.nonce)
            self.device_id = hello.device_id
            stored = await self.hub.device_key(hello.device_id)
            if self.state != "key":
                return
            if stored is None:
                raise crypto.HandshakeError("unknown device id, or no key on file")
            if not crypto.same_public_key(hello.public_key_der, stored):
                raise crypto.HandshakeError("the device's key does not match the key on file")
            session_bytes, reply = crypto.session_reply(self.hub.server_key, stored)
        except crypto.HandshakeError as exc:
            self.close(f"handshake: {exc}")
            return
        except Exception:
            log.exception("device %s from %s: handshake failed", self.device_id or "?", self.peer_ip)
            self.close("handshake: internal error")
            return
        if self.state != "key":
            return
        self.channel = crypto.Channel(session_bytes)
        self.session = Session(self.hub, self, hello.device_id, secrets.token_hex(6),
                               crypto.salt_message_id(session_bytes), time.monotonic())
        self.state = "open"
        self.transport.write(reply)
        self.hub.handshake_done(self)
        if self.buffer:
            self.data_received(b"")

    # --- the channel -----------------------------------------------------------------------------------------
    def _frames(self) -> None:
        while len(self.buffer) >= 2 and self.state == "open":
            size = int.from_bytes(self.buffer[:2], "big")
            if size == 0 or size > crypto.MAX_FRAME:
                raise coap.CoapError(f"a frame of {size} bytes")
            if len(self.buffer) < 2 + size:
                return
            ciphertext = bytes(self.buffer[2:2 + size])
            del self.buffer[:2 + size]
            message = coap.decode(self.channel.open(ciphertext))
            self.session.received(message, time.monotonic())

    def send(self, message: coap.Message) -> None:
        if self.state == "open" and self.channel is not None:
            self.transport.write(self.channel.seal(coap.encode(message)))

    def close(self, reason: str, level: int = logging.INFO) -> None:
        if self.state in ("closing", "closed"):
            return
        self.reason = reason
        log.log(level, "device %s from %s: closed: %s", self.device_id or "?", self.peer_ip, reason)
        self.state = "closing"
        if self.transport is not None:
            self.transport.close()

    def elapsed(self) -> float:
        return time.monotonic() - self.started
