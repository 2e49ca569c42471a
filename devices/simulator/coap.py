"""A small CoAP (RFC 7252) codec for the simulated device: messages as the device puts them on the wire.

Written for the simulator alone (it shares nothing with the gateway's codec), so a server that misreads the
format fails a test instead of agreeing with itself. Only what Particle's Gen 2 protocol uses: no blockwise
transfer, no observe, options kept as a list of (number, bytes) in wire order.
"""

from __future__ import annotations

import struct

CON, NON, ACK, RST = 0, 1, 2, 3

EMPTY = 0x00
GET, POST, PUT, DELETE = 0x01, 0x02, 0x03, 0x04
CREATED, DELETED, VALID, CHANGED, CONTENT = 0x41, 0x42, 0x43, 0x44, 0x45   # 2.01 … 2.05
BAD_REQUEST, NOT_FOUND = 0x80, 0x84                                        # 4.00, 4.04
SERVICE_UNAVAILABLE = 0xA3                                                 # 5.03

URI_PATH, MAX_AGE, URI_QUERY, NO_RESPONSE = 11, 14, 15, 258


class CoapError(ValueError):
    """The bytes are not a well-formed CoAP message."""


def code_str(code: int) -> str:
    """`2.05`-style text for a code byte."""
    return f"{code >> 5}.{code & 0x1F:02d}"


class Message:
    """One CoAP message. `options` is a list of (option number, value bytes), kept sorted when encoding."""

    __slots__ = ("type", "code", "message_id", "token", "options", "payload")

    def __init__(self, type: int, code: int, message_id: int = 0, token: bytes = b"",
                 options: list[tuple[int, bytes]] | None = None, payload: bytes = b""):
        self.type = type
        self.code = code
        self.message_id = message_id
        self.token = token
        self.options = options or []
        self.payload = payload

    def option_values(self, number: int) -> list[bytes]:
        return [value for n, value in self.options if n == number]

    @property
    def path(self) -> list[str]:
        """The Uri-Path segments, decoded leniently (a device never rejects a name for its encoding)."""
        return [value.decode("utf-8", "replace") for value in self.option_values(URI_PATH)]

    @property
    def queries(self) -> list[bytes]:
        return self.option_values(URI_QUERY)

    def __repr__(self) -> str:
        kind = ("CON", "NON", "ACK", "RST")[self.type]
        return (f"<Message {kind} {code_str(self.code)} id={self.message_id} token={self.token.hex()} "
                f"path={'/'.join(self.path)!r} payload={len(self.payload)}B>")


def _extended(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    return 14, struct.pack(">H", value - 269)


def encode(message: Message) -> bytes:
    """The wire bytes of `message` (header, token, delta-encoded options, 0xFF and payload if any)."""
    if len(message.token) > 8:
        raise CoapError("a token is at most 8 bytes")
    out = bytearray(struct.pack(">BBH", 0x40 | (message.type << 4) | len(message.token), message.code,
                                message.message_id & 0xFFFF))
    out += message.token
    previous = 0
    # A stable sort: repeated options (several Uri-Path segments) keep their order.
    for number, value in sorted(message.options, key=lambda option: option[0]):
        delta, delta_ext = _extended(number - previous)
        length, length_ext = _extended(len(value))
        out.append((delta << 4) | length)
        out += delta_ext
        out += length_ext
        out += value
        previous = number
    if message.payload:
        out.append(0xFF)
        out += message.payload
    return bytes(out)


def _read_extended(nibble: int, data: bytes, pos: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, pos
    if nibble == 13:
        if pos + 1 > len(data):
            raise CoapError("truncated option")
        return data[pos] + 13, pos + 1
    if nibble == 14:
        if pos + 2 > len(data):
            raise CoapError("truncated option")
        return struct.unpack_from(">H", data, pos)[0] + 269, pos + 2
    raise CoapError("reserved option nibble 15")


def decode(data: bytes) -> Message:
    """Parse one message; raise CoapError on anything RFC 7252 calls a format error."""
    if len(data) < 4:
        raise CoapError("shorter than a CoAP header")
    first, code, message_id = struct.unpack_from(">BBH", data)
    if first >> 6 != 1:
        raise CoapError("CoAP version is not 1")
    token_length = first & 0x0F
    if token_length > 8:
        raise CoapError("token length over 8")
    pos = 4 + token_length
    if pos > len(data):
        raise CoapError("truncated token")
    token = bytes(data[4:pos])
    options: list[tuple[int, bytes]] = []
    number = 0
    payload = b""
    while pos < len(data):
        byte = data[pos]
        pos += 1
        if byte == 0xFF:
            payload = bytes(data[pos:])
            if not payload:
                raise CoapError("payload marker with no payload")
            break
        delta, pos = _read_extended(byte >> 4, data, pos)
        length, pos = _read_extended(byte & 0x0F, data, pos)
        if pos + length > len(data):
            raise CoapError("option runs past the end")
        number += delta
        options.append((number, bytes(data[pos:pos + length])))
        pos += length
    if code == EMPTY and (token_length or options or payload):
        raise CoapError("an empty message carries nothing")
    return Message(first >> 4 & 0x03, code, message_id, token, options, payload)
