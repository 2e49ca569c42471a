"""One device's session after the handshake: what it may do and what we ask of it, apart from the transport.

The TCP transport (server.py) decrypts frames, decodes CoAP and hands each message to `Session.received`; the
session answers through `transport.send(message)` and ends with `transport.close(reason)`. Nothing here knows
about sockets or AES, so a DTLS transport for Gen 3 devices can drive the same class.

Device OS's quirks the session honours (particle-device-protocol.md): requests to the device carry a 1-byte
token and replies are matched by token; the device's own message ids start from the salt; the server's Hello
must go out within 4 s; any 2.05 the server sends is taken as a time reply, so the session never sends one
except to answer `/t`; the device ACKs signal and key-change requests with its own message id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from devices.gateway import coap

if TYPE_CHECKING:
    from devices.gateway.hub import Hub

log = logging.getLogger("devices.gateway")

HELLO_BYTES = 8
NO_FIRMWARE = 0xFFFF
# Variable types in the describe, as the device numbers them, and the names the API shows.
VARIABLE_TYPES = {1: "bool", 2: "int32", 4: "string", 9: "double"}
MAX_EVENT_NAME = 64
# Device OS subscribes to these for the cloud's control events, which come as commands, never from the bus.
CLOUD_PREFIXES = ("spark", "particle")
# What Device OS accepts (MAX_FUNCTION_ARG_LENGTH, MAX_EVENT_DATA_LENGTH on Gen 2): longer arguments arrive cut
# to 622 bytes, and a message near its ~880-byte receive buffer crashed the virtual device, so nothing longer
# is ever sent.
MAX_TO_DEVICE = 622


class Transport(Protocol):
    peer_ip: str | None

    def send(self, message: coap.Message) -> None: ...

    def close(self, reason: str) -> None: ...


class SessionRefused(Exception):
    """The device did something the protocol does not allow; the transport closes with this reason."""


@dataclass
class Pending:
    op: str
    future: asyncio.Future
    message_id: int
    acked: bool = False
    name: str = ""


@dataclass
class Describe:
    functions: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # name -> API type name
    known: bool = False


class Session:
    # States: "hello" until the device's Hello; "pending" while a worker decides; "quarantined"; "online".
    def __init__(self, hub: "Hub", transport: Transport, device_id: str, session_id: str, first_message_id: int,
                 now: float):
        self.hub = hub
        self.transport = transport
        self.device_id = device_id
        self.session_id = session_id
        self.state = "hello"
        self.device_next_mid = first_message_id
        self.next_mid = int.from_bytes(session_id.encode()[:2], "big") or 1
        self.next_token = 0
        self.by_token: dict[int, Pending] = {}
        self.by_mid: dict[int, Pending] = {}
        self.describe = Describe()
        self.product_id: int | None = None
        self.platform_id: int | None = None
        self.firmware_version: int | None = None
        self.flags = 0
        self.connected_at = now
        self.last_received = now
        self.heard_dirty = True
        self.subscriptions: list[tuple[str, bool]] = []
        self.route = None  # where the device belongs (events.Route), read once it subscribes
        self.audiences: tuple[str, ...] = ()
        self.routing = False
        self.received_count = 0
        self.window_start = now
        self.window_count = 0
        self.closed = False
        self.describe_asked = False
        self.early_events: list[tuple] = []
        # A claim code the device sends before the Hello's verdict is back: sent on once the verdict says the
        # Onboarding row (or the device's place) exists, so the code can never overtake it.
        self.verdict_known = False
        self.early_claim_code: str | None = None

    # --- from the device -------------------------------------------------------------------------------------
    def received(self, msg: coap.Message, now: float) -> None:
        self.last_received = now
        self.heard_dirty = True
        self.received_count += 1
        if now - self.window_start >= 1.0:
            self.window_start, self.window_count = now, 0
        self.window_count += 1
        if self.window_count > self.hub.max_messages_per_second:
            raise SessionRefused(f"flood: more than {self.hub.max_messages_per_second} messages in a second")
        if msg.type == coap.CON and msg.code == coap.EMPTY:
            self._ack(msg)  # the device's keepalive ping
            return
        if msg.type in (coap.ACK, coap.RST):
            self._acknowledged(msg)
            return
        if msg.is_response:
            self._response(msg)
            return
        if not msg.is_request:
            raise SessionRefused(f"unexpected CoAP code {coap.code_text(msg.code)}")
        path = msg.path
        if not path:
            raise SessionRefused("a request without a Uri-Path")
        kind = path[0]
        if self.state == "hello":
            if kind != "h":
                raise SessionRefused(f"/{kind} before the Hello")
            self._hello(msg)
            return
        if kind == "t" and msg.code == coap.GET:
            self._time(msg)
        elif kind in ("e", "E") and msg.code == coap.POST:
            self._event(msg, public=(kind == "e"))
        elif kind in ("e", "E") and msg.code == coap.GET:
            self._subscribe(msg)
        elif kind == "d" and msg.code == coap.POST:
            self._ack(msg)
            self._describe_payload(msg.payload, _describe_flags(msg))
        elif kind == "x":
            self.hub.goodbye(self, msg.payload)  # never answered (No-Response)
        elif kind == "h":
            raise SessionRefused("a second Hello")
        elif kind == "c" and msg.code == coap.GET:
            self._ack(msg)  # ChunkMissed belongs to OTA, which is not here yet
        else:
            if msg.type == coap.CON:
                self.transport.send(coap.Message(coap.ACK, coap.NOT_FOUND, msg.message_id, msg.token))
            log.info("device %s: ignored %s /%s", self.device_id, coap.code_text(msg.code), "/".join(path))

    def _ack(self, msg: coap.Message, code: int = coap.EMPTY, payload: bytes = b"") -> None:
        if msg.type == coap.CON:
            token = msg.token if code != coap.EMPTY else b""
            self.transport.send(coap.Message(coap.ACK, code, msg.message_id, token, payload=payload))

    def _hello(self, msg: coap.Message) -> None:
        if msg.code != coap.POST or len(msg.payload) < HELLO_BYTES:
            raise SessionRefused(f"a Hello of {len(msg.payload)} bytes")
        product_id, firmware_version, _, flags, platform_id = struct.unpack(">HHBBH", msg.payload[:HELLO_BYTES])
        self.product_id, self.firmware_version, self.flags, self.platform_id = (product_id, firmware_version,
                                                                             flags, platform_id)
        self._ack(msg)
        # Our Hello goes out at once: the device waits 4 s for it, longer than onboarding may take.
        self.transport.send(coap.Message(coap.NON, coap.POST, self._mid(), options=coap.path_options("h")))
        self.state = "pending"
        self.hub.hello(self)

    def _time(self, msg: coap.Message) -> None:
        self.transport.send(coap.Message(coap.ACK, coap.CONTENT, msg.message_id, msg.token,
                                         payload=int(time.time()).to_bytes(4, "big")))

    def _event(self, msg: coap.Message, public: bool) -> None:
        self._ack(msg)
        name = "/".join(msg.path[1:])
        if not 1 <= len(name) <= MAX_EVENT_NAME:
            log.info("device %s: event name of %d characters dropped", self.device_id, len(name))
            return
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            log.info("device %s: event name with control characters dropped (%r)", self.device_id, name[:64])
            return
        if len(msg.payload) > self.hub.event_data_max:
            log.info("device %s: %d bytes of event data dropped (%s)", self.device_id, len(msg.payload), name)
            return
        ttl = 60
        for n, value in msg.options:
            if n == coap.MAX_AGE:
                ttl = int.from_bytes(value, "big") if value else 0
        data = msg.payload.decode("utf-8", "replace")
        self.hub.device_event(self, name, data, ttl, public)

    def _subscribe(self, msg: coap.Message) -> None:
        self._ack(msg)
        prefix = "/".join(msg.path[1:])
        mine = any(q == b"u" for q in msg.queries)
        if (prefix, mine) not in self.subscriptions and len(self.subscriptions) < 64:
            self.subscriptions.append((prefix, mine))
            if not prefix.startswith(CLOUD_PREFIXES):
                self.hub.subscription_added(self)

    def _describe_payload(self, payload: bytes, flags: int) -> None:
        if flags == 4 or not payload or payload[:1] != b"{":
            return  # vitals (binary): kept for the diagnostics work
        try:
            body = json.loads(payload)
        except ValueError:
            log.info("device %s: describe is not JSON", self.device_id)
            return
        if not isinstance(body, dict):
            return
        changed = False
        if "f" in body or "v" in body:
            # What the device says is bad input until checked: a list of names, a map of name to a type
            # number. Anything else is dropped (logged), never an error of ours.
            raw_functions, raw_vars = body.get("f") or [], body.get("v") or {}
            if not isinstance(raw_functions, list) or not isinstance(raw_vars, dict):
                log.info("device %s: describe with malformed f/v (%s, %s)", self.device_id,
                         type(raw_functions).__name__, type(raw_vars).__name__)
                raw_functions = raw_functions if isinstance(raw_functions, list) else []
                raw_vars = raw_vars if isinstance(raw_vars, dict) else {}
            functions = [f[:64] for f in raw_functions if isinstance(f, str)][:64]
            variables = {str(k)[:64]: VARIABLE_TYPES.get(v, "int32") if isinstance(v, int) else "int32"
                         for k, v in raw_vars.items()}
            self.describe = Describe(functions, dict(list(variables.items())[:64]), True)
            changed = True
        system = None
        if isinstance(body.get("m"), list):
            system = _system_version(body["m"])
        if changed or system:
            self.hub.describe(self, self.describe if changed else None, system)

    def _acknowledged(self, msg: coap.Message) -> None:
        if msg.token:
            # Matched by token: signal and key changes are ACKed with the device's own next message id.
            pending = self.by_token.get(msg.token[0])
            if pending is not None:
                self.by_mid.pop(pending.message_id, None)
        else:
            pending = self.by_mid.pop(msg.message_id, None)
            if pending is None and msg.code == coap.EMPTY:
                # Device OS ACKs the server's empty ping with its own next message id, not ours: an empty ACK
                # that matches nothing answers the oldest ping in flight.
                pending = next((p for p in self.by_mid.values() if p.op == "ping"), None)
                if pending is not None:
                    del self.by_mid[pending.message_id]
        if pending is None:
            return
        if msg.type == coap.RST:
            self._finish(pending, {"ok": False, "error": "refused"})
            return
        pending.acked = True
        if msg.code >= 0x80:
            # The device refused the request in its ACK (a 4.00 for an argument it cannot take), with or
            # without a token: that is the answer, even if it later runs the function anyway.
            self._finish(pending, {"ok": False, "error": f"device answered {coap.code_text(msg.code)}"})
            return
        if pending.op in ("ping", "signal") or (msg.code != coap.EMPTY and msg.token):
            self._finish(pending, self._answer(pending, msg))

    def _response(self, msg: coap.Message) -> None:
        if msg.type == coap.CON:
            self._ack(msg)
        if len(msg.token) != 1:
            return
        pending = self.by_token.get(msg.token[0])
        if pending is None:
            return
        self.by_mid.pop(pending.message_id, None)
        self._finish(pending, self._answer(pending, msg))

    def _answer(self, pending: Pending, msg: coap.Message) -> dict:
        if pending.op in ("ping", "signal"):
            return {"ok": True}
        if msg.code == coap.NOT_FOUND:
            return {"ok": False, "error": "not_found"}
        if msg.code >= 0x80:
            return {"ok": False, "error": f"device answered {coap.code_text(msg.code)}"}
        if pending.op == "function":
            if len(msg.payload) < 4:
                return {"ok": False, "error": "a function result is 4 bytes"}
            return {"ok": True, "return_value": int.from_bytes(msg.payload[:4], "big", signed=True)}
        if pending.op == "variable":
            kind = self.describe.variables.get(pending.name, "int32" if len(msg.payload) == 4 else "string")
            try:
                return {"ok": True, "result": _variable_value(kind, msg.payload), "type": kind}
            except (ValueError, struct.error):
                return {"ok": False, "error": f"a {kind} of {len(msg.payload)} bytes"}
        if pending.op == "describe":
            self._describe_payload(msg.payload, 2)
            return {"ok": True}
        return {"ok": True}

    def _finish(self, pending: Pending, answer: dict) -> None:
        self.by_token.pop(_token_of(self, pending), None)
        if not pending.future.done():
            pending.future.set_result(answer)

    # --- to the device ---------------------------------------------------------------------------------------
    def _mid(self) -> int:
        self.next_mid = (self.next_mid + 1) & 0xFFFF
        return self.next_mid

    def _token(self) -> int:
        for _ in range(256):
            self.next_token = (self.next_token + 1) & 0xFF
            if self.next_token not in self.by_token:
                return self.next_token
        raise RuntimeError("256 requests in flight")

    def send_request(self, op: str, code: int, options: list[tuple[int, bytes]], payload: bytes = b"",
                     name: str = "", token: bool = True) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        mid = self._mid()
        pending = Pending(op, future, mid, name=name)
        tok = b""
        if token:
            t = self._token()
            self.by_token[t] = pending
            tok = bytes([t])
        self.by_mid[mid] = pending
        self.transport.send(coap.Message(coap.CON, code, mid, tok, options, payload))
        return future

    async def call(self, op: str, args: dict[str, Any], timeout: float) -> dict:
        """Ask the device `op` and wait for its answer (the API's function/variable/ping/signal/describe)."""
        if self.state == "pending":
            # The worker's verdict is committed a moment before its "admit" reaches us: a request that saw the
            # row online waits for it (briefly) rather than being told the device is offline.
            started = time.monotonic()
            while self.state == "pending" and not self.closed and time.monotonic() - started < min(timeout, 3.0):
                await asyncio.sleep(0.02)
            timeout = max(0.0, timeout - (time.monotonic() - started))
        if self.state != "online":
            return {"ok": False, "error": "offline"}
        if op == "function":
            name = str(args.get("name", ""))
            if self.describe.known and name not in self.describe.functions:
                return {"ok": False, "error": "not_found"}
            arg = str(args.get("arg") or "").encode()
            if len(arg) > MAX_TO_DEVICE:
                return {"ok": False, "error": f"an argument of {len(arg)} bytes (the device takes {MAX_TO_DEVICE})"}
            future = self.send_request("function", coap.POST, coap.path_options("f", name) + [(coap.URI_QUERY, arg)],
                                       name=name)
        elif op == "variable":
            name = str(args.get("name", ""))
            if self.describe.known and name not in self.describe.variables:
                return {"ok": False, "error": "not_found"}
            future = self.send_request("variable", coap.GET, coap.path_options("v", name), name=name)
        elif op == "ping":
            future = self.send_request("ping", coap.EMPTY, [], token=False)
        elif op == "signal":
            on = b"\x01" if args.get("on") else b"\x00"
            future = self.send_request("signal", coap.PUT, coap.path_options("s") + [(coap.URI_QUERY, on)])
        elif op == "describe":
            future = self.send_request("describe", coap.GET, coap.path_options("d") + [(coap.URI_QUERY, b"\x02")])
        else:
            return {"ok": False, "error": f"unknown op {op}"}
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self._forget(future)
            return {"ok": False, "error": "timed out"}

    def _forget(self, future: asyncio.Future) -> None:
        for table in (self.by_token, self.by_mid):
            for key in [k for k, p in table.items() if p.future is future]:
                del table[key]

    def ask_describe(self) -> None:
        if not self.describe_asked and not self.closed:
            self.describe_asked = True
            self.send_request("describe", coap.GET, coap.path_options("d") + [(coap.URI_QUERY, b"\x02")])

    def send_event(self, name: str, data: str) -> bool:
        """An event to the device (its subscriptions and control events): NON, never ACKed over TCP. Data past
        what Device OS takes is refused here: a 900-byte event made it drop the connection."""
        if len(data.encode()) > MAX_TO_DEVICE or len(name) > MAX_EVENT_NAME:
            log.info("device %s: event %s of %d bytes not sent (the device takes %d)", self.device_id, name[:64],
                     len(data.encode()), MAX_TO_DEVICE)
            return False
        self.transport.send(coap.Message(coap.NON, coap.POST, self._mid(), b"",
                                         coap.path_options("E", name), data.encode()))
        return True

    def end(self) -> None:
        """The connection is gone: every waiting request learns the device is offline."""
        self.closed = True
        for pending in list(self.by_token.values()) + list(self.by_mid.values()):
            if not pending.future.done():
                pending.future.set_result({"ok": False, "error": "offline"})
        self.by_token.clear()
        self.by_mid.clear()


def _token_of(session: Session, pending: Pending) -> int:
    for t, p in session.by_token.items():
        if p is pending:
            return t
    return -1


def _describe_flags(msg: coap.Message) -> int:
    for q in msg.queries:
        if len(q) == 1:
            return q[0]
        if q.isdigit():
            return int(q)
    return 3


def _system_version(modules: list) -> str | None:
    for module in modules:
        if isinstance(module, dict) and module.get("f") == "s" and isinstance(module.get("v"), int):
            return str(module["v"])
    return None


def _variable_value(kind: str, payload: bytes):
    if kind == "bool":
        return bool(payload[0]) if payload else False
    if kind == "int32":
        return struct.unpack(">i", payload[:4])[0]
    if kind == "double":
        return struct.unpack("<d", payload[:8])[0]
    return payload.decode("utf-8", "replace")
