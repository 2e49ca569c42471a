"""The gateway's CoAP codec and channel, against bytes worked out by hand from RFC 7252 and the fact sheet."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devices.gateway import coap
from devices.gateway.crypto import Channel, HandshakeError, salt_message_id


def test_a_function_call_encodes_as_the_rfc_says():
    msg = coap.Message(coap.CON, coap.POST, 0x1234, b"\x07", coap.path_options("f", "led") + [(coap.URI_QUERY, b"on")])
    # 0x41: version 1, CON, token length 1; 0x02 POST; id; token; Uri-Path (11) "f" = 0xB1; next Uri-Path delta 0,
    # length 3 = 0x03; Uri-Query delta 4, length 2 = 0x42.
    assert coap.encode(msg) == bytes.fromhex("4102123407") + b"\xb1f\x03led\x42on"
    assert coap.decode(coap.encode(msg)) == msg


def test_extended_deltas_and_lengths_round_trip():
    long_value = b"x" * 300
    msg = coap.Message(coap.NON, coap.CONTENT, 1, b"", [(coap.URI_PATH, b"a" * 20), (coap.NO_RESPONSE, b"\x1a"),
                                                        (1000, long_value)], b"payload")
    raw = coap.encode(msg)
    # Uri-Path: delta 11, length 20 -> nibble 13 with one extension byte (20 - 13 = 7).
    assert raw[4:6] == bytes([0xBD, 7])
    assert coap.decode(raw) == msg


@pytest.mark.parametrize("raw, reason", [
    (b"\x40\x01\x00", "shorter than a CoAP header"),
    (b"\x49\x01\x00\x01", "token length 9"),
    (b"\x41\x01\x00\x01", "token runs past the end"),
    (b"\x40\x01\x00\x01\xf0", "reserved option nibble 15"),
    (b"\x40\x01\x00\x01\xff", "payload marker with no payload"),
    (b"\x40\x00\x00\x01\xb1h", "an empty message carries nothing"),
])
def test_malformed_messages_are_refused_with_a_reason(raw, reason):
    with pytest.raises(coap.CoapError, match=reason):
        coap.decode(raw)


def test_each_direction_chains_its_iv_from_the_first_block_of_the_last_message():
    session = os.urandom(40)
    key, iv = session[:16], session[16:32]
    server = Channel(session)
    first = server.seal(b"a" * 40)   # three blocks
    second = server.seal(b"b")
    ct1, ct2 = first[2:], second[2:]
    assert int.from_bytes(first[:2], "big") == len(ct1) == 48
    # The second message was encrypted with IV = the first 16 bytes of the first ciphertext.
    dec = Cipher(algorithms.AES(key), modes.CBC(ct1[:16])).decryptor()
    assert (dec.update(ct2) + dec.finalize())[:1] == b"b"
    # And the receiving side follows the same rule.
    device = Channel(session)
    assert device.open(ct1) == b"a" * 40
    assert device.open(ct2) == b"b"
    assert iv != ct1[:16]


def test_a_message_sealed_with_another_key_is_refused():
    with pytest.raises(HandshakeError):
        Channel(os.urandom(40)).open(Channel(os.urandom(40)).seal(b"hello")[2:])


def test_the_device_counts_message_ids_from_the_salt():
    session = bytes(32) + bytes([0x34, 0x12]) + bytes(6)
    assert salt_message_id(session) == 0x1235
