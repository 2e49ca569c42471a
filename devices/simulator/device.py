"""One simulated device: an asyncio Protocol that speaks the device side of Particle's Gen 2 protocol.

It behaves as the fact sheet says Device OS does: it waits 4 s for the server's Hello, sends its connect-time
events and its describe, asks the time, answers functions, variables, describe, signal and pings, takes any
2.05 as the time, pings after 15 s without receiving anything and gives up 10 s later, drops the connection on
a request with a token other than one byte, and reconnects with Device OS's backoff. Everything a connection
needs lives in this object's slots (no task, queue or event per device), so an idle device costs a few KB.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import struct
import time
from typing import TYPE_CHECKING, Callable

from . import coap
from .channel import (HANDSHAKE_IN_SIZE, NONCE_SIZE, Channel, ChannelError, HandshakeError, device_public_der,
                      first_message_id, handshake_reply, load_device_key, open_session)
from .coap import CON, NON, ACK, Message

if TYPE_CHECKING:
    from .fleet import Fleet
    from .secrets import DeviceSpec

# States, as the progress line counts them.
IDLE, CONNECTING, HANDSHAKING, HELLO, ONLINE, CLOSING, BACKOFF, STOPPED = (
    "idle", "connecting", "handshaking", "hello", "online", "closing", "backoff", "stopped")

HELLO_FLAGS = 0x36          # diagnostics, immediate updates, goodbye supported, device-initiated describe
FLAG_OTA_DONE = 0x01
VARIABLE_TYPES = {"temperature": 9, "uptime": 2, "name": 4}      # 9 double, 2 int, 4 string
FUNCTIONS = ("led", "echo")
MAX_RECEIVE = 896           # ciphertext bytes: Device OS has about 880 usable bytes of receive buffer


class SimulatedDevice(asyncio.Protocol):
    """A device of a Fleet. Read its counters freely; drive it from the fleet's event loop."""

    __slots__ = (
        "fleet", "device_id", "id_bytes", "platform_id", "private_key", "shared_key", "shared_public_der",
        "state", "transport", "buffer", "channel", "key", "next_id", "next_token", "timer", "keepalive",
        "publisher", "last_receive", "ping_sent", "close_reason", "handshake_started", "boot_time",
        "claim_code", "last_reset", "updates_forced", "led", "signaling", "paused", "was_online",
        # counters and what tests look at
        "connected_at", "handshake_time", "hello_at", "last_error", "connects", "failures",
        "consecutive_failures", "messages_in", "messages_out", "pings_sent", "server_time", "reconnect_now",
        "received", "events", "attempts", "on_nonce",
    )

    def __init__(self, fleet: Fleet, spec: DeviceSpec, *, claim_code: str | None = None):
        self.fleet = fleet
        self.device_id = spec.device_id
        self.id_bytes = bytes.fromhex(spec.device_id)
        self.platform_id = spec.platform_id
        self.private_key = spec.private_key
        self.shared_key = spec.shared_key
        self.shared_public_der = spec.shared_public_der
        self.state = IDLE
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.channel: Channel | None = None
        self.key = None
        self.next_id = 0
        self.next_token = random.randrange(256)
        self.timer: asyncio.TimerHandle | None = None       # connect/backoff, handshake and Hello deadlines
        self.keepalive: asyncio.TimerHandle | None = None
        self.publisher: asyncio.TimerHandle | None = None
        self.last_receive = 0.0
        self.ping_sent = 0.0
        self.close_reason = ""
        self.handshake_started = 0.0
        self.boot_time = time.monotonic()
        self.claim_code = claim_code
        self.last_reset = "power_down"
        self.updates_forced = False
        self.led = False
        self.signaling = False
        self.paused = False
        self.was_online = False
        self.connected_at: float | None = None
        self.handshake_time: float | None = None
        self.hello_at: float | None = None
        self.last_error = ""
        self.connects = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.messages_in = 0
        self.messages_out = 0
        self.pings_sent = 0
        self.server_time: int | None = None
        self.reconnect_now = False
        self.received: list[Message] | None = [] if fleet.record else None
        self.events: list[tuple[str, bytes]] | None = [] if fleet.record else None
        self.attempts: list[float] | None = [] if fleet.record else None     # time.monotonic() of each connect
        # Test hook: called with (device, nonce); what it returns is sent instead of the proper 256 bytes
        # (None sends nothing), so a test can send a truncated handshake, a wrong nonce or garbage.
        self.on_nonce: Callable[[SimulatedDevice, bytes], bytes | None] | None = None

    # -- what tests and the fleet read ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True from the server's Hello until the connection closes."""
        return self.state == ONLINE

    def __repr__(self) -> str:
        return f"<SimulatedDevice {self.device_id} {self.state}>"

    # -- connecting and reconnecting ------------------------------------------------------------------------

    def schedule_connect(self, delay: float) -> None:
        """Connect after `delay` seconds (the fleet's ramp, a backoff, a reconnect)."""
        self._cancel_timer()
        if self.fleet.stopping:
            self.state = STOPPED
            return
        self.state = BACKOFF if delay > 0 else CONNECTING
        self.timer = self.fleet.loop.call_later(delay, self._start_connect)

    def _start_connect(self) -> None:
        self.timer = None
        if self.fleet.stopping:
            self.state = STOPPED
            return
        self.state = CONNECTING
        self.handshake_started = time.monotonic()
        if self.attempts is not None:
            self.attempts.append(self.handshake_started)
        self.fleet.loop.create_task(self._connect())

    async def _connect(self) -> None:
        fleet = self.fleet
        try:
            await asyncio.wait_for(fleet.loop.create_connection(lambda: self, fleet.host, fleet.port),
                                   fleet.handshake_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            self._failed(f"connect: {exc.__class__.__name__}: {exc}".rstrip(": "))

    def _failed(self, reason: str, *, retry: bool = True) -> None:
        """A connection attempt that never got a server Hello: count it and back off as Device OS does."""
        self.last_error = reason
        self.failures += 1
        self.consecutive_failures += 1
        self.fleet.failures += 1
        if retry and self.fleet.reconnect and not self.fleet.stopping:
            self.schedule_connect(self.fleet.backoff_delay(self.consecutive_failures))
        else:
            self.state = STOPPED

    def disconnect(self, reason: str = "closed by the simulator", *, reconnect: bool = True) -> None:
        """Drop the connection now (churn, a reset, a protocol error). With `reconnect`, come back at once
        (plus jitter) if it was online, or after the backoff if it was still handshaking."""
        self.close_reason = reason
        self.reconnect_now = reconnect
        if self.transport is not None:
            self.state = CLOSING        # not connected from now, though the socket closes a moment later
            self.transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        if self.fleet.stopping:             # the connect finished after stop() began
            transport.close()
            return
        self.state = HANDSHAKING
        self.buffer = bytearray()
        self.channel = None
        self.close_reason = ""
        self.reconnect_now = True
        self.was_online = False
        self._deadline(self.fleet.handshake_timeout, "handshake: no nonce within the timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.channel = None
        self.key = None
        self.buffer = bytearray()
        self._cancel_timer()
        for name in ("keepalive", "publisher"):
            handle = getattr(self, name)
            if handle is not None:
                handle.cancel()
                setattr(self, name, None)
        reason = self.close_reason or (f"connection lost: {exc}" if exc else "closed by the server")
        fleet = self.fleet
        if self.was_online:
            self.was_online = False
            fleet.online_lost += 1
            self.last_error = reason
            if fleet.stopping or not fleet.reconnect or not self.reconnect_now:
                self.state = STOPPED
            else:
                # A lost established connection comes back at once; the jitter keeps a fleet from
                # arriving in the same millisecond after a gateway restart.
                self.schedule_connect(random.uniform(0, fleet.reconnect_jitter))
        elif fleet.stopping:
            self.state = STOPPED
        else:
            self._failed(reason, retry=self.reconnect_now)

    def data_received(self, data: bytes) -> None:
        if self.paused:
            return
        self.buffer += data
        try:
            if self.state == HANDSHAKING:
                self._handshake()
            if self.channel is not None:
                self._read_messages()
        except (HandshakeError, ChannelError, coap.CoapError, ValueError) as exc:
            self.disconnect(f"{exc.__class__.__name__}: {exc}")

    def eof_received(self) -> bool:
        return False    # close our side too

    # -- handshake ------------------------------------------------------------------------------------------

    def _handshake(self) -> None:
        fleet = self.fleet
        if self.key is None:
            if len(self.buffer) < NONCE_SIZE:
                return
            nonce = bytes(self.buffer[:NONCE_SIZE])
            del self.buffer[:NONCE_SIZE]
            if self.shared_key is not None:
                self.key, public_der = self.shared_key, self.shared_public_der
            else:
                self.key = load_device_key(self.private_key)
                public_der = device_public_der(self.key)
            if self.on_nonce is not None:
                reply = self.on_nonce(self, nonce)
            else:
                reply = handshake_reply(fleet.server_key, nonce, self.id_bytes, public_der)
            if reply:
                self.transport.write(reply)
            self._deadline(fleet.handshake_timeout, "handshake: no session key within the timeout")
        if len(self.buffer) < HANDSHAKE_IN_SIZE:
            return
        session = open_session(fleet.server_key, self.key, bytes(self.buffer[:HANDSHAKE_IN_SIZE]))
        del self.buffer[:HANDSHAKE_IN_SIZE]
        self.key = None          # a per-device key is loaded again on the next handshake, never kept
        self.channel = Channel(session)
        self.next_id = first_message_id(session)
        self.state = HELLO
        self.handshake_time = time.monotonic() - self.handshake_started
        fleet.handshakes += 1
        self._send_hello()
        self._deadline(fleet.hello_timeout, "no server Hello within the timeout")

    def handshake_reply(self, nonce: bytes) -> bytes:
        """The proper 256-byte answer to `nonce` (for `on_nonce` hooks that alter only part of it)."""
        key = self.shared_key if self.shared_key is not None else load_device_key(self.private_key)
        public_der = self.shared_public_der if self.shared_key is not None else device_public_der(key)
        return handshake_reply(self.fleet.server_key, nonce, self.id_bytes, public_der)

    def _deadline(self, seconds: float, reason: str) -> None:
        self._cancel_timer()
        self.timer = self.fleet.loop.call_later(seconds, self.disconnect, reason)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- the channel ----------------------------------------------------------------------------------------

    def _read_messages(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2 and self.channel is not None and self.state != CLOSING:
            length = (buffer[0] << 8) | buffer[1]
            if length > MAX_RECEIVE:
                raise ChannelError(f"a {length}-byte message is over the device's receive buffer")
            if len(buffer) < 2 + length:
                return
            ciphertext = bytes(buffer[2:2 + length])
            del buffer[:2 + length]
            message = coap.decode(self.channel.open(ciphertext))
            self.messages_in += 1
            self.fleet.messages_in += 1
            self.last_receive = self.fleet.loop.time()
            self.ping_sent = 0.0
            if self.received is not None:
                self.received.append(message)
            self._handle(message)

    def send(self, message: Message) -> None:
        """Encrypt and send one CoAP message (tests may send anything, well-formed or not)."""
        self.send_plain(coap.encode(message))

    def send_plain(self, plaintext: bytes) -> None:
        """Encrypt and send raw plaintext as one channel message (e.g. a malformed CoAP message)."""
        if self.transport is None or self.channel is None:
            return
        self.transport.write(self.channel.seal(plaintext))
        self.messages_out += 1
        self.fleet.messages_out += 1

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the socket as they are, outside the channel (garbage, a handshake cut short)."""
        if self.transport is not None:
            self.transport.write(data)

    def message_id(self) -> int:
        current = self.next_id
        self.next_id = (current + 1) & 0xFFFF
        return current

    def token(self) -> bytes:
        self.next_token = (self.next_token + 1) & 0xFF
        return bytes((self.next_token,))

    def _send_hello(self) -> None:
        fleet = self.fleet
        product_id = fleet.product_id if fleet.product_id is not None else self.platform_id
        firmware = fleet.firmware_version if fleet.product_id is not None else 0xFFFF
        payload = struct.pack(">HHBBH", product_id, firmware, 0, HELLO_FLAGS, self.platform_id)
        self.send(Message(NON, coap.POST, self.message_id(), options=[(coap.URI_PATH, b"h")], payload=payload))

    def publish(self, name: str, data: bytes | str = b"", *, private: bool = True, with_ack: bool = False,
                ttl: int = 60) -> None:
        """`Particle.publish`: `E` (private) or `e` (public), the name as one Uri-Path option."""
        if isinstance(data, str):
            data = data.encode()
        options = [(coap.URI_PATH, b"E" if private else b"e"), (coap.URI_PATH, name.encode())]
        if ttl != 60:
            options.append((coap.MAX_AGE, ttl.to_bytes(max(1, (ttl.bit_length() + 7) // 8), "big")))
        self.send(Message(CON if with_ack else NON, coap.POST, self.message_id(),
                          token=self.token() if with_ack else b"", options=options, payload=data))

    def _online(self) -> None:
        """The server's Hello arrived: the connect-time sequence Device OS sends, then keepalive."""
        fleet = self.fleet
        self._cancel_timer()
        self.state = ONLINE
        self.was_online = True
        self.hello_at = time.time()
        self.connected_at = self.hello_at
        self.connects += 1
        self.consecutive_failures = 0
        if self.claim_code:
            self.publish("spark/device/claim/code", self.claim_code)
        self.publish("spark/hardware/max_binary", "102400")
        self.publish("spark/hardware/ota_chunk_size", "512")
        self.publish("spark/device/last_reset", self.last_reset)
        self.publish("particle/device/updates/enabled", "true")
        self.publish("particle/device/updates/forced", "true" if self.updates_forced else "false")
        # Device OS's describe post carries no token (its header is written by hand: 40 02 id b1 'd' 41 flags).
        self.send(Message(CON, coap.POST, self.message_id(),
                          options=[(coap.URI_PATH, b"d"), (coap.URI_QUERY, b"\x02")],
                          payload=self._describe(2)))
        if fleet.subscribe:
            for prefix in (b"spark", b"particle"):
                self.send(Message(CON, coap.GET, self.message_id(), token=self.token(),
                                  options=[(coap.URI_PATH, b"e"), (coap.URI_PATH, prefix), (coap.URI_QUERY, b"u")]))
        self.send(Message(CON, coap.GET, self.message_id(), token=self.token(), options=[(coap.URI_PATH, b"t")]))
        self._arm_keepalive(fleet.ping_interval)
        if fleet.publish_every > 0:
            self.publisher = fleet.loop.call_later(random.uniform(0, fleet.publish_every), self._publish_tick)

    # -- keepalive and the periodic publish -----------------------------------------------------------------

    def _arm_keepalive(self, delay: float) -> None:
        self.keepalive = self.fleet.loop.call_later(delay, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        # One lazy timer per device: receiving only stamps `last_receive`; the timer looks when it fires.
        self.keepalive = None
        if self.state != ONLINE:
            return
        fleet = self.fleet
        if self.paused:                 # a dead device keeps its socket open and says nothing at all
            self._arm_keepalive(fleet.ping_interval)
            return
        now = fleet.loop.time()
        quiet = now - self.last_receive
        if self.ping_sent:
            if now - self.ping_sent >= fleet.ping_timeout:
                self.disconnect("no answer to the keepalive ping")
                return
            self._arm_keepalive(self.ping_sent + fleet.ping_timeout - now)
        elif quiet >= fleet.ping_interval:
            self.send(Message(CON, coap.EMPTY, self.message_id()))
            self.pings_sent += 1
            fleet.pings += 1
            self.ping_sent = now
            self._arm_keepalive(fleet.ping_timeout)
        else:
            self._arm_keepalive(fleet.ping_interval - quiet)

    def _publish_tick(self) -> None:
        self.publisher = None
        if self.state != ONLINE:
            return
        if not self.paused:
            self.publish("temperature", f"{self.temperature():.2f}")
            self.fleet.publishes += 1
        every = self.fleet.publish_every
        self.publisher = self.fleet.loop.call_later(every * random.uniform(0.8, 1.2), self._publish_tick)

    # -- the device's application: functions and variables -------------------------------------------------

    def uptime(self) -> int:
        return int(time.monotonic() - self.boot_time)

    def temperature(self) -> float:
        return 21.0 + 3.0 * math.sin(time.monotonic() / 600.0 + self.id_bytes[-1]) + random.uniform(-0.05, 0.05)

    def variable(self, name: str) -> bytes | None:
        if name == "temperature":
            return struct.pack("<d", self.temperature())        # doubles go little-endian, as Device OS sends
        if name == "uptime":
            return struct.pack(">i", self.uptime())
        if name == "name":
            return f"sim-{self.device_id[-6:]}".encode()
        return None

    def function(self, name: str, argument: str) -> int | None:
        if name == "led":
            if argument == "on":
                self.led = True
                return 1
            if argument == "off":
                self.led = False
                return 0
            return -1
        if name == "echo":
            return len(argument.encode())
        return None

    def _describe(self, flags: int) -> bytes:
        if flags == 4:
            return self._vitals()
        body: dict = {}
        if flags & 1:
            body.update(p=self.platform_id, m=[])
        if flags & 2:
            body.update(f=list(FUNCTIONS), v=dict(VARIABLE_TYPES))
        return json.dumps(body, separators=(",", ":")).encode()

    def _vitals(self) -> bytes:
        records = ((6, self.uptime()), (8, 4), (10, 2))     # uptime; network status 4 = on; cloud 2 = connected
        return (b"\x00\x04\x00" + struct.pack("<HH", 2, 4)
                + b"".join(struct.pack("<Hi", record, value) for record, value in records))

    # -- what the server sends ------------------------------------------------------------------------------

    def _ack(self, request: Message, code: int = coap.EMPTY, token: bytes = b"", *, own_id: bool = False) -> None:
        self.send(Message(ACK, code, self.message_id() if own_id else request.message_id, token))

    def _needs_token(self, message: Message) -> bool:
        # Device OS parses these requests at fixed offsets that assume a 1-byte token; anything else makes
        # it drop the connection (observed for /v and /f).
        if len(message.token) != 1:
            self.disconnect(f"a /{message.path[0]} request with a {len(message.token)}-byte token")
            return False
        return True

    def _handle(self, message: Message) -> None:
        code = message.code
        if code == coap.CONTENT:
            # Device OS takes any 2.05 from the server as the answer to its time request.
            if len(message.payload) >= 4:
                self.server_time = struct.unpack_from(">I", message.payload)[0]
            return
        if code == coap.EMPTY:
            if message.type == CON:
                self._ack(message, own_id=True)          # a server ping, answered with the device's next id
            return
        if code >= 0x20 or message.type == ACK:
            return                                       # other responses and ACKs need nothing from us
        path = message.path
        first = path[0] if path else ""
        if self.state == HELLO:
            if first == "h" and code == coap.POST:
                if message.type == CON:
                    self._ack(message)        # Device OS ACKs a confirmable Hello with the request's id
                self._online()
            return
        if first in ("v", "f", "d", "s", "u", "c") and not self._needs_token(message):
            return
        if first == "v":
            self._ack(message)
            value = self.variable(path[1] if len(path) > 1 else "")
            if value is None:
                self.send(Message(NON, coap.NOT_FOUND, self.message_id(), message.token))
            else:
                self.send(Message(NON, coap.CONTENT, self.message_id(), message.token, payload=value))
        elif first == "f":
            self._ack(message)
            queries = message.queries
            result = self.function(path[1] if len(path) > 1 else "",
                                   queries[0].decode("utf-8", "replace") if queries else "")
            if result is not None:        # an unknown function is ACKed and never answered
                self.send(Message(NON, coap.CHANGED, self.message_id(), message.token,
                                  payload=struct.pack(">i", result)))
        elif first == "d" and code == coap.GET:
            queries = message.queries
            flags = queries[0][0] if queries and queries[0] else 3
            self._ack(message)
            self.send(Message(CON, coap.CONTENT, self.message_id(), message.token, payload=self._describe(flags)))
        elif first == "s":
            queries = message.queries
            self.signaling = bool(queries and queries[0][:1] == b"\x01")
            self._ack(message, coap.CHANGED, message.token, own_id=True)
        elif first == "k":
            self._ack(message, own_id=True)
        elif first in ("E", "e"):
            self._event("/".join(path[1:]), message.payload)     # events to the device are never ACKed
        elif first == "u":
            # The simulator takes no firmware: refuse the update the way a device with updates off does.
            self._ack(message, coap.SERVICE_UNAVAILABLE, message.token)

    def _event(self, name: str, data: bytes) -> None:
        if self.events is not None:
            self.events.append((name, data))
        if name == "spark/device/reset":
            # reboot, safe mode, dfu, network: the simulator comes back as after a reboot.
            self.last_reset = "user"
            self.boot_time = time.monotonic()
            self.disconnect(f"reset requested: {data.decode('utf-8', 'replace')}")
        elif name.startswith("spark/device/claim/"):
            self.claim_code = None
        elif name in ("particle/device/updates/forced", "particle/device/updates/pending"):
            if name.endswith("forced"):
                self.updates_forced = data == b"true"
