"""CoAP messages (RFC 7252 §3) as Particle's device protocol carries them inside the encrypted channel.

Only what the protocol uses: the four types, codes as class.detail, a 0–8 byte token, options in ascending
number order with the delta/length extensions (13 → one more byte, 14 → two), and a payload after 0xFF.
Decoding is strict — a message that does not parse raises `CoapError` and the gateway closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CON, NON, ACK, RST = 0, 1, 2, 3

EMPTY = 0x00
GET, POST, PUT, DELETE = 0x01, 0x02, 0x03, 0x04
CREATED, DELETED, VALID, CHANGED, CONTENT = 0x41, 0x42, 0x43, 0x44, 0x45
BAD_REQUEST, NOT_FOUND = 0x80, 0x84
SERVICE_UNAVAILABLE = 0xA3

URI_PATH = 11
MAX_AGE = 14
URI_QUERY = 15
NO_RESPONSE = 258


class CoapError(ValueError):
    """A message that is not valid CoAP."""


def code_text(code: int) -> str:
    return f"{code >> 5}.{code & 0x1F:02d}"


@dataclass
class Message:
    type: int
    code: int
    message_id: int
    token: bytes = b""
    options: list[tuple[int, bytes]] = field(default_factory=list)
    payload: bytes = b""

    def option_values(self, number: int) -> list[bytes]:
        return [value for n, value in self.options if n == number]

    @property
    def path(self) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.option_values(URI_PATH)]

    @property
    def queries(self) -> list[bytes]:
        return self.option_values(URI_QUERY)

    @property
    def is_request(self) -> bool:
        return 1 <= self.code <= 31

    @property
    def is_response(self) -> bool:
        return self.code >= 64

    @property
    def is_empty(self) -> bool:
        return self.code == EMPTY


def _ext(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, (value - 269).to_bytes(2, "big")


def encode(msg: Message) -> bytes:
    if len(msg.token) > 8:
        raise CoapError("token longer than 8 bytes")
    out = bytearray([0x40 | (msg.type << 4) | len(msg.token), msg.code])
    out += (msg.message_id & 0xFFFF).to_bytes(2, "big")
    out += msg.token
    last = 0
    # Stable sort keeps repeated options (Uri-Path segments) in their given order.
    for number, value in sorted(msg.options, key=lambda o: o[0]):
        delta_nibble, delta_ext = _ext(number - last)
        length_nibble, length_ext = _ext(len(value))
        out.append((delta_nibble << 4) | length_nibble)
        out += delta_ext + length_ext + value
        last = number
    if msg.payload:
        out.append(0xFF)
        out += msg.payload
    return bytes(out)


def _read_ext(nibble: int, data: bytes, at: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, at
    if nibble == 13:
        if at >= len(data):
            raise CoapError("option runs past the end")
        return data[at] + 13, at + 1
    if nibble == 14:
        if at + 2 > len(data):
            raise CoapError("option runs past the end")
        return int.from_bytes(data[at:at + 2], "big") + 269, at + 2
    raise CoapError("reserved option nibble 15")


def decode(data: bytes) -> Message:
    if len(data) < 4:
        raise CoapError(f"{len(data)} bytes is shorter than a CoAP header")
    first = data[0]
    if first >> 6 != 1:
        raise CoapError(f"CoAP version {first >> 6}")
    kind, token_length = (first >> 4) & 0x03, first & 0x0F
    if token_length > 8:
        raise CoapError(f"token length {token_length}")
    code = data[1]
    message_id = int.from_bytes(data[2:4], "big")
    at = 4 + token_length
    if at > len(data):
        raise CoapError("token runs past the end")
    token = bytes(data[4:at])
    options: list[tuple[int, bytes]] = []
    number = 0
    payload = b""
    while at < len(data):
        byte = data[at]
        if byte == 0xFF:
            payload = bytes(data[at + 1:])
            if not payload:
                raise CoapError("payload marker with no payload")
            break
        at += 1
        delta, at = _read_ext(byte >> 4, data, at)
        length, at = _read_ext(byte & 0x0F, data, at)
        if at + length > len(data):
            raise CoapError("option value runs past the end")
        number += delta
        options.append((number, bytes(data[at:at + length])))
        at += length
    if code == EMPTY and (token or options or payload):
        raise CoapError("an empty message carries nothing")
    return Message(kind, code, message_id, token, options, payload)


def path_options(*segments: str) -> list[tuple[int, bytes]]:
    return [(URI_PATH, s.encode()) for s in segments]
